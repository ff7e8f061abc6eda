"""A keyword index's postings on disk (index/store/keyword.py), term by term, in runs: a
run packs some of a term's postings (passage rows, term counts, passage lengths) as
arrays in one row, so a query reads a term in one indexed read and scores it in numpy
instead of fetching a row per passage (docs/BENCHMARKS.md, "The keyword index on disk").

A change appends its new passages' postings as one new run per term and marks its
removed passages' postings in `removed`; runs and marks are merged away as they pile up,
so that a term keeps a few runs and a few marks, and no change rewrites more than the
terms it touched."""

from __future__ import annotations

import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterable

import numpy as np

# A run of a term holds rows after every row of the term's runs before it (rows only
# grow: passages take new AUTOINCREMENT rows), so a term's postings are its runs in order.
SCHEMA = """
CREATE TABLE runs(
    term TEXT NOT NULL, first INTEGER NOT NULL, count INTEGER NOT NULL,
    in_text INTEGER NOT NULL, rows BLOB NOT NULL, tfs BLOB NOT NULL, lengths BLOB NOT NULL,
    PRIMARY KEY (term, first)
) WITHOUT ROWID;
CREATE TABLE removed(
    term TEXT NOT NULL, row INTEGER NOT NULL, in_text INTEGER NOT NULL,
    PRIMARY KEY (term, row)
) WITHOUT ROWID;
"""
# Rows, and term counts and passage lengths: a query reads 8 bytes a posting. A count or
# length past 65,535 is stored as 65,535 (BM25's term count saturates long before).
ROW, COUNT = np.dtype("<i4"), np.dtype("<u2")
MOST = np.iinfo(COUNT).max
# New postings a change holds before writing them as runs (some 50 bytes each, at most,
# while they are sorted by term): a build's memory does not grow with the collection.
BUFFERED_POSTINGS = 1_000_000
# Runs a term may pile up before they are merged: a query reads them all; merging them
# at every change instead doubled the time of an article's add at 100,000 passages.
RUNS_PER_TERM = 8
# Marks of removed postings a term may keep before the runs holding them are rewritten:
# a query reads them all.
REMOVED_PER_TERM = 256


