"""Hybrid retrieval: dense (Chroma) and keyword (BM25) passage rankings, fused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from index.store import ArticleIndex, StoredPassages

# Reciprocal rank fusion constant (Cormack et al. 2009).
RRF_K = 60


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

    def search(
        self,
        question: str,
        query_embedding: list[float],
        k: int,
        stored: StoredPassages | None = None,
    ) -> list[RetrievedPassage]:
        """The `k` best passages; `stored` is the snapshot to search (default: the
        current one, which costs a read of the index state)."""
        stored = stored or self.index.stored_passages()
        dense = stored.dense_search(query_embedding, self.depth)
        keyword = [
            (stored.ids[row], score) for row, score in stored.keywords.top(question, self.depth)
        ]
        fused: dict[str, float] = {}
        for ranking in (dense, keyword):
            for rank, (pid, _) in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
        dense_of = dict(dense)
        keyword_of = dict(keyword)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[:k]
        missing = [pid for pid in best if pid not in dense_of]
        dense_of |= stored.similarities(missing, query_embedding)
        return [
            RetrievedPassage(
                id=pid,
                text=stored.texts[stored.row[pid]],
                metadata=stored.metadatas[stored.row[pid]],
                dense=dense_of[pid],
                keyword=keyword_of.get(pid, 0.0),
                score=fused[pid],
            )
            for pid in best
            if pid in stored.row
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = query_bundle.embedding or self.index.encoder.get_query_embedding(
            query_bundle.query_str
        )
        return [
            NodeWithScore(node=TextNode(id_=p.id, text=p.text, metadata=p.metadata), score=p.score)
            for p in self.search(query_bundle.query_str, embedding, self.depth)
        ]
