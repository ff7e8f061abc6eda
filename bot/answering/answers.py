"""The answer to one question: quoted sentences with their articles, or the closest passages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.answering.context import QuestionContext


@dataclass(frozen=True)
class Outlet:
    """Another article that has the same sentence (a copy of the same wire story)."""

    title: str
    source: str
    url: str | None
    published: str | None


@dataclass(frozen=True)
class Citation:
    """One sentence quoted verbatim from an article.

    `start`/`end` are its character offsets in the article's stored text. `also_in` lists
    the other articles that have the same sentence, quoted once.
    """

    text: str
    title: str
    source: str
    url: str | None
    published: str | None
    score: float
    article_id: str
    start: int
    end: int
    also_in: tuple[Outlet, ...] = ()

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> Citation:
        """The inverse of `dataclasses.asdict`."""
        outlets = tuple(Outlet(**o) for o in fields.get("also_in", ()))
        return cls(**(fields | {"also_in": outlets}))


@dataclass(frozen=True)
class PassageHit:
    """A retrieved passage, shown when nothing is good enough to cite."""

    text: str
    title: str
    source: str
    url: str | None
    published: str | None
    score: float


@dataclass(frozen=True)
class ModelReport:
    """What the optional LLM did for an answer (bot/answering/checked_llm.py): the claims
    of its reply that the quotes it cited did not support, each with the reason, or why it
    gave nothing."""

    model: str
    left_out: list[str] = field(default_factory=list)
    failure: str | None = None


# An unanswered question all of whose words are too common to search by ("what is the").
NO_WORDS_HINT = (
    'Every word of the question is too common to search by ("what", "is", "the"): name '
    "the person, place or thing you are asking about."
)


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[PassageHit] = field(default_factory=list)
    # The probability that the first quote answers (bot/answering/calibration.py); the
    # answer is given when it reaches answer.min_confidence.
    confidence: float = 0.0
    # With an LLM configured: its answer in a few sentences, each ending with the numbers of
    # the citations that support it ("... [1]"), every claim checked against them.
    summary: str | None = None
    model: ModelReport | None = None
    # Why an unanswered question gave nothing to search by, when citebot can tell.
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        keys = ("text", "title", "source", "published", "score")
        return (
            {
                "question": self.question,
                "answered": self.answered,
                "confidence": round(self.confidence, 4),
                "citations": [
                    {k: asdict(c)[k] for k in keys}
                    | {"url": c.url, "also_in": [asdict(o) for o in c.also_in]}
                    for c in self.citations
                ],
                "passages": [asdict(p) for p in self.passages],
            }
            | ({"summary": self.summary, "model": asdict(self.model)} if self.model else {})
            | ({"hint": self.hint} if self.hint else {})
        )


class QuestionAnswerer(Protocol):
    """What answers a question: the extractive `Answerer` (bot/answering/answerer.py) and
    the checked LLM answer (bot/answering/checked_llm.py). The answer's `question` is the
    one answered: an LLM may rewrite a thread's follow-up into a question of its own."""

    def answer(
        self,
        question: str,
        asked_on: date | None = None,
        context: QuestionContext | None = None,
    ) -> Answer:
        """The answer to `question` as asked on `asked_on` (default today), in `context`."""
        ...

    def warm_up(self) -> None:
        """Loads the models and the passages now, before the first question."""
        ...
