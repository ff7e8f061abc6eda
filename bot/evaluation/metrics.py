"""The numbers `citebot eval` reports, as pure functions of per-question results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.evaluation.readers import EvalQuestion
from index.store.passage_info import PassageInfo

RECALL_DEPTHS = (1, 5, 10)


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome: rank of the first relevant passage (1-based, None when
    none is in the ranking), whether it was answered, the cited sentences, latency, and
    the best-scored sentence (cited or not: what a reader without a threshold sees)."""

    id: str
    rank: int | None
    answered: bool
    cited: list[str]
    ms: float
    answers: list[str]
    confidence: float = 0.0
    best_sentence: str = ""


def is_relevant(metadata: PassageInfo, question: EvalQuestion) -> bool:
    """A passage is relevant when it overlaps a gold paragraph, or when only gold
    articles are known, when it comes from one."""
    article_id = metadata.article_id
    if question.gold_spans is None:
        return article_id in question.gold_article_ids
    return any(
        article_id == gold_id and metadata.start < end and start < metadata.end
        for gold_id, start, end in question.gold_spans
    )


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    return next((rank for rank, hit in enumerate(relevant, 1) if hit), None)


def recall_at_k(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank is not None else 0.0


def citation_hit(cited: Sequence[str], answers: Sequence[str], k: int) -> float:
    """1 when one of the first `k` cited sentences contains a gold answer (ignoring case)."""
    golds = [a.casefold() for a in answers]
    return 1.0 if any(g in c.casefold() for c in cited[:k] for g in golds) else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between order statistics."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def aggregate(
    results: Sequence[QuestionResult], unanswerable: Sequence[QuestionResult] = ()
) -> dict[str, Any]:
    """Recall@k and MRR of the ranking, citation hits, answered share and latency.

    Recall, MRR, hits and the answered share are over answerable questions; latency is
    over every question asked.
    """
    summary: dict[str, Any] = {"questions": len(results)}
    for k in RECALL_DEPTHS:
        summary[f"recall@{k}"] = mean([recall_at_k(r.rank, k) for r in results])
    summary["mrr"] = mean([reciprocal_rank(r.rank) for r in results])
    for k in (1, 3):
        summary[f"citation_hit@{k}"] = mean([citation_hit(r.cited, r.answers, k) for r in results])
    # The best sentence whether or not it passed answer.min_confidence: comparable with
    # readers that always answer, as the baselines do.
    summary["best_sentence_hit@1"] = mean(
        [citation_hit([r.best_sentence], r.answers, 1) for r in results]
    )
    summary["answered"] = mean([float(r.answered) for r in results])
    answered = [r for r in results if r.answered]
    summary["citation_hit@1_when_answered"] = mean(
        [citation_hit(r.cited, r.answers, 1) for r in answered]
    )
    latencies = [r.ms for r in [*results, *unanswerable]]
    summary["p50_ms"] = percentile(latencies, 50)
    summary["p95_ms"] = percentile(latencies, 95)
    if unanswerable:
        summary["unanswerable"] = len(unanswerable)
        summary["unanswerable_answered"] = mean([float(r.answered) for r in unanswerable])
        summary |= threshold_tradeoff(results, unanswerable)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}


def threshold_tradeoff(
    answerable: Sequence[QuestionResult], unanswerable: Sequence[QuestionResult]
) -> dict[str, float]:
    """For answer.min_confidence set so that 90% (95%) of the answerable questions are
    answered: that threshold, and the share of unanswerable questions it still answers."""
    tradeoff: dict[str, float] = {}
    confidences = [r.confidence for r in answerable]
    for share in (90, 95):
        threshold = percentile(confidences, 100 - share)
        tradeoff[f"min_confidence@{share}"] = threshold
        tradeoff[f"unanswerable_answered@{share}"] = mean(
            [float(r.confidence >= threshold) for r in unanswerable]
        )
    return tradeoff
