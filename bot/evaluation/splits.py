"""The fixed split of SQuAD v1.1 dev by article: what the shipped reader may train on (A)
and what only measures it (B).

The 48 article titles are sorted; even positions (0, 2, ...) are split A, odd positions
split B. A question belongs to the split of its article, so no paragraph of B is ever seen
in training.
"""

from __future__ import annotations

from bot.evaluation.readers import EvalDataError, EvalSet

SPLITS = ("A", "B")


def split_titles(titles: list[str], split: str) -> list[str]:
    """The titles of `split`: sorted, even positions for A, odd for B."""
    if split not in SPLITS:
        raise EvalDataError(f"split {split!r} does not exist: use A (training) or B (measuring)")
    return sorted(titles)[SPLITS.index(split) :: 2]


def squad_split(eval_set: EvalSet, split: str) -> EvalSet:
    """The articles of `split` and the questions about them (distractors are dropped)."""
    titles = [a.id for a in eval_set.articles if a.id not in eval_set.distractor_ids]
    if not all(t.startswith("squad:") for t in titles):
        raise EvalDataError("--split applies to SQuAD sets only (--format squad)")
    keep = set(split_titles(titles, split))
    return _of_articles(eval_set, keep)


def of_role(eval_set: EvalSet, source: str, role: str) -> EvalSet:
    """The articles of a SQuAD-format training set (`source` as bot/training/datasets.py
    names it) that have `role` there, and the questions about them: the same articles a
    training command gives that role."""
    from bot.training.datasets import role_of

    names = {a.id: f"{source}:{a.id.removeprefix('squad:')}" for a in eval_set.articles}
    every = sorted(names.values())
    keep = {a for a, name in names.items() if role_of(source, name, every) == role}
    return _of_articles(eval_set, keep)


def without_articles(eval_set: EvalSet, ids: set[str]) -> EvalSet:
    """`eval_set` without the articles whose id is in `ids`, and the questions about them."""
    return _of_articles(eval_set, {a.id for a in eval_set.articles} - ids)


def _of_articles(eval_set: EvalSet, keep: set[str]) -> EvalSet:
    """The articles whose id is in `keep` and the questions about them only."""
    return EvalSet(
        articles=[a for a in eval_set.articles if a.id in keep],
        questions=[q for q in eval_set.questions if set(q.gold_article_ids) <= keep],
    )
