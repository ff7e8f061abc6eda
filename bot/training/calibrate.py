"""`citebot calibrate`: fits the curves that make an answer's confidence a probability
(bot/answering/calibration.py) and measures them on held-out questions.

Each question of the combiner's set (bot/training/calibration_sets.py) is asked as
`citebot ask` would, with the reader and without; its answer's support is labelled 1
when the first quote is a sentence that answers it (never, for the questions the index
cannot answer). One logistic curve of the support is fitted per mode. The dev questions
(SQuAD 2.0 split A's dev-role articles, half of them unanswerable) then say what the
default threshold gives and how well the probability is calibrated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bot.answering.calibration import BUNDLED_CALIBRATION, SUPPORT_THRESHOLD, Calibration, Curve

if TYPE_CHECKING:  # the training data's readers load when the command runs, not for --help
    from bot.training.calibration_sets import Asked

# The share of the answerable dev questions answered at which the trade-off is also
# reported (issue 25's operating point).
ANSWERED_SHARE = 0.85
RELIABILITY_BINS = 5


@dataclass(frozen=True)
class Point:
    """One question asked: its answer's support (None: no sentence may answer), whether
    the index can answer it, and whether the first quote is a sentence that does."""

    support: float | None
    answerable: bool
    first_right: bool


def ask_all(answerer, asked: Sequence[Asked], progress: Callable[[int], None]) -> list[Point]:
    from bot.answering.answerer import answer_support
    from bot.training.calibration_sets import sentence_key

    points = []
    for a in asked:
        ranking = answerer.rank(a.question.question, a.asked_on)
        first = ranking.sentences[0].text if ranking.sentences else ""
        support = answer_support(ranking.sentences, ranking.when)
        points.append(Point(support, bool(a.answers), sentence_key(first) in a.answers))
        progress(1)
    return points


def fit_curve(points: Sequence[Point]) -> Curve:
    """The logistic curve of the support that best predicts a right first quote (the
    answers with no eligible sentence are left out: their confidence is 0 whatever)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    kept = [p for p in points if p.support is not None]
    x = np.array([[p.support] for p in kept])
    y = np.array([p.first_right for p in kept])
    if len(set(y.tolist())) < 2:
        raise click.ClickException(
            "the calibration needs questions answered rightly and wrongly: give more "
            "training data (--traindata) or a larger --per-source"
        )
    model = LogisticRegression(C=1e4).fit(x, y)
    return Curve(float(model.coef_[0][0]), float(model.intercept_[0]))


def measure(points: Sequence[Point], curve: Curve) -> dict[str, float]:
    """What the curve gives on held-out `points`: at the default threshold, the shares of
    answerable and unanswerable questions answered and of answers whose first quote is
    right; the same at the threshold answering ANSWERED_SHARE of the answerable; the
    AUROC of the confidence; and, per bin of confidence, the mean confidence against
    the share of right first quotes (calibration)."""
    from sklearn.metrics import roc_auc_score

    conf = [0.0 if p.support is None else curve.probability(p.support) for p in points]
    answerable = [c for c, p in zip(conf, points, strict=True) if p.answerable]
    ranked = sorted(answerable)
    at_share = ranked[int(len(ranked) * (1 - ANSWERED_SHARE))] if ranked else 0.0
    figures: dict[str, float] = {
        "answerable": len(answerable),
        "unanswerable": len(points) - len(answerable),
    }
    for name, threshold in (("default", curve.probability(SUPPORT_THRESHOLD)), ("at_85", at_share)):
        answered = [(c >= threshold, p) for c, p in zip(conf, points, strict=True)]
        given = [p for yes, p in answered if yes]
        figures |= {
            f"{name}_min_confidence": round(threshold, 4),
            f"{name}_answerable_answered": _share([y for y, p in answered if p.answerable]),
            f"{name}_unanswerable_answered": _share([y for y, p in answered if not p.answerable]),
            f"{name}_answered_first_quote_right": _share([p.first_right for p in given]),
        }
    figures["first_quote_right"] = _share([p.first_right for p in points if p.answerable])
    labels = [p.answerable for p in points]
    if len(set(labels)) == 2:
        figures["auroc"] = round(float(roc_auc_score(labels, conf)), 4)
    return figures | {"reliability": reliability(conf, [p.first_right for p in points])}


