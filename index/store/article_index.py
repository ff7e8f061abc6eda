"""The index: the source library read into passages and vectors in Chroma.

`ArticleIndex` ties the parts together, each in a module of its own:
index/store/chroma.py (the connection and cross-process sync), index/store/builds.py
(builds, leases, the switch), index/sources/library.py (the sources),
index/sources/reading.py (reading them), index/store/planning.py (what a change embeds,
keeps and removes: a pure function), and index/store/snapshot.py (the passages a process
answers from). Every change, a rebuild, an
add, a refresh or a remove, reads sources, plans, then applies the plan: a rebuild into
a new build it switches to once complete, the others in place, new passages before old
ones are deleted, so a kill at any point leaves an index that answers.
"""

from __future__ import annotations

import gc
import getpass
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.articles import Article
from index.errors import CitebotError, IndexMismatchError, SettingsError, SourceError
from index.report import Failure, IndexReport
from index.settings import Settings
from index.sources.fetch import CLI_POLICY, FetchPolicy, is_url
from index.sources.formats import NOT_UTF8_NAME, escaped, is_utf8, read_bytes
from index.sources.library import LibraryReport, LibrarySource, SourceLibrary
from index.sources.reading import LibraryReader, local_kind, source_key, upload_key
from index.store.audit import AuditLog
from index.store.build_records import (
    ORIGIN,
    PAGE,
    articles_from_passages,
    chunks,
    copy_passages,
    stored_articles,
)
from index.store.builds import (
    ActiveBuildMissing,
    Builds,
    Lease,
    identity_of,
    now,
)
from index.store.chroma import ChromaConnection
from index.store.keyword_files import KeywordFiles
from index.store.planning import Plan, SourceRead, plan_changes
from index.store.snapshot import StoredPassages, load_passages
from index.store.status import IndexStatus, SourceStatus

if TYPE_CHECKING:  # llama-index and the models load in the methods that embed, not for
    # `citebot status` or `sources` (seconds of imports: docs/BENCHMARKS.md, "Cold start")
    from index.embedding.encoder import Encoder

REFRESHED_KINDS = ("url", "feed", "sitemap")

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


class NoSuchSource(CitebotError):
    """`citebot remove` was given something that is neither a source nor an article."""


