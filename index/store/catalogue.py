"""What a read snapshot (index/store/snapshot.py) knows of every passage, held in arrays
rather than a Python object per passage: its id, and where it comes from. At a million
passages a list of ids, a dict from id to position and a `PassageInfo` each took about
450 bytes a passage; these arrays hold about 80 (docs/BENCHMARKS.md, "100,000 to
1,000,000 passages: the snapshot in arrays")."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Any, overload

import numpy as np

from index.store.passage_info import PassageInfo


class PassageIds(Sequence[str]):
    """Passage ids by position, and the position of an id: the ids' UTF-8 bytes in one
    buffer, and their hashes sorted, so that neither a str object nor a dict entry is
    held per passage. Immutable: `chained` and `taken` make new ones."""

    def __init__(self, encoded: bytes, ends: np.ndarray, hashes: np.ndarray) -> None:
        """`encoded`: the ids' UTF-8 bytes, one after another, id i ending at `ends[i]`;
        `hashes`: each id's `key` (this process's hash: they are never stored)."""
        self._bytes = encoded
        self._ends = ends
        self._hashes = hashes

    @classmethod
    def of(cls, ids: Sequence[str]) -> PassageIds:
        encoded = [pid.encode() for pid in ids]
        ends = np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)))
        hashes = np.fromiter(map(cls.key, ids), np.int64, len(encoded))
        return cls(b"".join(encoded), ends, hashes)

    @staticmethod
    def key(pid: str) -> int:
        """What an id is looked up by: its hash, which other ids may share."""
        return hash(pid)

    @classmethod
    def chained(cls, parts: Sequence[PassageIds]) -> PassageIds:
        """The ids of `parts`, one part after another."""
        parts = [part for part in parts if len(part)] or [cls.of([])]
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [len(part._bytes) for part in parts[:-1]])
        return cls(
            b"".join(part._bytes for part in parts),
            np.concatenate(
                [np.zeros(0, np.int64)]
                + [part._ends + int(offset) for part, offset in zip(parts, offsets, strict=True)]
            ),
            np.concatenate([np.zeros(0, np.int64)] + [part._hashes for part in parts]),
        )

    def taken(self, positions: np.ndarray) -> PassageIds:
        """The ids at `positions` (increasing), in that order."""
        starts = self._starts()
        lengths = self._ends - starts
        keep = np.zeros(len(self), bool)
        keep[positions] = True
        kept_bytes = np.repeat(keep, lengths)
        encoded = np.frombuffer(self._bytes, np.uint8)[kept_bytes].tobytes()
        return type(self)(encoded, np.cumsum(lengths[positions]), self._hashes[positions])

    def _starts(self) -> np.ndarray:
        starts = np.empty_like(self._ends)
        starts[:1] = 0
        starts[1:] = self._ends[:-1]
        return starts

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, position: int) -> str: ...

    @overload
    def __getitem__(self, position: slice) -> list[str]: ...

    def __getitem__(self, position: int | slice) -> str | list[str]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(position)
        start = int(self._ends[position - 1]) if position else 0
        return self._bytes[start : int(self._ends[position])].decode()

    def __iter__(self) -> Iterator[str]:
        start = 0
        for end in self._ends.tolist():
            yield self._bytes[start:end].decode()
            start = end

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, str) and self.position(pid) is not None

    @cached_property
    def _by_hash(self) -> tuple[np.ndarray, np.ndarray]:
        """The positions in the order of their ids' hashes, and those hashes: made at the
        first look-up (two threads may both make it: the same arrays)."""
        order = np.argsort(self._hashes, kind="stable").astype(np.int32)
        return order, self._hashes[order]

    def position(self, pid: str) -> int | None:
        """Where `pid` is, or None when these ids lack it."""
        order, hashes = self._by_hash
        key = self.key(pid)
        at = int(np.searchsorted(hashes, key))
        while at < len(hashes) and hashes[at] == key:
            found = int(order[at])
            if self[found] == pid:
                return found
            at += 1
        return None


@dataclasses.dataclass(frozen=True)
class Catalogue(Sequence[PassageInfo]):
    """Where each passage comes from, by position: its article (an index into
    `articles`, which hold the fields a passage shares with its article's others), its
    number and its offsets in the article. `PassageInfo`s are made when asked for,
    without sentences (the store keeps those)."""

    articles: Sequence[PassageInfo | None]  # number, start and end left 0
    article: np.ndarray
    number: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @classmethod
    def empty(cls, articles: Sequence[PassageInfo | None] = ()) -> Catalogue:
        nothing = np.zeros(0, np.int32)
        return cls(articles, nothing, nothing, nothing, nothing)

    @classmethod
    def chained(
        cls, articles: Sequence[PassageInfo | None], parts: Sequence[Catalogue]
    ) -> Catalogue:
        """The passages of `parts`, one part after another, with `articles` (a file's
        articles table read again: an article keeps its number while it has passages)."""
        parts = [part for part in parts if len(part)]
        if len(parts) == 1:
            return dataclasses.replace(parts[0], articles=articles)
        return cls(
            articles,
            *(
                np.concatenate([np.zeros(0, np.int32)] + [getattr(part, name) for part in parts])
                for name in ("article", "number", "start", "end")
            ),
        )

    def taken(self, positions: np.ndarray) -> Catalogue:
        return Catalogue(
            self.articles,
            self.article[positions],
            self.number[positions],
            self.start[positions],
            self.end[positions],
        )

    def __len__(self) -> int:
        return len(self.article)

    @overload
    def __getitem__(self, position: int) -> PassageInfo: ...

    @overload
    def __getitem__(self, position: slice) -> list[PassageInfo]: ...

    def __getitem__(self, position: int | slice) -> PassageInfo | list[PassageInfo]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        article = self.articles[int(self.article[position])]
        assert article is not None, "a passage's article is in its file's articles table"
        return dataclasses.replace(
            article,
            number=int(self.number[position]),
            start=int(self.start[position]),
            end=int(self.end[position]),
        )

    def in_articles(self) -> list[PassageInfo]:
        """One `PassageInfo` for each article that has passages here (number, start and
        end left 0): what is known of an article without going through its passages."""
        used = np.unique(self.article)
        return [a for a in (self.articles[i] for i in used.tolist()) if a is not None]

    def column(self, of: Callable[[PassageInfo], Any], dtype: Any) -> np.ndarray:
        """`of` each passage, as an array of `dtype` by position, where `of` reads only
        the fields a passage shares with its article (it is called once per article)."""
        per_article = np.zeros(len(self.articles), dtype)
        for number, article in enumerate(self.articles):
            if article is not None:
                per_article[number] = of(article)
        return per_article[self.article]
