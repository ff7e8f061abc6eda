"""Chooses which part of an evaluation set to index and ask, reproducibly from a seed.

Each choice draws from its own seeded generator, so changing `--limit` never changes
which articles are indexed (and the cached index stays valid).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TypeVar

from bot.evaluation.readers import EvalQuestion, EvalSet

T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """How much of a set to use; None means all of it."""

    seed: int = 0
    limit: int | None = None
    articles: int | None = None
    distractors: int | None = None
    unanswerable: int = 0


def select(eval_set: EvalSet, sample: Sample) -> EvalSet:
    """The articles to index and the questions to ask.

    Gold articles are shuffled; for `unanswerable` questions whole articles are held out
    from the end of that order until enough questions have lost all their gold articles,
    and `articles` caps the rest. Questions whose gold articles are only partly indexed
    are left out.
    """
    documents = [a.id for a in eval_set.articles if a.id not in eval_set.distractor_ids]
    _rng(sample, "documents").shuffle(documents)
    held: set[str] = set()
    unanswerable: list[EvalQuestion] = []
    while sample.unanswerable and documents and len(unanswerable) < sample.unanswerable:
        held.add(documents.pop())
        unanswerable = [q for q in eval_set.questions if set(q.gold_article_ids) <= held]
    indexed = set(documents[: sample.articles] if sample.articles else documents)
    questions = [
        q for q in eval_set.questions if q.gold_article_ids and set(q.gold_article_ids) <= indexed
    ]
    distractors = sorted(eval_set.distractor_ids)
    if sample.distractors is not None:
        distractors = _sampled(distractors, sample.distractors, _rng(sample, "distractors"))
    indexed |= set(distractors)
    return EvalSet(
        articles=[a for a in eval_set.articles if a.id in indexed],
        questions=_sampled(questions, sample.limit, _rng(sample, "questions")),
        distractor_ids=frozenset(distractors),
        unanswerable=_sampled(unanswerable, sample.unanswerable, _rng(sample, "unanswerable")),
        name=eval_set.name,
    )


def sample_weeks(weeks: list[EvalSet], count: int | None, seed: int) -> list[EvalSet]:
    """`count` of the weeks drawn by `seed` (every week when None), in date order. The
    weeks are drawn in one seeded order, so a smaller sample is part of a larger one and
    their cached indexes are shared."""
    order = list(range(len(weeks)))
    random.Random(f"{seed}:weeks").shuffle(order)
    return [weeks[i] for i in sorted(order[:count] if count is not None else order)]


def _rng(sample: Sample, purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512, so it is the same in every process.
    return random.Random(f"{sample.seed}:{purpose}")


def _sampled(items: list[T], size: int | None, rng: random.Random) -> list[T]:
    """`size` of `items` drawn at random, kept in their original order."""
    if size is None or size >= len(items):
        return list(items)
    return [items[i] for i in sorted(rng.sample(range(len(items)), size))]