class ArticleIndex:
    """Builds, updates and reads the index described by `settings`."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None) -> None:
        self.settings = settings
        self._encoder = encoder
        self.connection = ChromaConnection(settings)
        self.builds = Builds(self.connection)
        self.keyword_files = KeywordFiles(settings.home)
        self._stored: StoredPassages | None = None
        self._reload_lock = threading.Lock()
        self._encoder_lock = threading.Lock()

    @property
    def client(self) -> Any:
        return self.connection.client

    @property
    def embedded(self) -> bool:
        return self.connection.embedded

    @property
    def encoder(self) -> Encoder:
        """The encoder for questions. Before loading it (seconds; the first ONNX use also
        exports the model), checks that the index was built with these settings."""
        if self._encoder is None:
            collection = self.builds.active()
            if collection is not None:
                self.builds.check_identity(collection)
        return self._loaded_encoder()

    def _loaded_encoder(self) -> Encoder:
        # Under a lock: questions arriving together must not load the model each.
        with self._encoder_lock:
            if self._encoder is None:
                from index.embedding.encoder import Encoder

                self._encoder = Encoder.from_settings(self.settings)
            return self._encoder

    @property
    def library(self) -> SourceLibrary:
        return SourceLibrary(self.client)

    @property
    def audit(self) -> AuditLog:
        """Who changed the library, when and how (`citebot audit`)."""
        return AuditLog(self.client)

    def index_identity(self) -> dict[str, Any]:
        return self.builds.identity()

    def active_collection(self) -> Any | None:
        return self.builds.active()

    def index_state(self) -> dict[str, Any]:
        """The index's state: the active build, its generation, updated_at, rebuilt_at."""
        return self.connection.state_metadata()

    # -- rebuild ----------------------------------------------------------------------

    def rebuild(
        self,
        sources: Sequence[str] | None = None,
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
        prune: bool = False,
    ) -> IndexReport:
        """Re-reads the whole library into a new build, reusing the vectors of unchanged
        articles, then makes it the active index. `sources` replace the configured ones
        (each must exist); articles of sources no longer configured stay unless `prune`."""
        if sources:
            for item in sources:
                if not is_url(item) and not Path(item).expanduser().exists():
                    raise SourceError(
                        item, "no such file or folder (given with --sources): nothing was changed"
                    )
        configured = _utf8_keys(sources or self.settings.sources)

        def rebuild_library() -> IndexReport:
            self._require_backend()
            with self.connection.writing():
                report = self._rebuild(configured, prune, progress, on_total)
                self.library.save_report(LibraryReport("rebuild", now(), tuple(report.lines())))
            return report

        what = [*configured, *(["--prune"] if prune else [])]
        return self.audit.recorded("rebuild", _local_user(), what, rebuild_library)

    def _rebuild(
        self,
        configured: list[str],
        prune: bool,
        progress: Progress | None,
        on_total: Callable[[int], None] | None,
    ) -> IndexReport:
        try:
            old = self.builds.active()
        except ActiveBuildMissing as missing:
            log.warning("%s; building a new index from the library", missing)
            old = None
        reusable = old is not None and identity_of(old.metadata) == self.builds.identity()
        stored = stored_articles(old)
        library = self.library
        known = {s.key: s for s in library.sources()}
        if not configured and not stored and not known:
            raise SettingsError(
                "there are no sources to index: set index.sources in the settings file "
                "(`citebot config` names it) or pass --sources PATH_OR_URL"
            )
        library.set_configured(configured, {k: _kind(k, known) for k in configured}, now())
        entries = library.sources()
        reader = self._reader(library, set(stored), prune=prune)
        reads, records = self._read_all(reader, entries)
        plan = plan_changes(
            stored, reads, [e.key for e in entries], prune=prune, excluded=library.excluded()
        )
        report = _report(plan)
        report.sources = _outcomes(reads)
        records = _with_changes(records, plan, stored)
        self.builds.drop_abandoned(keep={old.name} if old is not None else set())
        if reusable and not plan.changes_anything:
            # Nothing changed: the active build already is the index asked for.
            self.builds.mark_rebuilt()
            library.save(records)
            return report
        new = self.builds.create()
        lease = Lease(new)
        to_embed = list(plan.embed)
        if reusable:
            copy_passages(old, new, plan.keep, lease.renew)
        elif old is not None:
            # Other index settings: every vector is made again, kept articles' from the
            # text stored with them (their sources cannot be read now).
            kept = [pid for a in plan.kept_articles for pid in stored[a].complete_passage_ids]
            to_embed += plan.unchanged_read + articles_from_passages(old, kept)
        if on_total:
            on_total(len(to_embed))
        report.passages_embedded = self._embed_into(new, to_embed, progress, lease.renew)
        lease.check(self.client)
        # Ready before the switch: serving processes open it without reading the build.
        self.keyword_files.prepare(new)
        previous = self.builds.switch(new, rebuilt=True)
        self.keyword_files.synced(new, self.connection.synced or "")
        # Another rebuild may have switched since this one started: drop whatever was
        # active at the switch (the one this rebuild started from is then gone already).
        if previous and previous != new.name:
            self.builds.delete(previous)
        library.save(records)
        return report

    # -- add, refresh, remove: changes in place ---------------------------------------

    def add(
        self,
        sources: Sequence[str],
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
        added_by: str | None = None,
        policy: FetchPolicy = CLI_POLICY,
        visible_in: str = "",
    ) -> IndexReport:
        """Adds sources (files, folders, URLs, feeds) to the library and indexes them;
        a source already in the library is read again (and keeps its visibility). A
        source that cannot be read at all is reported and not added. `visible_in`: the
        only Slack conversation a new source answers in ("" for all)."""
        keys = list(dict.fromkeys(_utf8_keys(sources)))
        who = added_by if added_by is not None else _local_user()
        return self.audit.recorded(
            "add", who, keys, lambda: self._add(keys, who, progress, on_total, policy, visible_in)
        )

    def _add(
        self,
        keys: list[str],
        who: str,
        progress: Progress | None,
        on_total: Callable[[int], None] | None,
        policy: FetchPolicy,
        visible_in: str,
    ) -> IndexReport:
        self._require_backend()
        with self.connection.writing():
            known = {s.key: s for s in self.library.sources()}
            entries = [
                known.get(k)
                or LibrarySource(
                    k,
                    _kind(k, known),
                    "added",
                    who,
                    now(),
                    public_only=policy.public_only,
                    visible_in=visible_in,
                )
                for k in keys
            ]
            return self._change(entries, progress, on_total, policy, include=keys)

    def add_bytes(
        self, name: str, data: bytes, uploaded_by: str = "slack", visible_in: str = ""
    ) -> IndexReport:
        """Adds an uploaded file (`name` picks the reader by its extension). Its article
        id is `upload://<uploader>/<name>`: the same uploader sending a file of the same
        name again replaces it; its bytes are kept in the store for later rebuilds.
        `visible_in`: the only Slack conversation it answers in ("" for all)."""
        return self.audit.recorded(
            "upload",
            uploaded_by,
            [name],
            lambda: self._add_bytes(name, data, uploaded_by, visible_in),
        )

    def _add_bytes(self, name: str, data: bytes, uploaded_by: str, visible_in: str) -> IndexReport:
        key = upload_key(uploaded_by, name)
        try:
            read_bytes(
                name, data, key, self.settings.json_keys, max_chars=self.settings.max_article_chars
            )
        except SourceError as error:
            return IndexReport(failed=[Failure(error.source, error.reason)])
        with self.connection.writing():
            digest = self.library.put_upload(data)
            known = self.library.source(key)
            entry = LibrarySource(
                key,
                "upload",
                "added",
                uploaded_by,
                known.added_at if known else now(),
                upload_sha256=digest,
                upload_name=name,
                visible_in=visible_in,
            )
            return self._change([entry], None, None, CLI_POLICY, include=[key])

    def add_articles(
        self,
        articles: Sequence[Article],
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Indexes articles that come from no library source (evaluation corpora): a
        rebuild keeps them unless `--prune`."""
        read = SourceRead("", True, tuple(articles), complete=False)
        with self.connection.writing():
            collection = self._writable()
            stored = stored_articles(collection, [a.id for a in articles])
            plan = plan_changes(stored, [read])
            return self._apply(collection, plan, progress, on_total)

    def refresh(
        self,
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
        policy: FetchPolicy = CLI_POLICY,
    ) -> IndexReport:
        """Re-reads every URL, feed and sitemap of the library with conditional requests:
        an unchanged page is neither downloaded nor embedded again, a changed one
        replaces its old version, a feed's new entries are added."""
        with self.connection.writing():
            entries = [s for s in self.library.sources() if s.kind in REFRESHED_KINDS]
            if not entries:
                return IndexReport()
            report = self._change(entries, progress, on_total, policy, conditional=True)
            self.library.save_report(LibraryReport("refresh", now(), tuple(report.lines())))
        log.info(
            "refreshed %d feed(s) and page(s): %d added, %d changed, %d unchanged, %d removed, "
            "%d failed",
            len(entries),
            len(report.added),
            len(report.changed),
            len(report.unchanged),
            len(report.removed),
            len(report.failed),
        )
        return report

    def remove(self, items: Sequence[str], removed_by: str | None = None) -> IndexReport:
        """Removes sources from the library with their articles, or single articles (by
        id or path); an article whose source still holds it is recorded as removed, so
        that reading the source again does not bring it back."""
        who = removed_by if removed_by is not None else _local_user()
        return self.audit.recorded("remove", who, items, lambda: self._remove(items, who))

    def _remove(self, items: Sequence[str], who: str) -> IndexReport:
        with self.connection.writing():
            # Nothing to remove from an index that is not there: no empty build is made.
            collection = self.builds.require_active()
            library = self.library
            known = {s.key: s for s in library.sources()}
            sources, articles = [], []
            for item in items:
                [key] = _utf8_keys([item])
                if key in known:
                    if known[key].origin == "config":
                        raise CitebotError(
                            f"{item} is configured in index.sources: remove it there, then run "
                            "`citebot index rebuild --prune`"
                        )
                    sources.append(key)
                    continue
                found = stored_articles(collection, [key, item]) or _records_at(collection, item)
                if not found:
                    raise NoSuchSource(
                        f"{item} is neither a source nor an indexed article: see `citebot sources`"
                    )
                articles += list(found)
            owned = stored_articles(collection, where={ORIGIN: {"$in": sources}}) if sources else {}
            ids = set(owned) | set(articles)
            stored = stored_articles(collection, sorted(ids))
            plan = plan_changes(stored, [], remove=ids)
            report = self._apply(collection, plan, None, None)
            library.exclude(articles, who, now())
            library.delete(sources)
            return report

    def share(self, keys: Sequence[str], shared_by: str | None = None) -> list[str]:
        """Makes private library sources answer in every conversation; returns those that
        were private. Raises NoSuchSource naming a key that is not in the library."""

        def share_sources() -> list[str]:
            with self.connection.writing():
                known = {s.key: s for s in self.library.sources()}
                for key in keys:
                    if key not in known:
                        raise NoSuchSource(f"{key} is not a library source: see `citebot sources`")
                private = [known[k] for k in dict.fromkeys(keys) if known[k].visible_in]
                self.library.save(replace(s, visible_in="") for s in private)
                return [s.key for s in private]

        who = shared_by if shared_by is not None else _local_user()
        return self.audit.recorded(
            "share", who, keys, share_sources, lambda shared: f"{len(shared)} made public"
        )

    def _require_backend(self) -> None:
        if self.settings.backend != "torch":
            from index.embedding.encoder import require_onnx

            require_onnx(self.settings.backend)  # before reading, not after

    def _writable(self) -> Any:
        """The active build, made when there is none; refuses other index settings."""
        collection = self.builds.active()
        if collection is None:
            collection = self.builds.create()
            self.builds.switch(collection, rebuilt=False)
        elif identity_of(collection.metadata) != self.builds.identity():
            raise IndexMismatchError(
                "the index was built with other index settings (model, backend or passage "
                "size): run `citebot index rebuild` before adding"
            )
        return collection

    def _change(
        self,
        entries: list[LibrarySource],
        progress: Progress | None,
        on_total: Callable[[int], None] | None,
        policy: FetchPolicy,
        include: Sequence[str] = (),
        conditional: bool = False,
    ) -> IndexReport:
        """Reads `entries` and applies the plan in place; records them in the library
        (a new source only when it could be read)."""
        collection = self._writable()
        library = self.library
        keys = [e.key for e in entries]
        stored = stored_articles(collection, where={ORIGIN: {"$in": keys}}) if keys else {}
        reader = self._reader(library, set(stored), policy, conditional)
        reads, records = self._read_all(reader, entries)
        read_ids = [a.id for r in reads for a in r.articles if a.id not in stored]
        stored |= stored_articles(collection, read_ids)
        library.include(include)
        plan = plan_changes(stored, reads, excluded=library.excluded() - set(include))
        report = self._apply(collection, plan, progress, on_total)
        report.sources = _outcomes(reads)
        known = {s.key for s in library.sources()}
        records = _with_changes(records, plan, stored)
        library.save(r for r, read in zip(records, reads, strict=True) if read.ok or r.key in known)
        report.downloads = reader.downloads
        return report

    def _apply(
        self,
        collection: Any,
        plan: Plan,
        progress: Progress | None,
        on_total: Callable[[int], None] | None,
    ) -> IndexReport:
        report = _report(plan)
        if on_total:
            on_total(len(plan.embed))
        # The new versions first, then the old are deleted: a kill in between never
        # loses an article, and the next change sees two versions and cleans up.
        report.passages_embedded = self._embed_into(collection, plan.embed, progress)
        for chunk in chunks(plan.drop, PAGE):
            collection.delete(ids=list(chunk))
        if plan.embed or plan.drop:
            self.builds.switch(collection, rebuilt=False)
            self.keyword_files.synced(collection, self.connection.synced or "")
        return report

    def _reader(
        self,
        library: SourceLibrary,
        indexed: set[str],
        policy: FetchPolicy = CLI_POLICY,
        conditional: bool = False,
        prune: bool = False,
    ) -> LibraryReader:
        return LibraryReader(
            library,
            self.settings.json_keys,
            policy,
            conditional,
            indexed=indexed,
            allowed_hosts=self.settings.allowed_hosts,
            max_chars=self.settings.max_article_chars,
            prune=prune,
        )

    def _read_all(
        self, reader: LibraryReader, entries: Iterable[LibrarySource]
    ) -> tuple[list[SourceRead], list[LibrarySource]]:
        reads, records = [], []
        for entry in entries:
            read, record = reader.read(entry, now())
            reads.append(read)
            records.append(record)
        return reads, records

    def _embed_into(
        self,
        collection: Any,
        articles: list[tuple[Article, str]],
        progress: Progress | None,
        renew: Callable[[], None] | None = None,
    ) -> int:
        if not articles:
            return 0  # and the model need not be loaded
        from llama_index.core.ingestion import IngestionPipeline

        from index.embedding.passages import PassageEncoder, PassageSplitter, article_document

        pipeline = IngestionPipeline(
            transformations=[
                PassageSplitter(
                    max_sentences=self.settings.passage_sentences,
                    max_chars=self.settings.passage_chars,
                ),
                PassageEncoder(encoder=self._loaded_encoder()),
            ],
            # Chroma is the record of what was embedded; the pipeline's own cache would
            # hash and keep every node of a rebuild in memory for nothing.
            disable_cache=True,
        )
        embedded = 0
        # One article per run: the progress bar moves article by article, and memory is
        # one article's passages (the encoder holds token vectors for one batch at a time).
        for article, origin in articles:
            nodes = pipeline.run(documents=[article_document(article)])
            for chunk in chunks(nodes, self.client.get_max_batch_size()):
                counts: dict[str, int] = defaultdict(int)
                for node in chunk:
                    counts[node.metadata["article_id"]] += 1
                collection.add(
                    ids=[n.node_id for n in chunk],
                    embeddings=[n.embedding for n in chunk],
                    documents=[n.get_content() for n in chunk],
                    metadatas=[
                        n.metadata | {"passages": counts[n.metadata["article_id"]], ORIGIN: origin}
                        for n in chunk
                    ],
                )
            embedded += len(nodes)
            if renew:
                renew()
            if progress:
                progress(1)
        return embedded

    # -- reading --------------------------------------------------------------------

    def stored_passages(self) -> StoredPassages:
        """The active build's passages and keyword index, brought up to date when another
        process (or this one) changed the index. Costs one read of the state when nothing
        did."""
        state = self.connection.state_metadata()
        if self.connection.stale(state):
            state = self.connection.reopen_if_stale()
        key = (str(state.get("active", "")), str(state.get("generation", "")))
        with self._reload_lock:
            if self._stored is None or self._stored.key != key:
                collection = self.builds.require_active()
                keywords = self.keyword_files.synced(collection, key[1])
                self._stored = load_passages(collection, key, self._stored, keywords)
                if self.connection.reopened:
                    # The old client's systems are in reference cycles: free their vector
                    # indexes and threads now rather than at some later collection.
                    self.connection.reopened = False
                    gc.collect()
        return self._stored

    def status(self) -> IndexStatus:
        state = self.connection.state_metadata()
        try:
            collection = self.builds.active()
        except ActiveBuildMissing:
            collection = None
        articles = passages = 0
        if collection is not None:
            articles, passages = len(stored_articles(collection)), collection.count()
        return IndexStatus(
            articles=articles,
            passages=passages,
            model=self.settings.model,
            backend=self.settings.backend,
            home=str(self.settings.home),
            chroma=self.settings.chroma_url or str(self.settings.home / "chroma"),
            collection=collection.name if collection is not None else None,
            rebuilt_at=state.get("rebuilt_at"),
            updated_at=state.get("updated_at"),
        )

    def sources(self) -> list[SourceStatus]:
        """Every library source with the number of articles indexed from it now."""
        try:
            collection = self.builds.active()
        except ActiveBuildMissing:
            collection = None
        counts: dict[str, int] = defaultdict(int)
        for article in stored_articles(collection).values():
            counts[article.origin or ""] += 1
        return [SourceStatus(s, counts.get(s.key, 0)) for s in self.library.sources()]


def _report(plan: Plan) -> IndexReport:
    return IndexReport(
        added=list(plan.added),
        changed=list(plan.changed),
        unchanged=list(plan.unchanged),
        removed=list(plan.removed),
        failed=list(plan.failed),
        kept=[Failure(k.article, k.reason) for k in plan.kept],
    )


def _outcomes(reads: Sequence[SourceRead]) -> list[tuple[str, str]]:
    return [(read.key, read.outcome()) for read in reads]


def _with_changes(
    records: list[LibrarySource], plan: Plan, stored: dict[str, Any]
) -> list[LibrarySource]:
    """Stamps `last_change` on the sources whose articles the plan adds, changes or removes."""
    changed = {origin for _, origin in plan.embed}
    removed = set(plan.removed)
    changed |= {a.origin for a in stored.values() if a.source in removed and a.origin}
    stamp = now()
    return [replace(r, last_change=stamp) if r.key in changed else r for r in records]


def _utf8_keys(sources: Iterable[str]) -> list[str]:
    """The library keys of `sources`; a name that is not UTF-8 cannot be one (the store
    keeps keys as UTF-8), which is one line before anything changes."""
    keys = [source_key(s) for s in sources]
    for key in keys:
        if not is_utf8(key):
            raise SourceError(escaped(key), NOT_UTF8_NAME + ": nothing was changed")
    return keys


def _records_at(collection: Any, url: str) -> dict[str, Any]:
    """The JSON records whose url is `url`: their id before ids named their export."""
    found = stored_articles(collection, where={"url": url})
    return {i: a for i, a in found.items() if i.endswith("#" + url)}


def _kind(key: str, known: dict[str, LibrarySource]) -> str:
    if key in known:
        return known[key].kind
    return "url" if is_url(key) else local_kind(key)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
