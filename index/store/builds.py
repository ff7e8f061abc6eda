"""The build lifecycle: each build is a collection `passages-<stamp>`, filled aside under a
lease and made active by one write of `citebot-state`, so a rebuild that fails or is
killed leaves the previous index serving; abandoned builds are deleted later."""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from index.errors import CitebotError, IndexMismatchError, IndexMissingError
from index.store.chroma import ChromaConnection
from index.store.writers import turn

BUILD_PREFIX = "passages-"
# Bump when sentence or passage splitting changes: stored offsets depend on it.
SPLITTER_VERSION = "punkt-english-3"
# A build whose rebuild has not renewed its lease (`heartbeat_at`) for this long was
# abandoned: its rebuild was killed. A running rebuild renews it as it goes.
BUILD_LEASE = timedelta(minutes=15)
LEASE_RENEWAL = timedelta(minutes=1)
IDENTITY_KEYS = ("model", "backend", "passage_sentences", "passage_chars", "splitter")


class ActiveBuildMissing(CitebotError):
    """`citebot-state` names an active build the store does not have."""


class Builds:
    """The builds in one store, and which is active."""

    def __init__(self, connection: ChromaConnection) -> None:
        self.connection = connection
        self.settings = connection.settings

    @property
    def client(self) -> Any:
        return self.connection.client

    def identity(self) -> dict[str, Any]:
        """What a build's vectors depend on; a mismatch means the index must be rebuilt
        (the eval cache keys its indexes by it too)."""
        return {
            "model": self.settings.model,
            "backend": self.settings.backend,
            "passage_sentences": self.settings.passage_sentences,
            "passage_chars": self.settings.passage_chars,
            "splitter": SPLITTER_VERSION,
        }

    def active(self) -> Any | None:
        """The active build, None when there is none yet. A build the state names but the
        store lacks raises ActiveBuildMissing (a store error propagates as it is): either
        must not be taken for "no index", which would start an empty one."""
        from chromadb.errors import NotFoundError

        name = self.connection.state_metadata().get("active")
        if not name:
            return None
        try:
            return self.client.get_collection(name)
        except NotFoundError:
            raise ActiveBuildMissing(
                f"the active build {name} is missing from the store: run `citebot index rebuild`"
            ) from None

    def require_active(self) -> Any:
        collection = self.active()
        if collection is None:
            raise IndexMissingError(
                "there is no index yet: run `citebot index rebuild` (or `citebot add PATH`)"
            )
        self.check_identity(collection)
        return collection

    def check_identity(self, collection: Any) -> None:
        """Raises IndexMismatchError when `collection` was built with other settings."""
        built = identity_of(collection.metadata)
        wanted = self.identity()
        if built != wanted:
            differs = ", ".join(
                f"{k} {built[k]!r} (settings: {wanted[k]!r})"
                for k in wanted
                if built[k] != wanted[k]
            )
            raise IndexMismatchError(
                f"the index was built with other settings ({differs}): run `citebot index rebuild`"
            )

    def create(self) -> Any:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        return self.client.create_collection(
            f"{BUILD_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}",
            metadata=self.identity() | {"created_at": now(), "heartbeat_at": now()},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    def switch(self, collection: Any, rebuilt: bool) -> str | None:
        """Makes `collection` the active build (a new generation); returns the build that
        was active."""
        with self.turn():
            return self._activate(collection, rebuilt)

    def touch(self, collection: Any) -> bool:
        """A new generation for a change made in place in `collection`, if it is still the
        active build; False when a rebuild on a Chroma server switched to another one
        while the change was written (it is then made again there)."""
        with self.turn():
            if self.connection.state_metadata().get("active") != collection.name:
                return False
            self._activate(collection, rebuilt=False)
            return True

    def active_or_new(self) -> Any:
        """The active build, made (empty) when there is none: by one process of several
        adding to an empty Chroma server at once."""
        with self.turn():
            collection = self.active()
            if collection is None:
                collection = self.create()
                self._activate(collection, rebuilt=False)
            return collection

    def mark_rebuilt(self) -> None:
        with self.turn():
            state = self.connection.state_metadata()
            state["rebuilt_at"] = now()
            self.connection.state().modify(metadata=state)

    def turn(self) -> AbstractContextManager[None]:
        """Held around each change of `citebot-state`, whose metadata Chroma replaces
        whole: on a server, one process at a time (index/store/writers.py); the embedded
        store's writers already take turns."""
        return nullcontext() if self.connection.embedded else turn(self.client)

    def _activate(self, collection: Any, rebuilt: bool) -> str | None:
        state = self.connection.state_metadata()
        previous = state.get("active")
        generation = uuid.uuid4().hex
        state.update(active=collection.name, generation=generation, updated_at=now())
        if rebuilt:
            state["rebuilt_at"] = state["updated_at"]
        self.connection.state().modify(metadata=state)
        with self.connection.lock:
            self.connection.synced = generation
        return previous

    def drop_abandoned(self, keep: set[str]) -> None:
        """Deletes builds left behind by rebuilds that were killed before switching.

        On a Chroma server other processes may be rebuilding, so only builds whose lease
        expired are deleted. The embedded store's writers take turns, so there every build
        but the active one and `keep` is abandoned."""
        keep = keep | {self.connection.state_metadata().get("active")}
        expired = datetime.now(UTC) - BUILD_LEASE
        for collection in self.client.list_collections():
            if isinstance(collection, str):  # chromadb before 0.6 lists names
                collection = self.client.get_collection(collection)
            if not collection.name.startswith(BUILD_PREFIX) or collection.name in keep:
                continue
            if self.connection.embedded or lease_time(collection.metadata) < expired:
                self.delete(collection.name)

    def delete(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        try:
            self.client.delete_collection(name)
        except NotFoundError:
            pass  # another process deleted it first


class Lease:
    """A claim on an unfinished build, or on a job such as a refresh: the collection's
    `heartbeat_at`, renewed at most once a LEASE_RENEWAL. Others leave it alone until
    BUILD_LEASE after the last renewal."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.renewed = time.monotonic()

    def renew(self) -> None:
        if time.monotonic() - self.renewed < LEASE_RENEWAL.total_seconds():
            return
        metadata = dict(self.collection.metadata or {}) | {"heartbeat_at": now()}
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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def identity_of(metadata: dict[str, Any] | None) -> dict[str, Any]:
    metadata = metadata or {}
    return {k: metadata.get(k) for k in IDENTITY_KEYS}


def lease_time(metadata: dict[str, Any] | None) -> datetime:
    """When a lease was last renewed (builds made before leases: when created)."""
    metadata = metadata or {}
    try:
        return datetime.fromisoformat(metadata.get("heartbeat_at") or metadata["created_at"])
    except (KeyError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)
