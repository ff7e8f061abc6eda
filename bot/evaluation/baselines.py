"""The plain methods citebot is measured against, run on the same index in the same run.

Passage rankings: BM25 alone, the MiniLM dense search alone, and their reciprocal rank
fusion (no dates, no re-ranking). Citations: the first sentence of the top fused passage
(what chunk-level retrieval shows), and the sentence closest in meaning to the question
among the top 3 fused passages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.answering.scoring import sentences_of
from bot.evaluation.metrics import (
    RECALL_DEPTHS,
    citation_hit,
    first_relevant_rank,
    is_relevant,
    mean,
    recall_at_k,
    reciprocal_rank,
)
from bot.evaluation.readers import EvalQuestion
from index.retrieval import HybridRetriever, PassageQuery
from index.store.passage_info import PassageInfo
from index.store.snapshot import StoredPassages

RANKINGS = ("bm25", "dense", "rrf")
SENTENCE_PICKS = ("first_sentence_of_top_passage", "closest_sentence_of_top_3")


@dataclass(frozen=True)
class BaselineResult:
    """One question under every baseline: rank of the first relevant passage per
    ranking, and the sentence each citation baseline picks."""

    ranks: dict[str, int | None]
    sentences: dict[str, str]
    answers: list[str]


def run_baselines(
    retriever: HybridRetriever,
    stored: StoredPassages,
    question: EvalQuestion,
    text: str,
    query: Sequence[float],
) -> BaselineResult:
    depth = max(RECALL_DEPTHS)
    rankings: dict[str, list[PassageInfo]] = {
        "bm25": [stored.metadatas[row] for row, _ in stored.keywords.top(text, depth)],
        "dense": [
            stored.metadatas[row]
            for pid, _ in stored.dense_search(list(query), depth)
            if (row := stored.ids.position(pid)) is not None
        ],
    }
    fused = retriever.search(PassageQuery(text, list(query), depth), stored).passages
    rankings["rrf"] = [p.metadata for p in fused]
    ranks = {
        name: first_relevant_rank([is_relevant(meta, question) for meta in ranking])
        for name, ranking in rankings.items()
    }
    sentences = {name: "" for name in SENTENCE_PICKS}
    if fused:
        top = fused[0]
        start, end = top.metadata.sentences[0]
        sentences["first_sentence_of_top_passage"] = top.text[start:end]
        sentences["closest_sentence_of_top_3"] = _closest_sentence(fused[:3], query)
    return BaselineResult(ranks, sentences, question.answers)


def _closest_sentence(passages: Sequence[Any], query: Sequence[float]) -> str:
    """The sentence whose stored vector (the sentence alone) is closest to the query."""
    vector = np.asarray(query, dtype=np.float32)
    best, best_text = -2.0, ""
    for passage in passages:
        spans, vectors = sentences_of(passage)
        similarities = vectors[: len(spans)] @ vector
        i = int(np.argmax(similarities))
        if similarities[i] > best:
            start, end = spans[i]
            best, best_text = float(similarities[i]), passage.text[start:end]
    return best_text


def summarize(results: Sequence[BaselineResult]) -> dict[str, dict[str, float]]:
    """Recall@k and MRR per ranking, citation hit@1 per sentence pick."""
    summary: dict[str, dict[str, float]] = {}
    for name in RANKINGS:
        ranks = [r.ranks[name] for r in results]
        summary[name] = {
            f"recall@{k}": mean([recall_at_k(x, k) for x in ranks]) for k in RECALL_DEPTHS
        }
        summary[name]["mrr"] = mean([reciprocal_rank(x) for x in ranks])
    for name in SENTENCE_PICKS:
        summary[name] = {
            "citation_hit@1": mean(
                [citation_hit([r.sentences[name]], r.answers, 1) for r in results]
            )
        }
    return {name: {k: round(v, 4) for k, v in figures.items()} for name, figures in summary.items()}


def ask_baselines(
    retriever: HybridRetriever,
    encoder: Any,
    questions: Sequence[EvalQuestion],
    progress: Any = None,
) -> list[BaselineResult]:
    stored = retriever.index.stored_passages()
    results = []
    for question in questions:
        text = " ".join(question.question.split())
        query = encoder.get_query_embedding(text)
        results.append(run_baselines(retriever, stored, question, text, query))
        if progress:
            progress(1)
    return results
