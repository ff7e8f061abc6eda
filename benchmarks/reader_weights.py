"""How much the reader should count, and over how many candidates: a grid, offline.

Ranks every question of a set with the feature scorer (reader off), reads the best
`--depth` sentences of each with the reader once, then re-scores offline for every
reader weight and candidate count: best-sentence hit@1 and the confidence threshold that
answers 90% of the questions. It measures; it trains nothing. Run it on the sets the
weight may be chosen on (SQuAD split A, RealTime QA 2022), then check the choice on
split B with `citebot eval --split B`.

    python -m benchmarks.reader_weights --format squad --split A \
        $CITEBOT_EVAL_DATA/squad_v1.1_dev/dev-v1.1.reconstructed.json
    python -m benchmarks.reader_weights --format realtimeqa $CITEBOT_EVAL_DATA/realtimeqa_2022
    python -m benchmarks.reader_weights --format realtimeqa-weeks --weeks 45 --tune-weeks 20 \
        $CITEBOT_EVAL_DATA/realtimeqa_2023_2024

With `--tune-weeks K` the weeks' grid is also reported twice: over the questions of the
first K weeks drawn (a weight may be chosen there) and over the other weeks' (where that
choice is checked).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

import benchmarks.common  # noqa: F401  (offline, no telemetry: before a model loads)
from bot.answering.answerer import Answerer, reader_input
from bot.answering.reader import SentenceReader
from bot.evaluation.metrics import citation_hit, percentile
from bot.evaluation.readers import read_eval_set, read_realtimeqa_weeks
from bot.evaluation.runner import build_index
from bot.evaluation.sampling import Sample, sample_weeks, select
from bot.evaluation.splits import of_role, squad_split
from index.settings import load_settings

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 100.0)
# The same for the reader's raw score (its logit) in place of its probability: no
# ceiling, so two sentences the reader both believes still differ.
LOGIT_WEIGHTS = (0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
CANDIDATES = (3, 4, 6, 8, 10, 12, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--format", choices=["squad", "realtimeqa", "realtimeqa-weeks"], required=True
    )
    parser.add_argument("--weeks", type=int, help="realtimeqa-weeks: N weeks sampled by seed 0")
    parser.add_argument(
        "--tune-weeks",
        type=int,
        help="realtimeqa-weeks: also the grid of the first K of those weeks and of the rest",
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--split", choices=["A", "B"])
    parser.add_argument(
        "--squadshifts-role",
        choices=["reader", "combiner"],
        help="a SQuADShifts file (shared/traindata): only its articles of this training "
        "role (bot/training/datasets.py); combiner ones no reader trains on",
    )
    parser.add_argument("--limit", type=int)
    parser.add_argument("--distractors", type=int, help="RealTime QA: at most N distractors")
    parser.add_argument(
        "--unanswerable", type=int, default=0, help="also K questions whose article is held out"
    )
    parser.add_argument("--depth", type=int, default=max(CANDIDATES))
    parser.add_argument("--reader", default="bundled", help="answer.reader")
    parser.add_argument("--precision", default="auto", help="answer.reader_precision")
    parser.add_argument(
        "--max-length", type=int, help="tokens the reader reads of a pair (default: its own)"
    )
    args = parser.parse_args()

    settings = load_settings()
    reader = SentenceReader.from_setting(args.reader, args.precision).load()
    if args.max_length:
        reader._model.max_seq_length = args.max_length
    if args.format == "realtimeqa-weeks":
        # Each week's questions against that week's own index, as `citebot eval` asks them.
        every_week = read_realtimeqa_weeks(args.path)
        weeks = sample_weeks(every_week, args.weeks, 0)
        chosen = [select(week, Sample(0, args.limit)) for week in weeks]
        tuning = {id(w) for w in sample_weeks(every_week, args.tune_weeks or 0, 0)}
        in_tuning = [id(week) in tuning for week in weeks]
    else:
        eval_set = read_eval_set(args.format, args.path)
        if args.split:
            eval_set = squad_split(eval_set, args.split)
        if args.squadshifts_role:
            eval_set = of_role(eval_set, "squadshifts", args.squadshifts_role)
        sample = Sample(0, args.limit, distractors=args.distractors, unanswerable=args.unanswerable)
        chosen = [select(eval_set, sample)]

    def read(answerer, questions):
        rows = []
        for question in questions:
            asked_on = (
                date.fromisoformat(question.question_date) if question.question_date else None
            )
            head = answerer.rank(question.question, asked_on).sentences[: args.depth]
            if not head:
                rows.append(None)
                continue
            logits = reader.score(question.question, [reader_input(s) for s in head])
            rows.append(
                (
                    np.array([s.score for s in head]),
                    np.array([s.support for s in head]),
                    logits,
                    np.array([citation_hit([s.text], question.answers, 1) for s in head]),
                )
            )
        return rows

    rows, held, tuned = [], [], []
    for number, one in enumerate(chosen):
        built = build_index(one.articles, settings)
        answerer = Answerer(built.index, built.index.settings, reader=None)
        rows += read(answerer, one.questions)
        held += read(answerer, one.unanswerable)
        if args.tune_weeks:
            tuned += [in_tuning[number]] * len(one.questions)
    report = {
        "format": args.format,
        "max_length": reader._model.max_seq_length,
        "split": args.split,
        "questions": len(rows),
        "unanswerable": len(held),
        "grid": _grid(rows, held),
    }
    if args.tune_weeks:
        for name, keep in (("tune", True), ("check", False)):
            picked = [row for row, t in zip(rows, tuned, strict=True) if t == keep]
            report[f"{name}_questions"] = len(picked)
            report[f"{name}_grid"] = _grid(picked, [])
    print(json.dumps(report, indent=1))


def _grid(rows: list, held: list) -> dict[str, dict[str, float]]:
    """Every candidate count: the share of questions whose answer is among the sentences
    read; and for each weight, hit@1 and each confidence's 90% point (and the
    share of `held` it answers)."""
    grid = {}
    combinations = [(w, "") for w in WEIGHTS] + [(w, " on the logit") for w in LOGIT_WEIGHTS]
    for count in CANDIDATES:
        # The ceiling of any reading: the share of questions with an answering sentence
        # among the `count` sentences read.
        among = [row is not None and bool(row[3][:count].any()) for row in rows]
        grid[f"{count} candidates, answer among them"] = {"share": round(float(np.mean(among)), 4)}
        for weight, scale in combinations:
            logit = bool(scale)
            hits = [_pick(row, count, weight, logit)[0] for row in rows]
            figures = {"best_sentence_hit@1": round(float(np.mean(hits)), 4)}
            for name in CONFIDENCES:
                answerable = [_pick(row, count, weight, logit)[1][name] for row in rows]
                threshold = percentile(answerable, 10)
                figures[f"{name}: min_confidence@90"] = round(threshold, 4)
                if held:
                    held_out = [_pick(row, count, weight, logit)[1][name] for row in held]
                    figures[f"{name}: unanswerable_answered@90"] = round(
                        float(np.mean([c >= threshold for c in held_out])), 4
                    )
            grid[f"{count} candidates, weight {weight}{scale}"] = figures
    return grid


# Confidences an answer threshold could be compared with: the best support plus the
# reader's share, the reader's probability for the sentence ranked first, or its best one.
CONFIDENCES = ("combined", "first_probability", "max_probability")


def _pick(row, count: int, weight: float, logit: bool) -> tuple[float, dict[str, float]]:
    """Whether the sentence ranked first holds the answer, and each confidence."""
    if row is None:
        return 0.0, dict.fromkeys(CONFIDENCES, 0.0)
    score, support, logits, hit = (a[:count] for a in row)
    probability = 1 / (1 + np.exp(-logits))
    gain = weight * (logits if logit else probability)
    first = int(np.argmax(score + gain))
    return float(hit[first]), {
        "combined": float(np.max(support + gain)),
        "first_probability": float(probability[first]),
        "max_probability": float(np.max(probability)),
    }


if __name__ == "__main__":
    main()
