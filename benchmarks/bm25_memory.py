"""The BM25 keyword index every process held in memory before the keyword index moved
to disk (index/store/keyword.py), kept as the benchmarks' reference: "today's BM25" that
benchmarks/keyword_backends.py and benchmarks/archive.py compare the on-disk index with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from index.text import terms


class KeywordIndex:
    """Okapi BM25 (k1=1.2, b=0.75) over passages with their articles' titles; also gives
    answering each word's IDF over the passage texts alone (a title repeated in every
    passage of its article would make its words look common)."""

    def __init__(
        self,
        texts: Sequence[str],
        titles: Sequence[str] | None = None,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        vocabulary: dict[str, int] = {}
        counts = TermCounts.of(texts, titles or [""] * len(texts), vocabulary)
        self._prepare(vocabulary, counts, k1, b)

    def _prepare(self, vocabulary: dict[str, int], counts: TermCounts, k1: float, b: float) -> None:
        self.k1, self.b = k1, b
        self.size = counts.size
        self._vocabulary = vocabulary
        self._counts = counts
        rows = counts.rows()
        lengths = np.bincount(rows, weights=counts.tf, minlength=self.size)
        average = float(lengths.mean()) if self.size else 1.0
        norm = k1 * (1 - b + b * lengths / max(average, 1e-9))
        weights = (counts.tf * (k1 + 1) / (counts.tf + norm[rows])).astype(np.float32)
        # Postings, term by term: the passages of term t are entries
        # _starts[t]:_starts[t + 1] of _passages (ascending) and _weights. Transposing
        # the passage-by-term matrix (linear time) orders them so.
        by_passage = csr_matrix(
            (weights, counts.term, counts.starts), shape=(self.size, len(vocabulary))
        )
        by_term = by_passage.tocsc()
        self._starts, self._passages, self._weights = by_term.indptr, by_term.indices, by_term.data
        self._text_df = np.bincount(counts.term[counts.in_text], minlength=len(vocabulary))

    def idf(self, term: str) -> float:
        """Rarity of `term` among passage texts (titles left out)."""
        column = self._vocabulary.get(term)
        return self._idf(int(self._text_df[column]) if column is not None else 0)

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros where no term matches)."""
        scores = np.zeros(self.size, dtype=np.float32)
        for term in set(terms(query)):
            column = self._vocabulary.get(term)
            if column is None:
                continue
            start, end = self._starts[column], self._starts[column + 1]
            if end > start:
                scores[self._passages[start:end]] += (
                    self._idf(end - start) * self._weights[start:end]
                )
        return scores

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        return top_rows(self.scores(query), k)


def top_rows(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row, score) of the `k` best positive scores, best first."""
    k = min(k, len(scores))
    if k == 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    return [(int(i), float(scores[i])) for i in best if scores[i] > 0]


@dataclass(frozen=True)
class TermCounts:
    """Each passage's distinct terms, in flat arrays: passage i owns the entries
    starts[i]:starts[i + 1]. `tf` counts the term in the passage and its title;
    `in_text` says whether the passage text itself has it."""

    starts: np.ndarray
    term: np.ndarray
    tf: np.ndarray
    in_text: np.ndarray

    @property
    def size(self) -> int:
        return len(self.starts) - 1

    def rows(self) -> np.ndarray:
        """The passage of every entry."""
        return np.repeat(np.arange(self.size), np.diff(self.starts))

    @classmethod
    def of(
        cls, texts: Sequence[str], titles: Sequence[str], vocabulary: dict[str, int]
    ) -> TermCounts:
        """Counts the terms of `texts` and `titles`, giving new terms the next numbers
        in `vocabulary`."""
        terms_of = _Terms(vocabulary)
        text_terms: list[int] = []
        title_terms: list[int] = []
        text_lengths = np.zeros(len(texts), dtype=np.int64)
        title_lengths = np.zeros(len(texts), dtype=np.int64)
        for row, (text, title) in enumerate(zip(texts, titles, strict=True)):
            found = terms_of.text(text)
            text_terms += found
            text_lengths[row] = len(found)
            found = terms_of.title(title)
            title_terms += found
            title_lengths[row] = len(found)
        rows = np.arange(len(texts), dtype=np.int64)
        width = max(len(vocabulary), 1)
        keys = np.concatenate(
            (
                np.repeat(rows, text_lengths) * width + np.asarray(text_terms, np.int64),
                np.repeat(rows, title_lengths) * width + np.asarray(title_terms, np.int64),
            )
        )
        # Sorted by passage, then term: one entry per (passage, term).
        unique, inverse = np.unique(keys, return_inverse=True)
        row_of = unique // width
        return cls(
            starts=np.concatenate(([0], np.cumsum(np.bincount(row_of, minlength=len(texts))))),
            term=(unique % width).astype(np.int32),
            tf=np.bincount(inverse, minlength=len(unique)).astype(np.float32),
            in_text=np.bincount(inverse[: len(text_terms)], minlength=len(unique)) > 0,
        )


class _Terms:
    """Term numbers of texts, remembering what each whitespace-separated piece of text
    and each title gave: `terms` of a text is `terms` of its pieces one after another (a
    word never spans whitespace), and most pieces recur ("the", "said," ...)."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self._vocabulary = vocabulary
        self._pieces: dict[str, tuple[int, ...]] = {}
        self._titles: dict[str, list[int]] = {}

    def text(self, text: str) -> list[int]:
        found: list[int] = []
        pieces = self._pieces
        for piece in text.split():
            numbers = pieces.get(piece)
            if numbers is None:
                numbers = pieces[piece] = self._numbers(terms(piece))
            found += numbers
        return found

    def title(self, title: str) -> list[int]:
        if title not in self._titles:
            self._titles[title] = self.text(title)
        return self._titles[title]

    def _numbers(self, found: list[str]) -> tuple[int, ...]:
        vocabulary = self._vocabulary
        return tuple(vocabulary.setdefault(term, len(vocabulary)) for term in found)
