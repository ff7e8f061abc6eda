"""Keeps each build's keyword index (index/store/keyword.py) in step with the store, across
processes: the file records the index generation it was brought to, so a process that
finds the generation it expects opens it without reading the collection; one that does
not brings it up to date under a lock, reading only the passages it lacks."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.store.build_records import PAGE, chunks, pages
from index.store.keyword import KeywordFile, KeywordFileError

# In the data directory: one file per build, named after it.
KEYWORD_FOLDER = "keywords"
SUFFIX = ".sqlite"

log = logging.getLogger(__name__)


class KeywordFiles:
    """The keyword indexes of the builds in one data directory."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / KEYWORD_FOLDER
        self._open: dict[str, KeywordFile] = {}

    def synced(self, collection: Any, generation: str) -> KeywordFile:
        """The keyword index of the active build `collection` at `generation` (or later);
        the files of other builds are deleted."""
        name = collection.name
        known = self._open.get(name)
        if known is not None and known.generation == generation:
            return known
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked(name):
            file = self._opened(name)
            if file is None:
                file = self._built(collection, generation)
            elif file.generation != generation:
                _update(file, collection, generation)
            self._drop_others(keep=name)
        self._open = {name: file}
        return file

    def prepare(self, collection: Any) -> None:
        """Makes the keyword index of a build before it becomes active, so that serving
        processes find it ready; a failure leaves the active build's index serving."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._locked(collection.name):
            if self._opened(collection.name) is None:
                self._built(collection, "").close()

    def path(self, name: str) -> Path:
        return self.folder / f"{name}{SUFFIX}"

    def _opened(self, name: str) -> KeywordFile | None:
        """The build's file, None when it is missing or damaged (it is then rebuilt)."""
        known = self._open.get(name)
        if known is not None:
            return known
        path = self.path(name)
        if not path.exists():
            return None
        try:
            file = KeywordFile(path)
            file.generation  # noqa: B018 - reads the file: a damaged one raises here
            return file
        except KeywordFileError as error:
            log.warning("rebuilding the keyword index: %s", error)
            return None

    def _built(self, collection: Any, generation: str) -> KeywordFile:
        """A new file for the build, made aside and put in place whole: a process killed
        while making it leaves no file (or the previous one) where readers look."""
        path = self.path(collection.name)
        aside = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        aside.unlink(missing_ok=True)
        file = KeywordFile.create(aside)
        everything = pages(collection, include=["documents", "metadatas"])
        file.change((row for page in everything for row in _passages(page)), [], generation)
        file.close()
        for stale in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        os.replace(aside, path)
        return KeywordFile(path)

    def _drop_others(self, keep: str) -> None:
        """Deletes the files of other builds and of makings that were killed (a process
        still answering from one keeps reading it until it moves to the new build)."""
        for path in self.folder.iterdir():
            if path.suffix == ".lock" or (path.suffix == ".tmp" and _making(path)):
                continue
            if not path.name.startswith(keep + SUFFIX) or path.suffix == ".tmp":
                path.unlink(missing_ok=True)

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """One process (and thread) at a time brings a build's file up to date; the
        others then find it up to date. Released even when the process is killed."""
        with (self.folder / f"{name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _making(path: Path) -> bool:
    """Whether the process that names the file `path` (NAME.PID.tmp) is still making it."""
    pid = path.stem.rpartition(".")[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _update(file: KeywordFile, collection: Any, generation: str) -> None:
    """Adds the passages of `collection` the file lacks and removes those it lost: within
    a build a passage id names one content, so ids are all there is to compare."""
    present = collection.get(include=[])["ids"]
    known = set(file.ids())
    gone = known.difference(present)
    new = [pid for pid in present if pid not in known]
    added = (
        row
        for chunk in chunks(new, PAGE)
        for row in _passages(collection.get(ids=list(chunk), include=["documents", "metadatas"]))
    )
    file.change(added, sorted(gone), generation)


def _passages(page: dict) -> Iterator[tuple[str, str, dict]]:
    for pid, text, meta in zip(page["ids"], page["documents"], page["metadatas"], strict=True):
        yield pid, text or "", meta or {}