def postings(db: sqlite3.Connection, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows, term counts and lengths of the passages that have `term`."""
    runs = db.execute(
        "SELECT rows, tfs, lengths FROM runs WHERE term = ? ORDER BY first", (term,)
    ).fetchall()
    if not runs:
        return np.zeros(0, ROW), np.zeros(0, COUNT), np.zeros(0, COUNT)
    rows, tfs, lengths = _joined(zip(*runs, strict=True))
    removed = db.execute("SELECT row FROM removed WHERE term = ?", (term,)).fetchall()
    if removed:
        kept = ~np.isin(rows, np.array(removed, dtype=np.int64).ravel())
        rows, tfs, lengths = rows[kept], tfs[kept], lengths[kept]
    return rows, tfs, lengths


def text_df(db: sqlite3.Connection, term: str) -> tuple[int, int]:
    """How many passages the index holds, and how many have `term` in their text (not
    only in their title): one statement, so both come from one version of the file."""
    size, stored, gone = db.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'size'), "
        "(SELECT total(in_text) FROM runs WHERE term = ?1), "
        "(SELECT count(*) FROM removed WHERE term = ?1 AND in_text)",
        (term,),
    ).fetchone()
    return int(size), int(stored) - gone


class RunWriter:
    """The postings side of one change, inside its transaction: buffers the postings of
    added passages and writes them as runs, marks those of removed ones, and at `finish`
    merges the runs of the terms it touched where they have piled up."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._added: set[str] = set()
        self._removed: set[str] = set()
        self._empty_buffer()

    def _empty_buffer(self) -> None:
        # Each buffered posting's term (by number), term count and whether in a text...
        self._vocabulary = _Vocabulary()
        self._terms, self._tfs, self._in_text = array("i"), array("I"), array("b")
        # ... and each buffered passage's row, length and number of postings.
        self._rows, self._lengths, self._sizes = array("q"), array("q"), array("q")

    def add(self, row: int, counts: Counter[str], in_text: set[str], length: int) -> None:
        """Buffers the postings of a new passage, at `row` (after every row so far)."""
        self._terms.extend(map(self._vocabulary.__getitem__, counts))
        self._tfs.extend(counts.values())
        self._in_text.extend(map(in_text.__contains__, counts))
        self._rows.append(row)
        self._lengths.append(length)
        self._sizes.append(len(counts))
        if len(self._terms) >= BUFFERED_POSTINGS:
            self._write_buffer()

    def remove(self, row: int, text_terms: Iterable[str], title_terms: Iterable[str]) -> None:
        """Marks the postings of the passage at `row` removed (they may still be in the
        buffer: the mark applies once they are written)."""
        marks = [(t, row, 1) for t in text_terms] + [(t, row, 0) for t in title_terms]
        self.db.executemany("INSERT INTO removed VALUES (?, ?, ?)", marks)
        self._removed.update(term for term, _, _ in marks)

    def finish(self) -> None:
        self._write_buffer()
        for term in sorted(self._added | self._removed):
            self._merge_piled_up(term, term in self._removed)
        self._added.clear()
        self._removed.clear()

    def _write_buffer(self) -> None:
        """One run for each term of the buffered postings, in term order."""
        if not self._terms:
            self._empty_buffer()  # passages without terms, if any
            return
        if self._rows[-1] >= 2**31:
            raise OverflowError(f"passage row {self._rows[-1]} does not fit the runs' int32")
        names = list(self._vocabulary)  # by number
        by_name = sorted(range(len(names)), key=names.__getitem__)
        rank = np.empty(len(names), np.int64)
        rank[by_name] = np.arange(len(names))
        order = np.argsort(rank[np.frombuffer(self._terms, np.int32)], kind="stable")
        sizes = np.frombuffer(self._sizes, np.int64)
        rows = np.repeat(np.frombuffer(self._rows, np.int64), sizes).astype(ROW)[order]
        lengths = np.repeat(np.frombuffer(self._lengths, np.int64), sizes)
        lengths = np.minimum(lengths, MOST).astype(COUNT)[order]
        tfs = np.minimum(np.frombuffer(self._tfs, np.uint32), MOST).astype(COUNT)[order]
        counts = np.bincount(np.frombuffer(self._terms, np.int32))[by_name]  # in term order
        ends = np.cumsum(counts)
        starts = ends - counts
        in_text = np.add.reduceat(
            np.frombuffer(self._in_text, np.int8)[order].astype(np.int64), starts
        )
        self.db.executemany(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    names[number],
                    int(rows[start]),
                    int(end - start),
                    texts,
                    rows[start:end].tobytes(),
                    tfs[start:end].tobytes(),
                    lengths[start:end].tobytes(),
                )
                for number, start, end, texts in zip(
                    by_name, starts.tolist(), ends.tolist(), in_text.tolist(), strict=True
                )
            ),
        )
        self._added.update(names)
        self._empty_buffer()

    def _merge_piled_up(self, term: str, marked: bool) -> None:
        """Once the term has more than RUNS_PER_TERM runs, merges its runs from the
        oldest that holds no more postings than all the runs after it (so that each run
        holds more than all its successors together, and a posting is rewritten a few
        times); and from the oldest marked one when its marks are too many."""
        runs = self.db.execute(
            "SELECT first, count FROM runs WHERE term = ? ORDER BY first", (term,)
        ).fetchall()
        after, start = sum(count for _, count in runs), None
        for first, count in runs[:-1] if len(runs) > RUNS_PER_TERM else ():
            after -= count  # the postings of the runs after this one
            if count <= after:
                start = first
                break
        if marked:
            (marks, oldest) = self.db.execute(
                "SELECT count(*), min(row) FROM removed WHERE term = ?", (term,)
            ).fetchone()
            if marks > REMOVED_PER_TERM:
                holding = max(first for first, _ in runs if first <= oldest)
                start = holding if start is None else min(start, holding)
        if start is not None:
            self._merge(term, start)

    def _merge(self, term: str, start: int) -> None:
        """Rewrites the runs of `term` from the one beginning at row `start` on as one,
        without the postings marked removed (the marks go too)."""
        db = self.db
        runs = db.execute(
            "SELECT in_text, rows, tfs, lengths FROM runs WHERE term = ? AND first >= ?"
            " ORDER BY first",
            (term, start),
        ).fetchall()
        in_text, *columns = zip(*runs, strict=True)
        rows, tfs, lengths = _joined(columns)
        marks = db.execute(
            "SELECT row, in_text FROM removed WHERE term = ? AND row >= ?", (term, start)
        ).fetchall()
        texts = sum(in_text)
        if marks:
            gone, gone_in_text = np.array(marks, dtype=np.int64).T
            kept = ~np.isin(rows, gone)
            rows, tfs, lengths = rows[kept], tfs[kept], lengths[kept]
            texts -= int(gone_in_text.sum())
            db.execute("DELETE FROM removed WHERE term = ? AND row >= ?", (term, start))
        db.execute("DELETE FROM runs WHERE term = ? AND first >= ?", (term, start))
        if len(rows):
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    term,
                    int(rows[0]),
                    len(rows),
                    texts,
                    rows.tobytes(),
                    tfs.tobytes(),
                    lengths.tobytes(),
                ),
            )


def _joined(columns: Iterable[tuple[bytes, ...]]) -> list[np.ndarray]:
    """Rows, term counts and lengths of runs, from their BLOB columns (runs in order)."""
    return [
        np.frombuffer(b"".join(column), dtype)
        for column, dtype in zip(columns, (ROW, COUNT, COUNT), strict=True)
    ]


class _Vocabulary(dict[str, int]):
    """Numbers terms in the order first seen."""

    def __missing__(self, term: str) -> int:
        number = self[term] = len(self)
        return number
