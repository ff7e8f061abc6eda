"""The BM25 keyword index of one build, in an SQLite file in the data directory: a
process searches it without holding it in memory, and a new process opens it without
reading the collection (docs/BENCHMARKS.md, "The keyword index on disk"). It also keeps
the build's catalogue: where each passage comes from (its `PassageInfo` without the
sentences), which a new process reads from here rather than from the store, where each
passage's metadata carries its packed sentence vectors too.

A term's postings are packed in a few rows (index/store/keyword_runs.py), so a query
reads the postings of its terms only, one indexed read a term. Scores are computed from
the stored term counts and passage lengths, with the collection's size and mean length
at query time, so adding or removing passages changes only their own terms' rows.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from index.store import keyword_runs
from index.store.catalogue import Catalogue, PassageIds
from index.store.keyword_runs import RunWriter
from index.store.passage_info import ARTICLE_FIELDS, PassageInfo
from index.text import terms

# Bump when what is stored changes (index/text.py's `terms` included): a file of another
# version is rebuilt from the collection.
SCHEMA_VERSION = "4"
K1, B = 1.2, 0.75
PAGE_SIZE = 65536
TOP_BLOCK = 1024  # scores per block whose maximum `top_rows` bounds the best with
# Passages `catalogue` reads at a time: what it holds as Python objects at once.
CATALOGUE_PAGE = 50_000

# A passage's terms: those of its text, and those only in its article's title; where it
# comes from: its article's fields (`articles`, shared by its passages) and its own.
_SCHEMA = (
    """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE passages(
    row INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
    length INTEGER NOT NULL, text_terms TEXT NOT NULL, title_terms TEXT NOT NULL,
    article INTEGER NOT NULL, number INTEGER NOT NULL,
    start_offset INTEGER NOT NULL, end_offset INTEGER NOT NULL);
CREATE TABLE articles(article INTEGER PRIMARY KEY, fields TEXT UNIQUE NOT NULL);
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
            # A query reads a common word's postings, megabytes at a million passages, in
            # pages: 64 KiB ones read them in a third of the time 4 KiB ones took.
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
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
        add: Iterable[tuple[str, str, Mapping[str, Any]]],
        remove: Sequence[str],
        generation: str,
    ) -> None:
        """In one transaction: removes the passages `remove` (ids), adds `add` ((id,
        text, metadata as stored) each), and records `generation`."""
        with self._writing() as db:
            runs = RunWriter(db)
            size, length = _totals(db)  # kept as they change: counting them reads every row
            gone, gone_length = _remove(db, runs, remove)
            size, length = size - gone, length - gone_length
            counter, articles = _TermCounter(), _Articles(db)
            for pid, text, metadata in add:
                info = PassageInfo.from_metadata(_BARE | dict(metadata) | {"sentences": ""})
                place = (articles[_article(info)], info.number, info.start, info.end)
                text_terms, title_terms = counter.text(text), counter.text(info.title)
                more, longer = _add(db, runs, pid, text_terms, title_terms, place)
                size, length = size + more, length + longer
            if gone:  # articles left without passages
                db.execute(
                    "DELETE FROM articles WHERE article NOT IN (SELECT article FROM passages)"
                )
            runs.finish()
            db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                [(str(size), "size"), (str(length), "length"), (generation, "generation")],
            )

    def ids(self) -> list[str]:
        return [pid for (pid,) in self._db().execute("SELECT id FROM passages")]

    def rows(self) -> np.ndarray:
        """The rows of the passages this file holds."""
        found = self._db().execute("SELECT row FROM passages")
        return np.fromiter((row for (row,) in found), np.int64)

    def rows_of(self) -> dict[str, int]:
        """Each passage id's row in this file."""
        return dict(self._db().execute("SELECT id, row FROM passages"))

    def catalogue(self, after: int = 0) -> tuple[np.ndarray, PassageIds, Catalogue]:
        """The rows, ids and origins (`Catalogue`) of the passages whose row is after
        `after`, in row order: the order passages were added. Rows only grow, so `after`
        the last row read gives the passages added since. Read a page at a time into
        arrays: at no point a Python object per passage."""
        rows, ids, parts = [np.zeros(0, np.int64)], [], []
        with self._reading() as db:
            articles: list[PassageInfo | None] = []
            for article, fields in db.execute("SELECT article, fields FROM articles"):
                a = json.loads(fields)
                articles.extend([None] * (article + 1 - len(articles)))
                articles[article] = PassageInfo(
                    a[0], a[1], a[2], a[3], a[4], a[5], 0, 0, 0, (), "", a[6], a[7]
                )
            found = db.execute(
                "SELECT row, id, article, number, start_offset, end_offset FROM passages "
                "WHERE row > ? ORDER BY row",
                (after,),
            )
            while page := found.fetchmany(CATALOGUE_PAGE):
                row, pid, *columns = zip(*page, strict=True)
                rows.append(np.array(row, np.int64))
                ids.append(PassageIds.of(pid))
                parts.append(Catalogue(articles, *(np.array(c, np.int32) for c in columns)))
        return np.concatenate(rows), PassageIds.chained(ids), Catalogue.chained(articles, parts)

    # -- search ----------------------------------------------------------------------

    def matches(self, query: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each term of `query` that passages have: their rows (of this file), each
        once, and the BM25 score the term gives each; a passage's score is the sum."""
        found = []
        with self._reading() as db:
            size, average = _stats(db)
            for term in set(terms(query)):
                row, tf, length = keyword_runs.postings(db, term)
                if not len(row):
                    continue
                # In float32, as the scores are kept: half the bytes of float64 to go over.
                tf = tf.astype(np.float32)
                norm = length * np.float32(K1 * B / average)  # K1 * (1 - B + B * length / avg)
                norm += np.float32(K1 * (1 - B))
                norm += tf
                tf *= np.float32(idf(size, len(row)) * (K1 + 1))
                tf /= norm
                found.append((row, tf))
        return found

    def text_idf(self, term: str) -> float:
        """Rarity of `term` among passage texts (titles left out: a title repeated in
        every passage of its article would make its words look common)."""
        size, df = keyword_runs.text_df(self._db(), term)
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
    db: sqlite3.Connection,
    runs: RunWriter,
    pid: str,
    text: list[str],
    title: list[str],
    place: tuple[int, int, int, int],
) -> tuple[int, int]:
    """Adds a passage with its terms and `place` (its article's row in `articles`, its
    number and its offsets in the article); returns by how much the passages' number
    and total length grew."""
    counts = Counter(text)
    counts.update(title)
    in_text = set(text)
    length = len(text) + len(title)
    # A passage added again (a change killed before recording it) replaces its old self.
    gone, gone_length = _remove(db, runs, [pid])
    cursor = db.execute(
        "INSERT INTO passages (id, length, text_terms, title_terms, article, number, "
        "start_offset, end_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (pid, length, " ".join(in_text), " ".join(t for t in counts if t not in in_text), *place),
    )
    runs.add(cursor.lastrowid, counts, in_text, length)
    return 1 - gone, length - gone_length