def reliability(confidences: Sequence[float], right: Sequence[bool]) -> list[list[float]]:
    """[mean confidence, share right, count] of each of RELIABILITY_BINS equal bins."""
    rows = []
    for n in range(RELIABILITY_BINS):
        low, high = n / RELIABILITY_BINS, (n + 1) / RELIABILITY_BINS
        inside = [
            (c, r)
            for c, r in zip(confidences, right, strict=True)
            if low <= c < high or (n == RELIABILITY_BINS - 1 and c == 1.0)
        ]
        if inside:
            mean = sum(c for c, _ in inside) / len(inside)
            rows.append([round(mean, 3), _share([r for _, r in inside]), len(inside)])
    return rows


def _share(flags: Sequence[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


@click.command()
@click.option(
    "--traindata",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The training data folder (../shared/traindata: read its README).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the calibration (default: the shipped bot/models/confidence.json).",
)
@click.option(
    "--per-source",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Fit on at most N answerable and N unanswerable questions of each source.",
)
@click.option(
    "--reader-per-source",
    type=click.IntRange(min=1),
    help="A --per-source the reader was trained with, where its training.json does not "
    "say (it is read from there): QED questions it did not draw join the fitting.",
)
@click.option(
    "--dev-questions",
    type=click.IntRange(min=2),
    default=600,
    show_default=True,
    help="Measure on N of the dev questions (half answerable), drawn by --seed.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def calibrate_command(
    traindata: Path,
    out: Path | None,
    per_source: int,
    reader_per_source: int | None,
    dev_questions: int,
    seed: int,
) -> None:
    """Fit the confidence: the probability that an answer's first quote answers.

    Indexes the training data's combiner-role articles (never read by a reader trained
    with --traindata), asks their questions with the reader configured (answer.reader) and
    without, fits one logistic curve of the answer's support for each, and measures them
    on SQuAD 2.0 split A's dev-role articles. Seeded; about 10 minutes on 2 CPU cores.

    \b
    Example:
      citebot calibrate --traindata ../shared/traindata
    """
    from bot.answering.answerer import Answerer
    from bot.answering.reader import SentenceReader
    from bot.evaluation.runner import build_index
    from bot.training.calibration_sets import (
        combiner_set,
        dev_set,
        qed_combiner_set,
        traindata_draws,
    )
    from bot.training.command import progress_bar
    from index.settings import load_settings

    out = out or BUNDLED_CALIBRATION
    settings = load_settings()
    reader = SentenceReader.from_setting(settings.reader, settings.reader_precision)
    if reader is None:
        raise click.UsageError("calibrate needs a reader: set answer.reader to one")
    modes = {"features": None, "reader": reader}

    def asked_of(name: str, articles: list, asked: list[Asked]) -> dict[str, list[Point]]:
        """`asked` of an index of `articles`, with the reader off and on."""
        with progress_bar(f"Indexing {name}", len(articles), "article") as bar:
            built = build_index(articles, settings, bar.update)
        points = {}
        for mode, mode_reader in modes.items():
            answerer = Answerer(built.index, built.index.settings, reader=mode_reader)
            with progress_bar(f"Asking {name} ({mode})", len(asked), "question") as bar:
                points[mode] = ask_all(answerer, asked, bar.update)
        return points

    started = time.perf_counter()
    fitted: dict[str, list[Point]] = {mode: [] for mode in modes}
    sources: dict[str, list[int]] = {}
    parts = {"combiner": combiner_set(traindata, seed, per_source)}
    drawn = traindata_draws(settings.reader)
    if reader_per_source:
        drawn.append((reader_per_source, seed))
    parts["QED"] = qed_combiner_set(traindata, seed, drawn)
    for name, (articles, asked) in parts.items():
        for mode, points in asked_of(name, articles, asked).items():
            fitted[mode] += points
        for a in asked:
            sources.setdefault(a.question.source, [0, 0])[0 if a.answers else 1] += 1
    curves = {mode: fit_curve(points) for mode, points in fitted.items()}
    dev = asked_of("dev", *dev_set(traindata, dev_questions, seed))
    measured = {mode: measure(points, curves[mode]) for mode, points in dev.items()}
    # The command as given, with the options left at their defaults left out.
    context = click.get_current_context()
    changed = [
        f" --{p.name.replace('_', '-')} {context.params[p.name]}"
        for p in context.command.params
        if p.name not in ("traindata", "out") and context.params[p.name] != p.default
    ]
    record = {
        "command": "citebot calibrate --traindata TRAINDATA" + "".join(changed),
        "reader": settings.reader,
        "reader_precision": reader.precision,
        "fitted_on": {k: {"answerable": v[0], "unanswerable": v[1]} for k, v in sources.items()},
        "dev": measured,
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    Calibration(curves["reader"], curves["features"], record).save(out)
    click.echo(json.dumps(measured, indent=1))
    click.echo(f"Calibration written to {out}")
