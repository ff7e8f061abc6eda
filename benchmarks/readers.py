"""Readers side by side on questions none of them trained on: the training data's
combiner-role and dev-role sets, asked as `citebot ask` would.

    python -m benchmarks.readers --traindata TRAINDATA \
        --reader none --reader bundled --reader models/candidate

TRAINDATA is a training data folder laid out as the project's shared/traindata is.

Indexes once (bot/training/calibration_sets.py: SQuAD 2.0 and SQuADShifts combiner
articles with the news stories of Wikinews 2020 and the last month of "Current events",
half of them left out of the index; 400 QED queries the reader did not draw; SQuAD 2.0
split A's dev-role articles), then asks every question with each reader in turn. For
each reader and set it prints one JSON line: the share of answerable questions whose
first quote answers, and the AUROC of the answer's support (answerable against
unanswerable) where the set has both. On the dev set it also fits the confidence curve
on the combiner questions and reports what `citebot calibrate` reports (AUROC, the share
of the unanswerable answered where 85% of the answerable are).

It measures; it trains nothing. A reader is chosen on these sets, never on split B.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import benchmarks.common  # noqa: F401  (offline, no telemetry: before a model loads)
from bot.answering.answerer import Answerer
from bot.answering.reader import SentenceReader
from bot.evaluation.runner import build_index
from bot.training.calibrate import Point, ask_all, fit_curve, measure
from bot.training.calibration_sets import (
    combiner_set,
    dev_set,
    qed_combiner_set,
    traindata_draws,
)
from index.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traindata", type=Path, required=True)
    parser.add_argument(
        "--reader",
        action="append",
        required=True,
        help='"none", "bundled", or a cross-encoder folder; repeat to compare',
    )
    parser.add_argument("--per-source", type=int, default=300)
    parser.add_argument(
        "--reader-per-source",
        type=int,
        action="append",
        default=[],
        help="a --per-source a reader was trained with where its training.json does not "
        "say (read from there): the QED questions it drew are not asked",
    )
    parser.add_argument("--dev-questions", type=int, default=600)
    parser.add_argument("--precision", default="auto", help="answer.reader_precision")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    settings = load_settings()
    # QED questions any of the readers trained on are asked of none of them.
    drawn = [d for name in args.reader for d in traindata_draws(name)]
    drawn += [(n, args.seed) for n in args.reader_per_source]
    sets = {
        "combiner": combiner_set(args.traindata, args.seed, args.per_source),
        "qed": qed_combiner_set(args.traindata, args.seed, drawn),
        "dev": dev_set(args.traindata, args.dev_questions, args.seed),
    }
    indexes = {name: build_index(articles, settings).index for name, (articles, _) in sets.items()}
    for name in args.reader:
        reader = SentenceReader.from_setting(name, args.precision)
        started = time.perf_counter()
        points: dict[str, list[Point]] = {}
        for set_name, (_, asked) in sets.items():
            answerer = Answerer(indexes[set_name], indexes[set_name].settings, reader=reader)
            answered = ask_all(answerer, asked, lambda _: None)
            for a, point in zip(asked, answered, strict=True):
                part = "dev" if set_name == "dev" else a.question.source
                points.setdefault(part, []).append(point)
        fitted = [p for part, ps in points.items() if part != "dev" for p in ps]
        rows = {part: _figures(ps) for part, ps in points.items()}
        rows["all held out but dev"] = _figures(fitted)
        dev = measure(points["dev"], fit_curve(fitted))
        dev.pop("reliability")
        rows["dev"] |= {f"calibrated_{k}": v for k, v in dev.items()}
        seconds = round(time.perf_counter() - started, 1)
        for part, figures in rows.items():
            print(json.dumps({"reader": name, "set": part, **figures, "seconds": seconds}))


def _figures(points: list[Point]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    answerable = [p for p in points if p.answerable]
    figures: dict[str, float] = {
        "answerable": len(answerable),
        "unanswerable": len(points) - len(answerable),
        "first_quote_right": round(sum(p.first_right for p in answerable) / len(answerable), 4)
        if answerable
        else 0.0,
    }
    labels = [p.answerable for p in points]
    if len(set(labels)) == 2:
        support = [-1.0 if p.support is None else p.support for p in points]
        figures["support_auroc"] = round(float(roc_auc_score(labels, support)), 4)
    return figures


if __name__ == "__main__":
    main()
