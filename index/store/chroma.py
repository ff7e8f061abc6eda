"""The Chroma connection and cross-process sync: one client per process, reopened (for
the embedded store) when another process changed the index, and writes that take turns
through a lock file in the data directory (docs/DEPLOYMENT.md)."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.errors import SettingsError, StoreUnavailableError
from index.settings import Settings
from index.store.writers import Writer

STATE_COLLECTION = "citebot-state"
# In the data directory: held by the process writing to the embedded store.
WRITE_LOCK = "chroma.lock"

log = logging.getLogger(__name__)


class ChromaConnection:
    """The store `settings` name, and the `generation` token this process last synced.

    The `generation` in `citebot-state` changes with every change of the index. Every
    change writes its vectors before the generation, and a new embedded client loads a
    build's vectors when it first uses the build, so a client has every change up to
    the generation read after opening it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        # Guards opening and reopening the client, and the fields below.
        self.lock = threading.RLock()
        self.synced: str | None = None
        # Writes under way in this process (embedded store: they hold the write lock).
        self._writers = 0
        self.reopened = False

    @property
    def client(self) -> Any:
        with self.lock:
            if self._client is None:
                self._open()
            return self._client

    @property
    def embedded(self) -> bool:
        return not self.settings.chroma_url

    def state(self) -> Any:
        return self.client.get_or_create_collection(STATE_COLLECTION)

    def state_metadata(self) -> dict[str, Any]:
        return dict(self.state().metadata or {})

    def _open(self) -> dict[str, Any]:
        self._client = open_chroma(self.settings)
        state = self.state_metadata()
        self.synced = state.get("generation")
        return state

    def stale(self, state: dict[str, Any]) -> bool:
        """Whether another process changed the embedded store since this one opened it
        (a change of this process's own is no reason: its client made it)."""
        return self.embedded and not self._writers and state.get("generation") != self.synced

    def reopen_if_stale(self) -> dict[str, Any]:
        """Reopens the embedded store if another process changed the index, and returns
        the index state. Chroma's embedded client keeps each build's vector index in
        memory once loaded, and only a new client (after `clear_system_cache`) reads the
        vectors other processes added since."""
        with self.lock:
            state = self.state_metadata()
            if not self.stale(state):
                return state
            log.info("the index changed in another process: reopening the embedded store")
            # The old client keeps working: a thread may still be answering with it.
            self.reopened = True
            return self._open()

    @contextmanager
    def writing(self) -> Iterator[Writer]:
        """Held around every change. With the embedded store, one process writes at a
        time (a lock file in the data directory, released even when the process is
        killed), starting from a client that has the other processes' changes. With a
        server, processes write at once and share the articles to embed through the
        `Writer` this yields (index/store/writers.py)."""
        with write_lock(self.settings):
            with self.lock:
                if self.embedded:
                    self.reopen_if_stale()
                self._writers += 1
            writer = Writer(None if self.embedded else self.client)
            try:
                yield writer
            finally:
                writer.close()
                with self.lock:
                    self._writers -= 1


def open_chroma(settings: Settings, environ: Mapping[str, str] | None = None) -> Any:
    """An HTTP client for `chroma.url` (its tenant and database, with the token the
    variable `chroma.token_env` of `environ` holds), else an embedded store in the data
    directory.

    An embedded client gets a Chroma "system" of its own, which reads the store from
    disk: Chroma would otherwise hand it the system an earlier client of the same path
    made in this process, with the vector indexes that one loaded, which lack what other
    processes have added since. Earlier clients keep working."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings as ChromaSettings
    from chromadb.errors import NotFoundError

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.chroma_url)
        token = (os.environ if environ is None else environ).get(settings.chroma_token_env)
        try:
            return chromadb.HttpClient(
                host=parts.hostname or "127.0.0.1",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                headers={"x-chroma-token": token} if token else None,
                settings=chroma_settings,
                tenant=settings.chroma_tenant,
                database=settings.chroma_database,
            )
        except ValueError as exc:  # chromadb's "Could not connect to a Chroma server"
            raise StoreUnavailableError(unreachable(settings.chroma_url)) from exc
        except NotFoundError:
            raise SettingsError(
                f"the Chroma server at {settings.chroma_url} has no database "
                f"{settings.chroma_database!r} in tenant {settings.chroma_tenant!r} "
                "(chroma.database, chroma.tenant): create it on the server, or set those "
                "to the ones holding the index"
            ) from None
    path = Path(settings.home) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    SharedSystemClient.clear_system_cache()
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


# How a full disk reaches citebot: SQLite's SQLITE_FULL and the OS's ENOSPC, as Chroma's
# Rust core words them, or an OSError from Python's own writes.
_DISK_FULL = ("database or disk is full", "no space left on device", "(os error 28)")


def disk_full(exc: BaseException, home: Path) -> str | None:
    """The one line saying the data directory's disk is full, when `exc` (or its cause)
    is that; else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if (isinstance(seen, OSError) and seen.errno == errno.ENOSPC) or any(
            words in str(seen).lower() for words in _DISK_FULL
        ):
            try:
                free = f"{shutil.disk_usage(home).free // 1_000_000:,} MB free"
            except OSError:
                free = "free space unknown"
            return (
                f"the data directory's disk is full: free space on the disk of {home} "
                f"({free}), then run the command again; nothing indexed was lost"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def unreachable(url: str) -> str:
    """The one line saying the Chroma server at `url` did not answer, and what to do."""
    return (
        f"cannot reach the Chroma server at {url} (chroma.url / CITEBOT_CHROMA_URL): start "
        "it (docs/DEPLOYMENT.md), or unset chroma.url to use the embedded store"
    )


@contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Exclusive use of the embedded store for writing, between processes and threads
    (nothing for a Chroma server, which serializes each request itself; citebot's
    writers share the work through index/store/writers.py)."""
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
