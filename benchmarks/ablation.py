"""Answer-quality ablations: `citebot eval` with some of the answerer's weights changed.

Not a speed benchmark: it measures what a ranking change does to recall, MRR and
hit@1, on an evaluation index that `citebot eval` has built and cached. For SQuAD the
questions can be split by article into a half to choose weights on (`--half tune`: 1,500
of its questions) and a half to check them on (`--half check`: all of its questions),
so that a weight is not judged on the questions it was chosen with.

    python -m benchmarks.ablation --format squad \
        $CITEBOT_EVAL_DATA/squad_v1.1_dev/dev-v1.1.reconstructed.json --half check \
        --set bot.answering.scoring.PHRASE_WEIGHT=0 --set answer.candidate_passages=10

`--set MODULE.NAME=VALUE` replaces a module constant, `--set answer.FIELD=VALUE` a
setting; numbers are parsed as such. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import random
from pathlib import Path

import benchmarks.common  # noqa: F401  (offline, no telemetry: before a model loads)
from bot.answering.answerer import Answerer
from bot.evaluation.metrics import aggregate
from bot.evaluation.readers import EvalQuestion, read_eval_set
from bot.evaluation.runner import ask_all, build_index
from bot.evaluation.sampling import Sample, select
from index.settings import load_settings

TUNE_QUESTIONS = 1500
# The split the weights in bot/answering/scoring.py and answerer.py since commit 250395d
# were chosen on.
SPLIT_SEED, TUNE_SEED = 7, 1
REPORTED = (
    "questions",
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr",
    "best_sentence_hit@1",
    "citation_hit@1",
    "citation_hit@3",
    "answered",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=["squad", "realtimeqa"], required=True)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed, as in citebot eval")
    parser.add_argument("--half", choices=["tune", "check", "all"], default="all")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()

    settings = load_settings()  # the data directory whose eval-cache `citebot eval` fills
    changes: dict[str, object] = {}
    for assignment in args.set:
        name, _, raw = assignment.partition("=")
        value = _number(raw)
        owner, _, attribute = name.rpartition(".")
        if owner == "answer":
            changes[attribute] = value
        else:
            module = importlib.import_module(owner)
            if not hasattr(module, attribute):
                parser.error(f"--set {name}: {owner} has no {attribute}")
            setattr(module, attribute, value)

    chosen = select(read_eval_set(args.format, args.path), Sample(args.seed))
    built = build_index(chosen.articles, settings)
    answerer = Answerer(built.index, dataclasses.replace(built.index.settings, **changes))
    questions = _half(chosen.questions, args.half)
    summary = aggregate(ask_all(answerer, questions), [])
    print(
        json.dumps(
            {"half": args.half, "set": args.set, "index_cached": built.cached}
            | {key: summary.get(key) for key in REPORTED}
        )
    )


def _half(questions: list[EvalQuestion], half: str) -> list[EvalQuestion]:
    """The questions of half the gold articles (split by article)."""
    if half == "all":
        return questions
    articles = sorted({a for q in questions for a in q.gold_article_ids})
    random.Random(SPLIT_SEED).shuffle(articles)
    tune = set(articles[: len(articles) // 2])
    inside = [q for q in questions if (set(q.gold_article_ids) <= tune) == (half == "tune")]
    if half == "tune" and len(inside) > TUNE_QUESTIONS:
        inside = random.Random(TUNE_SEED).sample(inside, TUNE_QUESTIONS)
    return inside


def _number(raw: str) -> object:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


if __name__ == "__main__":
    main()
