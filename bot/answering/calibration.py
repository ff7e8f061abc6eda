"""The answer's confidence as a probability: that its first quote answers the question.

What the ranking knows of an answer is its support (bot/answering/answerer.py,
`answer_support`): the feature scorer's evidence for the best eligible sentence, plus
the reader's gain when the reader read it, a score from about 0 to 2.5. `citebot
calibrate` fits, for the reader on and off, a logistic curve of that one number (Platt
scaling) on training questions the reader never trained on, answerable and not, and
bot/models/confidence.json keeps the two curves with what they measured on held-out
questions (bot/models/confidence.md).

A curve rises with the support, so it changes no ranking, and the default threshold is
the probability of SUPPORT_THRESHOLD, the support the scorer's threshold was chosen at:
what is answered and what is declined stay as they were, and `answer.min_confidence`
is now a probability (docs/EVALUATION.md, "The confidence, calibrated").
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import CitebotError

BUNDLED_CALIBRATION = Path(__file__).resolve().parent.parent / "models" / "confidence.json"
# The support at which answers were given before the confidence was a probability: it
# answered 90% of SQuAD split A's questions with the reader on (docs/EVALUATION.md).
SUPPORT_THRESHOLD = 0.72
# The two curves, as the file names them: with the reader on, and off.
CURVES = ("reader", "features")


class CalibrationError(CitebotError):
    """The calibration file is missing or not what this citebot reads."""


@dataclass(frozen=True)
class Curve:
    """P(the first quote answers) = 1 / (1 + exp(-(slope * support + intercept)))."""

    slope: float
    intercept: float

    def probability(self, support: float) -> float:
        z = self.slope * support + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class Calibration:
    """The curve for answers the reader read (`reader`) and for the reader off
    (`features`), and `record`: how they were fitted and what they measured."""

    reader: Curve
    features: Curve
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    def curve(self, read: bool) -> Curve:
        return self.reader if read else self.features

    def probability(self, support: float, read: bool) -> float:
        return self.curve(read).probability(support)

    def threshold(self, read: bool) -> float:
        """The default answer.min_confidence: the probability of SUPPORT_THRESHOLD."""
        return self.probability(SUPPORT_THRESHOLD, read)

    def to_json(self) -> dict[str, Any]:
        curves = {
            name: {"slope": round(c.slope, 6), "intercept": round(c.intercept, 6)}
            for name, c in zip(CURVES, (self.reader, self.features), strict=True)
        }
        return curves | {"record": self.record}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")


def load_calibration(path: Path = BUNDLED_CALIBRATION) -> Calibration:
    """The calibration in `path` (read once a process). Raises CalibrationError naming
    the file and what to do when it is missing or malformed."""
    return _load(str(path))


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Calibration:
    fix = "reinstall citebot, or run `citebot calibrate` to make it again"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        curves = [Curve(float(data[k]["slope"]), float(data[k]["intercept"])) for k in CURVES]
        record = dict(data.get("record", {}))
    except FileNotFoundError:
        raise CalibrationError(f"the confidence calibration {path} is missing: {fix}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CalibrationError(
            f"the confidence calibration {path} cannot be read ({error}): {fix}"
        ) from None
    if not all(c.slope > 0 for c in curves):
        raise CalibrationError(
            f"the confidence calibration {path} does not rise with the support: {fix}"
        )
    return Calibration(*curves, record=record)
