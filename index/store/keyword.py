"""The BM25 keyword index of one build, in an SQLite file in the data directory: a
process searches it without holding it in memory, and a new process opens it without
reading the collection (docs/BENCHMARKS.md, "The keyword index on disk").

A term's postings are packed in a few rows (index/store/keyword_runs.py), so a query
reads the postings of its terms only, one indexed read a term. Scores are computed from
the stored term counts and passage lengths, with the collection's size and mean length
at query time, so adding or removing passages changes only their own terms' rows.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

import numpy as np

from index.store import keyword_runs
from index.store.keyword_runs import RunWriter
from index.text import terms

# Bump when what is stored changes (index/text.py's `terms` included): a file of another
# version is rebuilt from the collection.
SCHEMA_VERSION = "2"
K1, B = 1.2, 0.75

# A passage's terms: those of its text, and those only in its article's title.
_SCHEMA = (
    """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE passages(
    row INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    length INTEGER NOT NULL, text_terms TEXT NOT NULL, title_terms TEXT NOT NULL);
"""
    + keyword_runs.SCHEMA
)


class KeywordFileError(Exception):
    """The file is not a keyword index of this version (missing, damaged, older)."""


class KeywordFile:
    """Okapi BM25 (k1=1.2, b=0.75) over passages with their articles' titles, on disk.

    Each thread reads through a connection of its own; writes happen under the caller's
    lock (index/store/keyword_files.py), each change in one transaction, so a process
    killed mid-change leaves the file as it was before it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        try:
            version = self.meta("schema")
        except sqlite3.DatabaseError as error:
            raise KeywordFileError(f"{path}: {error}") from error
        if version != SCHEMA_VERSION:
            raise KeywordFileError(f"{path}: schema {version!r}, not {SCHEMA_VERSION!r}")

    @classmethod
    def create(cls, path: Path) -> KeywordFile:
        """An empty index at `path` (which must not exist)."""
        with sqlite3.connect(path) as db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("schema", SCHEMA_VERSION), ("generation", ""), ("size", "0"), ("length", "0")],
            )
        db.close()
        return cls(path)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            if not self.path.is_file():
                raise KeywordFileError(f"{self.path}: no such file")
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            self._local.db = db
        return db

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: the statements in it see one version of the file."""
        db = self._db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def meta(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def generation(self) -> str:
        """The index generation (index/store/chroma.py) this file was last brought to."""
        return self.meta("generation") or ""

    @property
    def size(self) -> int:
        return int(self.meta("size") or 0)

    # -- changes ---------------------------------------------------------------------

    def change(
        self,
        add: Iterable[tuple[str, str, str]],
        remove: Sequence[str],
        generation: str,
    ) -> None:
        """In one transaction: removes the passages `remove` (ids), adds `add` ((id,
        text, title) each), and records `generation`."""
        with self._writing() as db:
            runs = RunWriter(db)
            size, length = _totals(db)  # kept as they change: counting them reads every row
            gone, gone_length = _remove(db, runs, remove)
            size, length = size - gone, length - gone_length
            counter = _TermCounter()
            for pid, text, title in add:
                more, longer = _add(db, runs, pid, counter.text(text), counter.text(title))
                size, length = size + more, length + longer
            runs.finish()
            db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                [(str(size), "size"), (str(length), "length"), (generation, "generation")],
            )

    def ids(self) -> list[str]:
        return [pid for (pid,) in self._db().execute("SELECT id FROM passages")]

    def rows_of(self) -> dict[str, int]:
        """Each passage id's row in this file."""
        return dict(self._db().execute("SELECT id, row FROM passages"))

    # -- search ----------------------------------------------------------------------

    def matches(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows (of this file) of the passages sharing a term with `query`, and the
        BM25 score each term gives them: a row appears once for each term it has, its
        score being the sum of its entries."""
        rows, scores = [np.zeros(0, np.int64)], [np.zeros(0)]
        with self._reading() as db:
            size, average = _stats(db)
            for term in set(terms(query)):
                row, tf, length = keyword_runs.postings(db, term)
                if not len(row):
                    continue
                tf = tf.astype(np.float64)
                norm = length * (K1 * B / average)  # K1 * (1 - B + B * length / average)
                norm += K1 * (1 - B)
                norm += tf
                tf *= idf(size, len(row)) * (K1 + 1)
                tf /= norm
                rows.append(row)
                scores.append(tf)
        return np.concatenate(rows), np.concatenate(scores)

    def text_idf(self, term: str) -> float:
        """Rarity of `term` among passage texts (titles left out: a title repeated in
        every passage of its article would make its words look common)."""
        with self._reading() as db:
            df = keyword_runs.text_df(db, term)
            size = int(db.execute("SELECT value FROM meta WHERE key = 'size'").fetchone()[0])
        return idf(size, df)


def idf(size: int, df: int) -> float:
    return math.log(1 + (size - df + 0.5) / (df + 0.5))


def _totals(db: sqlite3.Connection) -> tuple[int, int]:
    """How many passages the index holds, and their total length."""
    values = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('size', 'length')"))
    return int(values["size"]), int(values["length"])


def _stats(db: sqlite3.Connection) -> tuple[int, float]:
    size, length = _totals(db)
    return size, max(length / size if size else 1.0, 1e-9)


def _add(
    db: sqlite3.Connection, runs: RunWriter, pid: str, text: list[str], title: list[str]
) -> tuple[int, int]:
    """Adds a passage; returns by how much the passages' number and total length grew."""
    counts = Counter(text)
    counts.update(title)
    in_text = set(text)
    length = len(text) + len(title)
    # A passage added again (a change killed before recording it) replaces its old self.
    gone, gone_length = _remove(db, runs, [pid])
    cursor = db.execute(
        "INSERT INTO passages (id, length, text_terms, title_terms) VALUES (?, ?, ?, ?)",
        (pid, length, " ".join(in_text), " ".join(t for t in counts if t not in in_text)),
    )
    runs.add(cursor.lastrowid, counts, in_text, length)
    return 1 - gone, length - gone_length


def _remove(db: sqlite3.Connection, runs: RunWriter, ids: Sequence[str]) -> tuple[int, int]:
    """Removes the passages `ids` it has; returns how many, and their total length."""
    removed = total = 0
    for pid in ids:
        found = db.execute(
            "SELECT row, length, text_terms, title_terms FROM passages WHERE id = ?", (pid,)
        ).fetchone()
        if found is None:
            continue
        row, length, text_terms, title_terms = found
        runs.remove(row, text_terms.split(), title_terms.split())
        db.execute("DELETE FROM passages WHERE row = ?", (row,))
        removed, total = removed + 1, total + length
    return removed, total


class _TermCounter(dict[str, list[str]]):
    """`terms` of texts, remembering what each whitespace-separated piece gave: a word
    never spans whitespace, and most pieces recur ("the", "said," ...)."""

    def __missing__(self, piece: str) -> list[str]:
        found = self[piece] = terms(piece)
        return found

    def text(self, text: str) -> list[str]:
        return list(chain.from_iterable(map(self.__getitem__, text.split())))


class KeywordIndex:
    """The keyword index as one read snapshot sees it: BM25 scores by the snapshot's
    rows (a passage the file has and the snapshot lacks is left out, one the snapshot
    has and the file lacks scores 0), and each word's rarity, remembered."""

    def __init__(self, file: KeywordFile, ids: Sequence[str]) -> None:
        self.file = file
        self.size = len(ids)
        row_of = {pid: i for i, pid in enumerate(ids)}
        rows = file.rows_of()
        # Each file row's position in the snapshot; `size`, a position past the end, for a
        # passage the snapshot lacks, and in the last entry for the rows added after it.
        self._position = np.full(max(rows.values(), default=0) + 2, self.size, dtype=np.int64)
        for pid, file_row in rows.items():
            self._position[file_row] = row_of.get(pid, self.size)
        self._idf: dict[str, float] = {}

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros where no term matches)."""
        rows, found = self.file.matches(query)
        positions = self._position[np.minimum(rows, len(self._position) - 1)]
        summed = np.bincount(positions, found, minlength=self.size + 1)[: self.size]
        return summed.astype(np.float32)

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        return top_rows(self.scores(query), k)

    def idf(self, term: str) -> float:
        """Rarity of `term` among passage texts (titles left out)."""
        if term not in self._idf:
            self._idf[term] = self.file.text_idf(term)
        return self._idf[term]


def top_rows(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row, score) of the `k` best positive scores, best first."""
    k = min(k, len(scores))
    if k == 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    return [(int(i), float(scores[i])) for i in best if scores[i] > 0]
