"""The index: passages and their vectors in Chroma, built aside and switched atomically.

Chroma holds everything citebot needs, so several processes sharing one Chroma server see
the same index: each build is a collection `passages-<stamp>`, and the small collection
`citebot-state` names the active build in its metadata. A rebuild fills a new collection
and only then switches the name, so a rebuild that fails or is killed leaves the previous
index serving. The keyword index is derived from the stored passages, per process.

The `generation` token in `citebot-state` changes with every change. A process reloads
what it holds when it changes; with the embedded store it also reopens the store, and
its writes take turns with other processes' through a lock file (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

import fcntl
import gc
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.ingestion import IngestionPipeline

from index.articles import Article
from index.embedding import Encoder, require_onnx
from index.errors import (
    CitebotError,
    IndexMismatchError,
    IndexMissingError,
    SettingsError,
    SourceError,
    StoreUnavailableError,
)
from index.keyword import KeywordIndex
from index.passages import PassageEncoder, PassageSplitter, article_document
from index.report import Failure, IndexReport
from index.settings import Settings
from index.sources import LoadResult, load_sources, read_bytes

STATE_COLLECTION = "citebot-state"
BUILD_PREFIX = "passages-"
PAGE = 2000
# Bump when sentence or passage splitting changes: stored offsets depend on it.
SPLITTER_VERSION = "punkt-english-3"
# A build whose rebuild has not renewed its lease (`heartbeat_at`) for this long was
# abandoned: its rebuild was killed. A running rebuild renews it as it goes.
BUILD_LEASE = timedelta(minutes=15)
LEASE_RENEWAL = timedelta(minutes=1)
# In the data directory: held by the process writing to the embedded store.
WRITE_LOCK = "chroma.lock"

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class StoredPassages:
    """All passages of the active build, in one order, with their keyword index."""

    collection: Any
    key: tuple[str, str]
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    keywords: KeywordIndex
    row: dict[str, int]

    def dense_search(self, query_embedding: list[float], k: int) -> list[tuple[str, float]]:
        """(passage id, cosine similarity) of the `k` nearest passages."""
        if not self.ids:
            return []
        result = self.collection.query(
            query_embeddings=[query_embedding],
            n_results=min(k, len(self.ids)),
            include=["distances"],
        )
        return [
            (pid, 1.0 - float(distance))
            for pid, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def similarities(
        self, ids: Sequence[str], query_embedding: Sequence[float]
    ) -> dict[str, float]:
        """Cosine similarity of the query to each of `ids` (vectors are unit length)."""
        if not ids:
            return {}
        page = self.collection.get(ids=list(ids), include=["embeddings"])
        query = np.asarray(query_embedding, dtype=np.float32)
        vectors = np.asarray(page["embeddings"], dtype=np.float32)
        return dict(zip(page["ids"], (vectors @ query).tolist(), strict=True))


@dataclass(frozen=True)
class IndexStatus:
    articles: int
    passages: int
    model: str
    backend: str
    home: str
    chroma: str
    collection: str | None
    rebuilt_at: str | None
    updated_at: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class ArticleIndex:
    """Builds, updates and reads the index described by `settings`."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None) -> None:
        self.settings = settings
        self._encoder = encoder
        self._client: Any = None
        self._stored: StoredPassages | None = None
        self._reload_lock = threading.Lock()
        # Guards opening and reopening the client, and the fields below.
        self._encoder_lock = threading.Lock()
        self._client_lock = threading.RLock()
        # The newest generation whose vectors the embedded client is sure to have.
        self._synced: str | None = None
        # Writes under way in this process (embedded store: they hold the write lock).
        self._writers = 0
        self._reopened = False

    # -- plumbing -------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._open()
            return self._client

    @property
    def embedded(self) -> bool:
        return not self.settings.chroma_url

    def _open(self) -> dict[str, Any]:
        """Opens the store and returns the index state. Every change writes its vectors
        before the generation, and a new embedded client loads a build's vectors when it
        first uses the build, so the client has every change up to the generation read
        after opening it."""
        self._client = open_chroma(self.settings)
        state = self._state().metadata or {}
        self._synced = state.get("generation")
        return state

    def _stale(self, state: dict[str, Any]) -> bool:
        """Whether another process changed the embedded store since this one opened it
        (a change of this process's own is no reason: its client made it)."""
        return self.embedded and not self._writers and state.get("generation") != self._synced

    def _reopen_if_stale(self) -> dict[str, Any]:
        """Reopens the embedded store if another process changed the index, and returns
        the index state. Chroma's embedded client keeps each build's vector index in
        memory once loaded, and only a new client (after `clear_system_cache`) reads the
        vectors other processes added since."""
        with self._client_lock:
            state = self._state().metadata or {}
            if not self._stale(state):
                return state
            log.info("the index changed in another process: reopening the embedded store")
            # The old client keeps working: a thread may still be answering with it.
            self._reopened = True
            return self._open()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Held around every change. With the embedded store, one process writes at a
        time (a lock file in the data directory, released even when the process is
        killed), starting from a client that has the other processes' changes."""
        with _write_lock(self.settings):
            with self._client_lock:
                if self.embedded:
                    self._reopen_if_stale()
                self._writers += 1
            try:
                yield
            finally:
                with self._client_lock:
                    self._writers -= 1

    @property
    def encoder(self) -> Encoder:
        """The encoder for questions. Before loading it (seconds; the first ONNX use also
        exports the model), checks that the index was built with these settings."""
        if self._encoder is None:
            collection = self.active_collection()
            if collection is not None:
                self._check_identity(collection)
        return self._loaded_encoder()

    def _loaded_encoder(self) -> Encoder:
        # Under a lock: questions arriving together must not load the model each.
        with self._encoder_lock:
            if self._encoder is None:
                self._encoder = Encoder.from_settings(self.settings)
            return self._encoder

    def index_state(self) -> dict[str, Any]:
        """The index's state: the active build, its generation, updated_at, rebuilt_at."""
        return dict(self._state().metadata or {})

    def _state(self) -> Any:
        return self.client.get_or_create_collection(STATE_COLLECTION)

    def index_identity(self) -> dict[str, Any]:
        """What a build's vectors depend on; a mismatch means the index must be rebuilt
        (the eval cache keys its indexes by it too)."""
        return {
            "model": self.settings.model,
            "backend": self.settings.backend,
            "passage_sentences": self.settings.passage_sentences,
            "passage_chars": self.settings.passage_chars,
            "splitter": SPLITTER_VERSION,
        }

    def active_collection(self) -> Any | None:
        name = (self._state().metadata or {}).get("active")
        if not name:
            return None
        try:
            return self.client.get_collection(name)
        except Exception:  # noqa: BLE001 - chroma raises several types for "not found"
            return None

    def _require_active(self) -> Any:
        collection = self.active_collection()
        if collection is None:
            raise IndexMissingError(
                "there is no index yet: run `citebot index rebuild` (or `citebot add PATH`)"
            )
        self._check_identity(collection)
        return collection

    def _check_identity(self, collection: Any) -> None:
        built = _identity(collection.metadata)
        wanted = self.index_identity()
        if built != wanted:
            differs = ", ".join(
                f"{k} {built[k]!r} (settings: {wanted[k]!r})"
                for k in wanted
                if built[k] != wanted[k]
            )
            raise IndexMismatchError(
                f"the index was built with other settings ({differs}): run `citebot index rebuild`"
            )

    def _new_collection(self) -> Any:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        return self.client.create_collection(
            f"{BUILD_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}",
            metadata=self.index_identity() | {"created_at": _now(), "heartbeat_at": _now()},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    def _switch(self, collection: Any, rebuilt: bool) -> str | None:
        """Makes `collection` the active build; returns the build that was active."""
        state = dict(self._state().metadata or {})
        previous = state.get("active")
        generation = uuid.uuid4().hex
        state.update(active=collection.name, generation=generation, updated_at=_now())
        if rebuilt:
            state["rebuilt_at"] = state["updated_at"]
        self._state().modify(metadata=state)
        with self._client_lock:
            self._synced = generation
        return previous

    def _mark_rebuilt(self) -> None:
        state = dict(self._state().metadata or {})
        state["rebuilt_at"] = _now()
        self._state().modify(metadata=state)

    def _drop_abandoned_builds(self, keep: set[str]) -> None:
        """Deletes builds left behind by rebuilds that were killed before switching.

        On a Chroma server other processes may be rebuilding, so only builds whose lease
        expired are deleted. The embedded store's writers take turns, so there every build
        but the active one and `keep` is abandoned."""
        keep = keep | {(self._state().metadata or {}).get("active")}
        expired = datetime.now(UTC) - BUILD_LEASE
        for collection in self.client.list_collections():
            if isinstance(collection, str):  # chromadb before 0.6 lists names
                collection = self.client.get_collection(collection)
            if not collection.name.startswith(BUILD_PREFIX) or collection.name in keep:
                continue
            if self.embedded or _lease_time(collection.metadata) < expired:
                self._delete_build(collection.name)

    def _delete_build(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        try:
            self.client.delete_collection(name)
        except NotFoundError:
            pass  # another process deleted it first

    # -- writing --------------------------------------------------------------------

    def rebuild(
        self,
        sources: Sequence[str] | None = None,
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Indexes exactly `sources` (default: the configured ones) into a new build,
        reusing the vectors of unchanged articles, then makes it the active index."""
        sources = sources or self.settings.sources
        if not sources:
            raise SettingsError(
                "there are no sources to index: set index.sources in the settings file "
                "(`citebot config` names it) or pass --sources PATH_OR_URL"
            )
        loaded = self._load(sources)
        with self._writing():
            return self._rebuild(
                loaded.articles, IndexReport(failed=list(loaded.failures)), progress, on_total
            )

    def _rebuild(
        self,
        loaded: Sequence[Article],
        report: IndexReport,
        progress: Progress | None,
        on_total: Callable[[int], None] | None,
    ) -> IndexReport:
        old = self.active_collection()
        if old is not None and _identity(old.metadata) != self.index_identity():
            old_stored: dict[str, dict[str, list[str]]] = {}
        else:
            old_stored = _stored_articles(old) if old is not None else {}
        self._drop_abandoned_builds(keep={old.name} if old is not None else set())
        articles = _unique(loaded, report)
        to_embed, to_copy = [], []
        for article in articles:
            versions = old_stored.get(article.id, {})
            if set(versions) == {article.content_hash}:
                to_copy += versions[article.content_hash]
                report.unchanged.append(article.source)
            else:
                to_embed.append(article)
                (report.changed if versions else report.added).append(article.source)
        # A source that failed to load keeps what was indexed from it before.
        kept = {a.id for a in articles}
        for article_id, versions in old_stored.items():
            if article_id in kept:
                continue
            if _failed_source(article_id, report.failed):
                to_copy += [pid for ids in versions.values() for pid in ids]
            else:
                report.removed.append(_source_of(old, versions))
        if old is not None and not to_embed and not report.removed and len(to_copy) == old.count():
            # Nothing changed: the active build already is the index asked for.
            self._mark_rebuilt()
            return report
        new = self._new_collection()
        lease = _Lease(new)
        _copy(old, new, to_copy, lease.renew)
        if on_total:
            on_total(len(to_embed))
        report.passages_embedded = self._embed_into(new, to_embed, progress, lease.renew)
        lease.check(self.client)
        previous = self._switch(new, rebuilt=True)
        # Another rebuild may have switched since this one started: drop whatever was
        # active at the switch (the one this rebuild started from is then gone already).
        if previous and previous != new.name:
            self._delete_build(previous)
        return report

    def add(
        self,
        sources: Sequence[str],
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Adds or updates the articles of `sources` in the active index."""
        loaded = self._load(sources)
        report = self.add_articles(loaded.articles, progress, on_total)
        report.failed[:0] = loaded.failures
        return report

    def _load(self, sources: Sequence[str]) -> LoadResult:
        if self.settings.backend != "torch":
            require_onnx(self.settings.backend)  # before reading, not after
        return load_sources(
            sources, self.settings.json_keys, max_chars=self.settings.max_article_chars
        )

    def add_bytes(self, name: str, data: bytes) -> IndexReport:
        """Adds an uploaded file (`name` picks the reader by its extension)."""
        try:
            loaded = read_bytes(
                name, data, name, self.settings.json_keys, max_chars=self.settings.max_article_chars
            )
        except SourceError as error:
            return IndexReport(failed=[Failure(error.source, error.reason)])
        report = self.add_articles(loaded.articles)
        report.failed[:0] = loaded.failures
        return report

    def add_articles(
        self,
        articles: Sequence[Article],
        progress: Progress | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> IndexReport:
        with self._writing():
            return self._add_articles(articles, progress, on_total)

    def _add_articles(
        self,
        articles: Sequence[Article],
        progress: Progress | None,
        on_total: Callable[[int], None] | None,
    ) -> IndexReport:
        report = IndexReport()
        collection = self.active_collection()
        if collection is None:
            collection = self._new_collection()
            self._switch(collection, rebuilt=False)
        elif _identity(collection.metadata) != self.index_identity():
            raise IndexMismatchError(
                "the index was built with other index settings (model, backend or passage "
                "size): run `citebot index rebuild` before adding"
            )
        articles = _unique(articles, report)
        stored = _stored_articles(collection, [a.id for a in articles])
        to_embed = []
        for article in articles:
            versions = stored.get(article.id, {})
            if set(versions) == {article.content_hash}:
                report.unchanged.append(article.source)
            else:
                to_embed.append(article)
                (report.changed if versions else report.added).append(article.source)
        if on_total:
            on_total(len(to_embed))
        # Add the new version first, then delete the old: a kill in between never loses
        # the article, and the next add sees two versions and cleans up.
        report.passages_embedded = self._embed_into(collection, to_embed, progress)
        stale = [
            pid
            for article in to_embed
            for content_hash, ids in stored.get(article.id, {}).items()
            if content_hash != article.content_hash
            for pid in ids
        ]
        for chunk in _chunks(stale, PAGE):
            collection.delete(ids=chunk)
        if to_embed:
            self._switch(collection, rebuilt=False)
        return report

    def remove(self, sources: Sequence[str]) -> IndexReport:
        """Removes from the active index the articles of `sources`: a file or URL, or a
        folder (every article under it) or export (its records), as they were added."""
        report = IndexReport()
        with self._writing():
            collection = self.active_collection()
            if collection is None:
                raise IndexMissingError("there is no index yet: nothing to remove")
            doomed: list[str] = []
            for source in sources:
                found = [
                    pid
                    for page in _pages(collection, include=["metadatas"])
                    for pid, meta in zip(page["ids"], page["metadatas"], strict=True)
                    if _from_source(meta, source)
                ]
                if found:
                    report.removed.append(source)
                    doomed += found
                else:
                    report.failed.append(Failure(source, "not in the index"))
            for chunk in _chunks(doomed, PAGE):
                collection.delete(ids=list(chunk))
            if doomed:
                self._switch(collection, rebuilt=False)
        return report

    def _embed_into(
        self,
        collection: Any,
        articles: list[Article],
        progress: Progress | None,
        renew: Callable[[], None] | None = None,
    ) -> int:
        if not articles:
            return 0  # and the model need not be loaded
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
        for article in articles:
            nodes = pipeline.run(documents=[article_document(article)])
            for chunk in _chunks(nodes, self.client.get_max_batch_size()):
                counts: dict[str, int] = defaultdict(int)
                for node in chunk:
                    counts[node.metadata["article_id"]] += 1
                collection.add(
                    ids=[n.node_id for n in chunk],
                    embeddings=[n.embedding for n in chunk],
                    documents=[n.get_content() for n in chunk],
                    metadatas=[
                        n.metadata | {"passages": counts[n.metadata["article_id"]]} for n in chunk
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
        state = self._state().metadata or {}
        if self._stale(state):
            state = self._reopen_if_stale()
        key = (str(state.get("active", "")), str(state.get("generation", "")))
        with self._reload_lock:
            if self._stored is None or self._stored.key != key:
                self._stored = self._load_passages(self._require_active(), key, self._stored)
                if self._reopened:
                    # The old client's systems are in reference cycles: free their vector
                    # indexes and threads now rather than at some later collection.
                    self._reopened = False
                    gc.collect()
        return self._stored

    def _load_passages(
        self, collection: Any, key: tuple[str, str], previous: StoredPassages | None
    ) -> StoredPassages:
        """Reads the passages of `collection`, reusing what `previous` holds.

        For the same build, only the passages added since are read: within a build a
        passage id names one content (its article's content hash and its number), and
        Chroma never overwrites a stored id. Another build is read whole (an article
        renamed keeps its passage ids, not its metadata), but the keyword index still
        reuses the terms of every passage it had."""
        if previous is not None and previous.key[0] == key[0]:
            present = collection.get(include=[])["ids"]
            fresh = _read_passages(collection, [p for p in present if p not in previous.row])
            keep = np.zeros(len(previous.ids), dtype=bool)
            keep[[previous.row[p] for p in present if p in previous.row]] = True
            rows = np.flatnonzero(keep).tolist()
            if len(rows) == len(previous.ids):  # nothing removed: the usual add
                ids, texts, metadatas = previous.ids, previous.texts, previous.metadatas
            else:
                ids = [previous.ids[i] for i in rows]
                texts = [previous.texts[i] for i in rows]
                metadatas = [previous.metadatas[i] for i in rows]
        else:
            fresh = _read_passages(collection)
            ids, texts, metadatas = [], [], []
            if previous is not None:
                keep = np.fromiter((p in fresh for p in previous.ids), bool, len(previous.ids))
                for pid in previous.ids:
                    if pid in fresh:
                        text, metadata = fresh.pop(pid)
                        ids.append(pid)
                        texts.append(text)
                        metadatas.append(metadata)
        # `fresh` now holds the passages `previous` did not have, in the order read.
        new_texts = [text for text, _ in fresh.values()]
        new_titles = [metadata["title"] for _, metadata in fresh.values()]
        if previous is None:
            keywords = KeywordIndex(new_texts, new_titles)
        else:
            keywords = previous.keywords.updated(keep, new_texts, new_titles)
        if previous is not None and ids is previous.ids:
            row = dict(previous.row)
        else:
            row = {pid: i for i, pid in enumerate(ids)}
        row.update((pid, len(ids) + i) for i, pid in enumerate(fresh))
        return StoredPassages(
            collection=collection,
            key=key,
            ids=ids + list(fresh),
            texts=texts + new_texts,
            metadatas=metadatas + [metadata for _, metadata in fresh.values()],
            keywords=keywords,
            row=row,
        )

    def status(self) -> IndexStatus:
        state = self._state().metadata or {}
        collection = self.active_collection()
        articles = passages = 0
        if collection is not None:
            stored = _stored_articles(collection)
            articles, passages = len(stored), collection.count()
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


def open_chroma(settings: Settings) -> Any:
    """An HTTP client for `chroma.url`, else an embedded store in the data directory.

    An embedded client gets a Chroma "system" of its own, which reads the store from
    disk: Chroma would otherwise hand it the system an earlier client of the same path
    made in this process, with the vector indexes that one loaded, which lack what other
    processes have added since. Earlier clients keep working."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.chroma_url)
        try:
            return chromadb.HttpClient(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=chroma_settings,
            )
        except ValueError as exc:  # chromadb's "Could not connect to a Chroma server"
            raise StoreUnavailableError(unreachable(settings.chroma_url)) from exc
    path = Path(settings.home) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    SharedSystemClient.clear_system_cache()
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def unreachable(url: str) -> str:
    """The one line saying the Chroma server at `url` did not answer, and what to do."""
    return (
        f"cannot reach the Chroma server at {url} (chroma.url / CITEBOT_CHROMA_URL): start "
        "it (docs/DEPLOYMENT.md), or unset chroma.url to use the embedded store"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _identity(metadata: dict[str, Any] | None) -> dict[str, Any]:
    metadata = metadata or {}
    keys = ("model", "backend", "passage_sentences", "passage_chars", "splitter")
    return {k: metadata.get(k) for k in keys}


def _pages(collection: Any, include: list[str], where: dict | None = None) -> Iterator[dict]:
    offset = 0
    while True:
        page = collection.get(include=include, where=where, limit=PAGE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def _read_passages(
    collection: Any, ids: Sequence[str] | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """passage id -> (text, metadata), of every passage or of `ids`."""
    if ids is None:
        pages: Iterable[dict] = _pages(collection, include=["documents", "metadatas"])
    else:
        pages = (
            collection.get(ids=list(chunk), include=["documents", "metadatas"])
            for chunk in _chunks(ids, PAGE)
        )
    passages: dict[str, tuple[str, dict[str, Any]]] = {}
    for page in pages:
        rows = zip(page["documents"], page["metadatas"], strict=True)
        passages.update(zip(page["ids"], rows, strict=True))
    return passages


def _stored_articles(
    collection: Any, article_ids: Sequence[str] | None = None
) -> dict[str, dict[str, list[str]]]:
    """article id -> content hash -> passage ids, keeping only complete versions
    (a version with fewer passages than it was split into is left for cleanup)."""
    where = None
    if article_ids is not None:
        if not article_ids:
            return {}
        where = {"article_id": {"$in": list(article_ids)}}
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    expected: dict[tuple[str, str], int] = {}
    for page in _pages(collection, include=["metadatas"], where=where):
        for pid, meta in zip(page["ids"], page["metadatas"], strict=True):
            found[meta["article_id"]][meta["content_hash"]].append(pid)
            expected[(meta["article_id"], meta["content_hash"])] = meta.get("passages", 0)
    result: dict[str, dict[str, list[str]]] = {}
    for article_id, versions in found.items():
        result[article_id] = {}
        for content_hash, ids in versions.items():
            complete = len(ids) == expected[(article_id, content_hash)]
            # An incomplete version is listed under a key no article hash can equal.
            result[article_id][content_hash if complete else f"partial:{content_hash}"] = ids
    return result


def _copy(source: Any, target: Any, ids: list[str], renew: Callable[[], None]) -> None:
    for chunk in _chunks(ids, PAGE):
        page = source.get(ids=chunk, include=["embeddings", "documents", "metadatas"])
        target.add(
            ids=page["ids"],
            embeddings=page["embeddings"],
            documents=page["documents"],
            metadatas=page["metadatas"],
        )
        renew()


class _Lease:
    """A rebuild's claim on its unfinished build: the build's `heartbeat_at`, renewed at
    most once a LEASE_RENEWAL. Other rebuilds leave the build alone until BUILD_LEASE
    after the last renewal."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.renewed = time.monotonic()

    def renew(self) -> None:
        if time.monotonic() - self.renewed < LEASE_RENEWAL.total_seconds():
            return
        metadata = dict(self.collection.metadata or {}) | {"heartbeat_at": _now()}
        self.collection.modify(metadata=metadata)
        self.renewed = time.monotonic()

    def check(self, client: Any) -> None:
        """Raises CitebotError when another process deleted the build (the lease expired:
        this rebuild stalled for longer than BUILD_LEASE)."""
        from chromadb.errors import NotFoundError

        try:
            client.get_collection(self.collection.name)
        except NotFoundError:
            raise CitebotError(
                f"this rebuild's build {self.collection.name} was deleted by another rebuild "
                f"after {BUILD_LEASE.total_seconds() / 60:.0f} minutes without progress: "
                "run `citebot index rebuild` again"
            ) from None


@contextmanager
def _write_lock(settings: Settings) -> Iterator[None]:
    """Exclusive use of the embedded store for writing, between processes and threads
    (nothing for a Chroma server, which serializes writes itself)."""
    if settings.chroma_url:
        yield
        return
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    with (home / WRITE_LOCK).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another citebot process to finish writing the index")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _lease_time(metadata: dict[str, Any] | None) -> datetime:
    """When a build's lease was last renewed (builds made before leases: when created)."""
    metadata = metadata or {}
    try:
        return datetime.fromisoformat(metadata.get("heartbeat_at") or metadata["created_at"])
    except (KeyError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def _source_of(collection: Any, versions: dict[str, list[str]]) -> str:
    any_id = next(iter(versions.values()))[0]
    return collection.get(ids=[any_id], include=["metadatas"])["metadatas"][0]["source"]


def _from_source(meta: dict[str, Any], source: str) -> bool:
    """Whether a passage's article came from `source` (itself, a folder or an export)."""
    base = source.rstrip("/")
    return any(
        value == source or value.startswith((base + "/", base + "#"))
        for value in (meta["source"], meta["article_id"], meta.get("url") or "")
        if value
    )


def _failed_source(article_id: str, failures: Iterable[Failure]) -> bool:
    """Whether the article came from a source (file, folder or export) that failed to load."""
    for failure in failures:
        base = failure.source.rstrip("/")
        if article_id == failure.source or article_id.startswith((base + "#", base + "/")):
            return True
    return False


def _unique(articles: Iterable[Article], report: IndexReport) -> list[Article]:
    seen: dict[str, Article] = {}
    for article in articles:
        if article.id in seen:
            report.failed.append(Failure(article.source, f"duplicate article id {article.id}"))
        else:
            seen[article.id] = article
    return list(seen.values())


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stored_sentences(metadata: dict[str, Any]) -> list[tuple[int, int]]:
    return [tuple(span) for span in json.loads(metadata["sentences"])]
