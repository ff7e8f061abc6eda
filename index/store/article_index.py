"""The index: the source library read into passages and vectors in Chroma.

`ArticleIndex` ties the parts together, each in a module of its own:
index/store/chroma.py (the connection and cross-process sync), index/store/builds.py
(builds, leases, the switch), index/sources/library.py (the sources),
index/sources/reading.py (reading them), index/store/planning.py (what a change embeds,
keeps and removes: a pure function), index/store/changing.py (how a change is read,
planned and applied), and index/store/snapshot.py (the passages a process answers
from). Every change, a rebuild, an add, a refresh or a remove, reads sources, plans,
then applies the plan: a rebuild into a new build it switches to once complete, the
others in place, new passages before old ones are deleted, so a kill at any point
leaves an index that answers.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.articles import Article
from index.errors import CitebotError, IndexMismatchError, IndexMissingError, SourceError
from index.report import Failure, IndexReport
from index.settings import Settings
from index.sources.fetch import CLI_POLICY, FetchPolicy, is_url
from index.sources.formats import read_bytes
from index.sources.library import LibraryReport, LibrarySource, SourceLibrary
from index.sources.reading import upload_key
from index.store.audit import AuditLog
from index.store.build_records import (
    ORIGIN,
    stored_articles,
)
from index.store.builds import (
    ActiveBuildMissing,
    Builds,
    now,
)
from index.store.changing import (
    Progress,
    apply_in_place,
    change_in_place,
    kind_of,
    local_user,
    read_sources,
    rebuild_from_library,
    records_at,
    utf8_keys,
)
from index.store.chroma import ChromaConnection
from index.store.keyword_files import KeywordFiles
from index.store.planning import Plan, SourceRead, StoredArticle, plan_changes
from index.store.snapshot import StoredPassages, load_passages
from index.store.status import IndexStatus, SourceStatus

if TYPE_CHECKING:  # llama-index and the models load in the methods that embed, not for
    # `citebot status` or `sources` (seconds of imports: docs/BENCHMARKS.md, "Cold start")
    from index.embedding.encoder import Encoder

REFRESHED_KINDS = ("url", "feed", "sitemap")

log = logging.getLogger(__name__)


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
        configured = utf8_keys(sources or self.settings.sources)

        def rebuild_library() -> IndexReport:
            self._require_encoder()
            with self.connection.writing() as writer:
                report = rebuild_from_library(self, writer, configured, prune, progress, on_total)
                self.library.save_report(LibraryReport("rebuild", now(), tuple(report.lines())))
            return report

        what = [*configured, *(["--prune"] if prune else [])]
        return self.audit.recorded("rebuild", local_user(), what, rebuild_library)

    # -- add, refresh, remove: changes in place ---------------------------------------

    def add(
        self,
        sources: Sequence[str],
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
        added_by: str | None = None,
        policy: FetchPolicy = CLI_POLICY,
        visible_in: str = "",
        team: str = "",
    ) -> IndexReport:
        """Adds sources (files, folders, URLs, feeds) to the library and indexes them;
        a source already in the library is read again (and keeps its visibility). A
        source that cannot be read at all is reported and not added. `visible_in`: the
        only Slack conversation a new source answers in, `team` its only workspace ("":
        every one)."""
        keys = list(dict.fromkeys(utf8_keys(sources)))
        who = added_by if added_by is not None else local_user()
        return self.audit.recorded(
            "add",
            who,
            keys,
            lambda: self._add(keys, who, progress, on_total, policy, visible_in, team),
        )

    def _add(
        self,
        keys: list[str],
        who: str,
        progress: Progress | None,
        on_total: Callable[[int], None] | None,
        policy: FetchPolicy,
        visible_in: str,
        team: str,
    ) -> IndexReport:
        self._require_encoder()
        known = {s.key: s for s in self.library.sources()}
        entries = [
            known.get(k)
            or LibrarySource(
                k,
                kind_of(k, known),
                "added",
                who,
                now(),
                public_only=policy.public_only,
                visible_in=visible_in,
                team=team,
            )
            for k in keys
        ]
        reading = read_sources(self, entries, policy)  # fetched before the write lock
        with self.connection.writing() as writer:
            return change_in_place(self, writer, entries, reading, progress, on_total, include=keys)

    def add_bytes(
        self,
        name: str,
        data: bytes,
        uploaded_by: str = "slack",
        visible_in: str = "",
        team: str = "",
    ) -> IndexReport:
        """Adds an uploaded file (`name` picks the reader by its extension). Its article
        id is `upload://<uploader>/<name>`: the same uploader sending a file of the same
        name again replaces it; its bytes are kept in the store for later rebuilds.
        `visible_in`: the only Slack conversation it answers in, `team` its only workspace
        ("": every one)."""
        add = lambda: self._add_bytes(name, data, uploaded_by, visible_in, team)  # noqa: E731
        return self.audit.recorded("upload", uploaded_by, [name], add)

    def _add_bytes(
        self, name: str, data: bytes, uploaded_by: str, visible_in: str, team: str
    ) -> IndexReport:
        key = upload_key(uploaded_by, name)
        try:
            read_bytes(
                name, data, key, self.settings.json_keys, max_chars=self.settings.max_article_chars
            )
        except SourceError as error:
            return IndexReport(failed=[Failure(error.source, error.reason)])
        with self.connection.writing() as writer:
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
                team=team,
            )
            reading = read_sources(self, [entry], CLI_POLICY)  # its bytes: nothing to fetch
            return change_in_place(self, writer, [entry], reading, None, None, include=[key])

    def add_articles(
        self,
        articles: Sequence[Article],
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Indexes articles that come from no library source (evaluation corpora): a
        rebuild keeps them unless `--prune`."""
        read = SourceRead("", True, tuple(articles), complete=False)

        def planned(collection: Any) -> tuple[dict[str, StoredArticle], Plan]:
            stored = stored_articles(collection, [a.id for a in articles])
            return stored, plan_changes(stored, [read])

        with self.connection.writing() as writer:
            return apply_in_place(self, writer, planned, progress, on_total)[2]

    def refresh(
        self,
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
        policy: FetchPolicy = CLI_POLICY,
    ) -> IndexReport:
        """Re-reads every URL, feed and sitemap of the library with conditional requests:
        an unchanged page is neither downloaded nor embedded again, a changed one
        replaces its old version, a feed's new entries are added."""
        entries = [s for s in self.library.sources() if s.kind in REFRESHED_KINDS]
        if not entries:
            return IndexReport()
        # Fetched before the write lock is taken: an add need not wait for slow feeds.
        reading = read_sources(self, entries, policy, conditional=True)
        with self.connection.writing() as writer:
            report = change_in_place(self, writer, entries, reading, progress, on_total)
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
        who = removed_by if removed_by is not None else local_user()
        return self.audit.recorded("remove", who, items, lambda: self._remove(items, who))

    def _remove(self, items: Sequence[str], who: str) -> IndexReport:
        with self.connection.writing() as writer:
            # Nothing to remove from an index that is not there: no empty build is made.
            collection = self.builds.require_active()
            library = self.library
            known = {s.key: s for s in library.sources()}
            sources, articles = [], []
            for item in items:
                [key] = utf8_keys([item])
                if key in known:
                    if known[key].origin == "config":
                        raise CitebotError(
                            f"{item} is configured in index.sources: remove it there, then run "
                            "`citebot index rebuild --prune`"
                        )
                    sources.append(key)
                    continue
                found = stored_articles(collection, [key, item]) or records_at(collection, item)
                if not found:
                    raise NoSuchSource(
                        f"{item} is neither a source nor an indexed article: see `citebot sources`"
                    )
                articles += list(found)

            def planned(collection: Any) -> tuple[dict[str, StoredArticle], Plan]:
                where = {ORIGIN: {"$in": sources}}
                owned = stored_articles(collection, where=where) if sources else {}
                ids = set(owned) | set(articles)
                stored = stored_articles(collection, sorted(ids))
                return stored, plan_changes(stored, [], remove=ids)

            report = apply_in_place(self, writer, planned, None, None, create=False)[2]
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

        who = shared_by if shared_by is not None else local_user()
        return self.audit.recorded(
            "share", who, keys, share_sources, lambda shared: f"{len(shared)} made public"
        )

    def _require_encoder(self) -> None:
        """Refuses an encoder these settings cannot have before reading, not after."""
        if self.settings.backend != "torch":
            from index.embedding.encoder import require_onnx

            require_onnx(self.settings.backend)
        if self.settings.device == "cuda":  # "auto" and "cpu" always find their device
            from index.embedding.encoder import resolve_device

            resolve_device(self.settings.device, self.settings.backend)

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

    def _indexed_articles(self) -> dict[str, str | None]:
        """Each indexed article's id and the library source it came from, read from the
        snapshot: a serving process reads nothing more of the store (at a million
        passages, their metadata in the store carries their sentence vectors too). An
        index of other settings is read from the store, to be listed all the same."""
        try:
            articles = self.stored_passages().metadatas.in_articles()
            return {a.article_id: a.origin for a in articles}
        except IndexMissingError:
            return {}
        except (IndexMismatchError, ActiveBuildMissing):
            with suppress(ActiveBuildMissing):
                return {a.id: a.origin for a in stored_articles(self.builds.active()).values()}
            return {}

    def status(self) -> IndexStatus:
        state = self.connection.state_metadata()
        try:
            collection = self.builds.active()
        except ActiveBuildMissing:
            collection = None
        return IndexStatus(
            articles=len(self._indexed_articles()),
            passages=collection.count() if collection is not None else 0,
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
        counts = Counter(origin or "" for origin in self._indexed_articles().values())
        return [SourceStatus(s, counts.get(s.key, 0)) for s in self.library.sources()]
