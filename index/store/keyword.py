"""The BM25 keyword index of one build, in an SQLite file in the data directory: a
process searches it without holding it in memory, and a new process opens it without
reading the collection (docs/BENCHMARKS.md, "The keyword index on disk").

Postings are rows of a table clustered by term, so a query reads the postings of its
terms only. Scores are computed from the stored term counts and passage lengths, with
the collection's size and mean length at query time, so adding or removing passages
changes only their own rows.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from index.text import terms

# Bump when what is stored changes (index/text.py's `terms` included): a file of another
# version is rebuilt from the collection.
SCHEMA_VERSION = "1"
K1, B = 1.2, 0.75

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE passages(
    row INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    length INTEGER NOT NULL, terms TEXT NOT NULL);
CREATE TABLE postings(
    term TEXT NOT NULL, row INTEGER NOT NULL, tf INTEGER NOT NULL,
    length INTEGER NOT NULL, in_text INTEGER NOT NULL, PRIMARY KEY (term, row)
) WITHOUT ROWID;
"""


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
            _remove(db, remove)
            counter = _TermCounter()
            for pid, text, title in add:
                _add(db, pid, counter.text(text), counter.text(title))
            size, length = db.execute("SELECT count(*), total(length) FROM passages").fetchone()
            db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                [(str(size), "size"), (str(int(length)), "length"), (generation, "generation")],
            )

    def ids(self) -> list[str]:
        return [pid for (pid,) in self._db().execute("SELECT id FROM passages")]

    def rows_of(self) -> dict[str, int]:
        """Each passage id's row in this file."""
        return dict(self._db().execute("SELECT id, row FROM passages"))

    # -- search ----------------------------------------------------------------------

    def matches(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The rows (of this file) of the passages sharing a term with `query`, and
        their BM25 scores."""
        found = set(terms(query))
        if not found:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows, scores = [], []
        with self._reading() as db:
            size, average = _stats(db)
            for term in found:
                postings = db.execute(
                    "SELECT row, tf, length FROM postings WHERE term = ?", (term,)
                ).fetchall()
                if not postings:
                    continue
                row, tf, length = np.asarray(postings, dtype=np.float64).T
                norm = K1 * (1 - B + B * length / average)
                rows.append(row.astype(np.int64))
                scores.append(idf(size, len(postings)) * tf * (K1 + 1) / (tf + norm))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        unique, where = np.unique(np.concatenate(rows), return_inverse=True)
        summed = np.bincount(where, weights=np.concatenate(scores), minlength=len(unique))
        return unique, summed.astype(np.float32)

    def text_idf(self, term: str) -> float:
        """Rarity of `term` among passage texts (titles left out: a title repeated in
        every passage of its article would make its words look common)."""
        with self._reading() as db:
            (df,) = db.execute(
                "SELECT count(*) FROM postings WHERE term = ? AND in_text", (term,)
            ).fetchone()
            size = int(db.execute("SELECT value FROM meta WHERE key = 'size'").fetchone()[0])
        return idf(size, df)


def idf(size: int, df: int) -> float:
    return math.log(1 + (size - df + 0.5) / (df + 0.5))


def _stats(db: sqlite3.Connection) -> tuple[int, float]:
    values = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('size', 'length')"))
    size = int(values["size"])
    return size, max(int(values["length"]) / size if size else 1.0, 1e-9)


def _add(db: sqlite3.Connection, pid: str, text: list[str], title: list[str]) -> None:
    counts = Counter(text) + Counter(title)
    in_text = set(text)
    length = len(text) + len(title)
    _remove(db, [pid])  # a passage added again (a change killed before recording it)
    cursor = db.execute(
        "INSERT INTO passages (id, length, terms) VALUES (?, ?, ?)",
        (pid, length, " ".join(counts)),
    )
    row = cursor.lastrowid
    db.executemany(
        "INSERT INTO postings VALUES (?, ?, ?, ?, ?)",
        [(term, row, tf, length, term in in_text) for term, tf in counts.items()],
    )


def _remove(db: sqlite3.Connection, ids: Sequence[str]) -> None:
    for pid in ids:
        found = db.execute("SELECT row, terms FROM passages WHERE id = ?", (pid,)).fetchone()
        if found is None:
            continue
        row, stored = found
        db.executemany(
            "DELETE FROM postings WHERE term = ? AND row = ?", [(t, row) for t in stored.split()]
        )
        db.execute("DELETE FROM passages WHERE row = ?", (row,))


class _TermCounter:
    """`terms` of texts, remembering what each whitespace-separated piece gave: a word
    never spans whitespace, and most pieces recur ("the", "said," ...)."""

    def __init__(self) -> None:
        self._pieces: dict[str, list[str]] = {}

    def text(self, text: str) -> list[str]:
        found: list[str] = []
        pieces = self._pieces
        for piece in text.split():
            known = pieces.get(piece)
            if known is None:
                known = pieces[piece] = terms(piece)
            found += known
        return found


class KeywordIndex:
    """The keyword index as one read snapshot sees it: BM25 scores by the snapshot's
    rows (a passage the file has and the snapshot lacks is left out, one the snapshot
    has and the file lacks scores 0), and each word's rarity, remembered."""

    def __init__(self, file: KeywordFile, ids: Sequence[str]) -> None:
        self.file = file
        self.size = len(ids)
        row_of = {pid: i for i, pid in enumerate(ids)}
        rows = file.rows_of()
        self._position = np.full(max(rows.values(), default=0) + 1, -1, dtype=np.int64)
        for pid, file_row in rows.items():
            self._position[file_row] = row_of.get(pid, -1)
        self._idf: dict[str, float] = {}

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros where no term matches)."""
        scores = np.zeros(self.size, dtype=np.float32)
        rows, found = self.file.matches(query)
        # Rows added to the file after this snapshot was taken may lie past the end.
        inside = rows < len(self._position)
        positions = self._position[rows[inside]]
        known = positions >= 0
        scores[positions[known]] = found[inside][known]
        return scores

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
