"""Hybrid retrieval: dense (Chroma) and keyword (BM25) passage rankings, fused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from index.keyword import top_rows
from index.store import ArticleIndex, StoredPassages

# Reciprocal rank fusion constant (Cormack et al. 2009).
RRF_K = 60


@dataclass(frozen=True)
class PublishedWindow:
    """Publication dates a question allows (`latest`, YYYY-MM-DD) and prefers
    (`recent_dates`, possibly none)."""

    latest: str
    recent_dates: list[str]


@dataclass(frozen=True)
class RetrievedPassage:
    """A passage with the evidence for it: cosine similarity, BM25 score, fused score."""

    id: str
    text: str
    metadata: dict[str, Any]
    dense: float
    keyword: float
    score: float


class HybridRetriever(BaseRetriever):
    """Fuses the dense and keyword rankings of the active index by reciprocal rank."""

    def __init__(self, index: ArticleIndex, depth: int = 30) -> None:
        super().__init__()
        self.index = index
        self.depth = depth
        # (snapshot key, each passage's publication date), replaced whole: threads share it.
        self._dates: tuple[tuple[str, str], np.ndarray] | None = None

    def search(
        self,
        question: str,
        query_embedding: list[float],
        k: int,
        stored: StoredPassages | None = None,
        when: PublishedWindow | None = None,
    ) -> list[RetrievedPassage]:
        """The `k` best passages; `stored` is the snapshot to search (default: the
        current one, which costs a read of the index state). With `when`, passages
        published after its latest day are left out, and passages of its recent days
        are searched for separately and fused in, so that they are among the candidates
        even when older articles match the question's words better."""
        stored = stored or self.index.stored_passages()
        published = self._published(stored)
        allowed = published <= when.latest if when else np.ones(len(published), dtype=bool)
        allowed |= published == ""
        # A passage another process added after this snapshot was taken waits for the next.
        dense = [
            (pid, similarity)
            for pid, similarity in stored.dense_search(query_embedding, self.depth)
            if pid in stored.row and allowed[stored.row[pid]]
        ]
        keyword_scores = stored.keywords.scores(question)
        rankings = [dense, self._top(stored, keyword_scores * allowed)]
        if when and when.recent_dates:
            recent_dense = [
                (pid, similarity)
                for pid, similarity in stored.dense_search(
                    query_embedding, self.depth, where={"published": {"$in": when.recent_dates}}
                )
                if pid in stored.row
            ]
            recent = np.isin(published, when.recent_dates)
            rankings += [recent_dense, self._top(stored, keyword_scores * recent)]
            dense += recent_dense
        fused: dict[str, float] = {}
        for ranking in rankings:
            for rank, (pid, _) in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
        dense_of = dict(dense)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[:k]
        missing = [pid for pid in best if pid not in dense_of]
        dense_of |= stored.similarities(missing, query_embedding)
        return [
            RetrievedPassage(
                id=pid,
                text=stored.texts[stored.row[pid]],
                metadata=stored.metadatas[stored.row[pid]],
                dense=dense_of[pid],
                keyword=float(keyword_scores[stored.row[pid]]),
                score=fused[pid],
            )
            for pid in best
        ]

    def _top(self, stored: StoredPassages, scores: np.ndarray) -> list[tuple[str, float]]:
        return [(stored.ids[row], score) for row, score in top_rows(scores, self.depth)]

    def _published(self, stored: StoredPassages) -> np.ndarray:
        """Each passage's publication date ("" when unknown), per snapshot."""
        cached = self._dates
        if cached is None or cached[0] != stored.key:
            dates = np.array([m.get("published") or "" for m in stored.metadatas], dtype=str)
            cached = self._dates = (stored.key, dates)
        return cached[1]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = query_bundle.embedding or self.index.encoder.get_query_embedding(
            query_bundle.query_str
        )
        return [
            NodeWithScore(node=TextNode(id_=p.id, text=p.text, metadata=p.metadata), score=p.score)
            for p in self.search(query_bundle.query_str, embedding, self.depth)
        ]
