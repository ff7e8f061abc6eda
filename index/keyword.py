"""A BM25 keyword index over passages, rebuilt in memory from the stored passages."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

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
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths = np.zeros(len(texts), dtype=np.float32)
        self._text_df: Counter[str] = Counter()
        for doc, text in enumerate(texts):
            text_terms = terms(text)
            self._text_df.update(set(text_terms))
            counts = Counter(text_terms + (terms(titles[doc]) if titles else []))
            lengths[doc] = sum(counts.values())
            for term, tf in counts.items():
                postings[term].append((doc, tf))
        self.size = len(texts)
        average = float(lengths.mean()) if len(texts) else 1.0
        norm = k1 * (1 - b + b * lengths / max(average, 1e-9))
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, rows in postings.items():
            docs = np.fromiter((d for d, _ in rows), dtype=np.int32, count=len(rows))
            tfs = np.fromiter((t for _, t in rows), dtype=np.float32, count=len(rows))
            self._postings[term] = (docs, tfs * (k1 + 1) / (tfs + norm[docs]))

    def idf(self, term: str) -> float:
        """Rarity of `term` among passage texts (titles left out)."""
        return self._idf(self._text_df.get(term, 0))

    def _idf(self, df: int) -> float:
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros where no term matches)."""
        scores = np.zeros(self.size, dtype=np.float32)
        for term in set(terms(query)):
            if term in self._postings:
                docs, weights = self._postings[term]
                scores[docs] += self._idf(len(docs)) * weights
        return scores

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        scores = self.scores(query)
        k = min(k, self.size)
        if k == 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best])]
        return [(int(i), float(scores[i])) for i in best if scores[i] > 0]