class _Articles(dict[str, int]):
    """Each article's row in `articles`, by its fields as stored: found or added once a
    change (an article's passages come one after another)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        super().__init__()
        self.db = db

    def __missing__(self, fields: str) -> int:
        self.db.execute("INSERT OR IGNORE INTO articles (fields) VALUES (?)", (fields,))
        (found,) = self.db.execute(
            "SELECT article FROM articles WHERE fields = ?", (fields,)
        ).fetchone()
        self[fields] = found
        return found


# An article's fields, in the order `catalogue` reads them back; what a passage whose
# metadata lacks them (a test's, a benchmark's) is taken to have.
_ARTICLE_COLUMNS = (*ARTICLE_FIELDS, "passages")
_BARE = {"article_id": "", "title": "", "source": ""}


def _article(info: PassageInfo) -> str:
    return json.dumps([getattr(info, name) for name in _ARTICLE_COLUMNS])


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

    def __init__(self, file: KeywordFile, file_rows: np.ndarray) -> None:
        """`file_rows`: each snapshot passage's row in `file`, -1 where it has none."""
        self.file = file
        self.size = len(file_rows)
        # Each file row's position in the snapshot; `size`, a position past the end, for a
        # passage the snapshot lacks, and in the last entry for the rows added after it.
        self._position = np.full(int(file_rows.max(initial=0)) + 2, self.size, dtype=np.int64)
        present = file_rows >= 0
        self._position[file_rows[present]] = np.flatnonzero(present)
        self._idf: dict[str, float] = {}

    @classmethod
    def of_ids(cls, file: KeywordFile, ids: Sequence[str]) -> KeywordIndex:
        """The snapshot of the passages `ids`, in that order."""
        rows = file.rows_of()
        return cls(file, np.fromiter((rows.get(pid, -1) for pid in ids), np.int64, len(ids)))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros where no term matches)."""
        summed = np.zeros(self.size + 1, np.float32)
        for rows, scores in self.file.matches(query):
            # A term's rows are distinct, so each position is added to once (all those the
            # snapshot lacks go to the last entry, left out, as do rows past the end with
            # "clip"): faster, at a million passages, than one bincount over every term's
            # postings together.
            summed[np.take(self._position, rows, mode="clip")] += scores
        return summed[: self.size]

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        return top_rows(self.scores(query), k)

    def idf(self, term: str) -> float:
        """Rarity of `term` among passage texts (titles left out)."""
        if term not in self._idf:
            self._idf[term] = self.file.text_idf(term)
        return self._idf[term]


def top_rows(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row, score) of the `k` best positive scores, best first; of equal scores, the
    earlier row first."""
    if k <= 0:
        return []
    # The k-th largest of k or more blocks' maxima is k scores' least, so no score below
    # it is among the k best: a pass over the scores for the maxima and one to compare,
    # instead of partitioning every positive score (at a million passages a question's
    # common words give most of them one).
    whole = len(scores) // TOP_BLOCK * TOP_BLOCK
    floor = 0.0
    if whole >= TOP_BLOCK * k:
        maxima = scores[:whole].reshape(-1, TOP_BLOCK).max(axis=1)
        floor = float(np.partition(maxima, len(maxima) - k)[len(maxima) - k])
    best = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
    if len(best) > k:
        values = scores[best]
        kth = np.partition(values, len(values) - k)[len(values) - k]
        above = best[values > kth]
        best = np.concatenate([above, best[values == kth][: k - len(above)]])
    best = best[np.lexsort((best, -scores[best]))]
    return [(int(i), float(scores[i])) for i in best]
