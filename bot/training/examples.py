"""Training examples for the sentence reader, drawn from what the answerer itself sees.

Each question of the training split is ranked by the feature scorer (the reader off), as
`citebot ask` would; its example is one answering sentence of its gold paragraph and, as
negatives, the best-ranked sentences that do not hold the answer (the hard cases the
reader must learn) plus a few drawn at random from the rest of the candidates.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass

from bot.answering import Answerer, ScoredSentence, reader_input
from bot.evaluation.readers import EvalQuestion

# Hard negatives: the best-ranked candidates without the answer.
HARD_NEGATIVES = 4
# And this many drawn at random from the other candidates.
RANDOM_NEGATIVES = 1


@dataclass(frozen=True)
class Example:
    """A question, the text of one sentence that answers it, and texts that do not."""

    id: str
    question: str
    positive: str
    negatives: list[str]

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def texts(self) -> list[str]:
        return [self.positive, *self.negatives]


def examples_for(
    answerer: Answerer,
    questions: Iterable[EvalQuestion],
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Example]:
    """One example per question whose answering sentence is among its candidates."""
    rng = random.Random(f"{seed}:negatives")
    for question in questions:
        ranking = answerer.rank(question.question)
        example = _example(question, ranking.sentences, rng)
        if example:
            yield example
        if progress:
            progress(1)


def _example(
    question: EvalQuestion, sentences: Sequence[ScoredSentence], rng: random.Random
) -> Example | None:
    answers = [a.casefold() for a in question.answers]
    holds = [any(a in s.text.casefold() for a in answers) for s in sentences]
    positives = [s for s, h in zip(sentences, holds, strict=True) if h and _in_gold(s, question)]
    if not positives:
        return None
    # A sentence with the answer's words outside the gold paragraph may answer too: it is
    # neither a positive nor a negative.
    negatives = [s for s, h in zip(sentences, holds, strict=True) if not h]
    chosen = negatives[:HARD_NEGATIVES]
    rest = negatives[HARD_NEGATIVES:]
    chosen += rng.sample(rest, min(RANDOM_NEGATIVES, len(rest)))
    if not chosen:
        return None
    return Example(
        id=question.id,
        question=question.question,
        positive=reader_input(positives[0]),
        negatives=[reader_input(s) for s in chosen],
    )


def _in_gold(sentence: ScoredSentence, question: EvalQuestion) -> bool:
    """The sentence lies in one of the question's gold paragraphs."""
    meta = sentence.passage.metadata
    start = meta.start + sentence.start
    return any(
        meta.article_id == article and begin <= start < end
        for article, begin, end in question.gold_spans or ()
    )
