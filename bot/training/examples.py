"""Training examples for the sentence reader, drawn from what the answerer itself sees.

Each question of the training split is ranked by the feature scorer (the reader off), as
`citebot ask` would; its example is one answering sentence of its gold paragraph and, as
negatives, the best-ranked sentences that do not hold the answer (the hard cases the
reader must learn) plus a few drawn at random from the rest of the candidates.

With premise negatives (`premises=True`), two harder ones are made from the gold
paragraph, as news quiz questions need: the answering sentence with its answer replaced
by a stand-in ("Dartmouth College announced ..." becomes "The school announced ...":
every word of the question, and no answer), and, for a share of the questions, a
sentence of the paragraph put before the question as its premise, the way a quiz asks
("A storm forced thousands from their homes this week ... Where did it strike?"), so
that the sentence restating the premise is the negative it is.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass

from bot.answering.answerer import Answerer, ScoredSentence, reader_input
from bot.answering.reader import reader_text
from bot.evaluation.readers import EvalQuestion
from bot.training.datasets import TrainQuestion
from index.text import terms

# Hard negatives: the best-ranked candidates without the answer.
HARD_NEGATIVES = 4
# And this many drawn at random from the other candidates.
RANDOM_NEGATIVES = 1
# Share of the questions asked with a premise (a sentence of their gold paragraph) first.
PREMISE_SHARE = 1 / 3
# Share of the training sets' answerable questions asked again without their answering
# sentence among the candidates: "none of these" learned on the same paragraphs.
REMOVED_SHARE = 0.25


@dataclass(frozen=True)
class Example:
    """A question, the text of one sentence that answers it (None: none of the
    candidates does), and texts that do not."""

    id: str
    question: str
    positive: str | None
    negatives: list[str]

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def texts(self) -> list[str]:
        return [self.positive, *self.negatives] if self.positive is not None else self.negatives


def examples_for(
    answerer: Answerer,
    questions: Iterable[EvalQuestion],
    seed: int,
    progress: Callable[[int], None] | None = None,
    premises: bool = False,
    premise_share: float = PREMISE_SHARE,
) -> Iterator[Example]:
    """One example per question whose answering sentence is among its candidates; with
    `premises`, `premise_share` of them asked after a premise (0: only answer-masked
    negatives are added)."""
    rng = random.Random(f"{seed}:negatives")
    # Their own generator: turning premises on leaves the other negatives as they were.
    premise_rng = random.Random(f"{seed}:premises")
    for question in questions:
        ranking = answerer.rank(question.question)
        example = _example(
            question, ranking.sentences, rng, premise_rng if premises else None, premise_share
        )
        if example:
            yield example
        if progress:
            progress(1)


def _example(
    question: EvalQuestion,
    sentences: Sequence[ScoredSentence],
    rng: random.Random,
    premise_rng: random.Random | None = None,
    premise_share: float = PREMISE_SHARE,
) -> Example | None:
    """The question's example; with `premise_rng`, with premise negatives too."""
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
    example = Example(
        id=question.id,
        question=question.question,
        positive=reader_input(positives[0]),
        negatives=[reader_input(s) for s in chosen],
    )
    if premise_rng is None:
        return example
    return _with_premises(example, question, positives[0], negatives, premise_rng, premise_share)


def _in_gold(sentence: ScoredSentence, question: EvalQuestion) -> bool:
    """The sentence lies in one of the question's gold paragraphs."""
    meta = sentence.passage.metadata
    start = meta.start + sentence.start
    return any(
        meta.article_id == article and begin <= start < end
        for article, begin, end in question.gold_spans or ()
    )


def _with_premises(
    example: Example,
    question: EvalQuestion,
    positive: ScoredSentence,
    without_answer: Sequence[ScoredSentence],
    rng: random.Random,
    share: float,
) -> Example:
    """`example` with its answer-masked `positive` as one more negative and, for `share`
    of the questions, a sentence of the gold paragraph (one of `without_answer`, so that
    the question does not give its answer away) put before the question."""
    negatives = list(example.negatives)
    masked = _masked(positive.text, question.question, question.answers)
    if masked:
        negatives.append(reader_input(positive, masked))
    asked = example.question
    premises = [s for s in without_answer if _in_gold(s, question) and s.text.strip()[-1:] in ".!"]
    if premises and rng.random() < share:
        premise = rng.choice(premises)
        asked = f"{premise.text.strip()} {question.question}"
        premise_input = reader_input(premise)
        if premise_input not in negatives:
            negatives.append(premise_input)
    return Example(example.id, asked, example.positive, negatives)


_AUXILIARIES = frozenset(
    "is was are were did does do has have had can could will would should may might "
    "of in on at to for by from with as".split()
)
_NUMBER_WORDS = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundreds?|thousands?|millions?|billions?|dozens?)\b",
    re.I,
)
_MONTHS = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december)\b",
    re.I,
)


def _masked(sentence: str, question: str, answers: Sequence[str]) -> str | None:
    """`sentence` with the first answer it holds replaced by a stand-in of the kind the
    question asks for; None when it holds none of them."""
    folded = sentence.casefold()
    for answer in answers:
        at = folded.find(answer.casefold())
        if at >= 0 and answer.strip():
            stand_in = _stand_in(question, answer)
            if re.search(r"\b(the|a|an) $", sentence[:at], re.I):
                # "the ABC Television Center" -> "the center", not "the the center".
                stand_in = stand_in.removeprefix("the ") if stand_in != "it" else "one"
            if at == 0:
                stand_in = stand_in[:1].upper() + stand_in[1:]
            return sentence[:at] + stand_in + sentence[at + len(answer) :]
    return None


def _stand_in(question: str, answer: str) -> str:
    """What a sentence that restates the question without answering it says in place of
    the answer: "the school" for "Which school ...", "that year" for a year."""
    asks = question.strip().casefold()
    if re.fullmatch(r"(1[5-9]|20)\d\d", answer.strip()):
        return "that year"
    if _MONTHS.search(answer):
        return "that day"
    if "%" in answer or "percent" in answer.casefold():
        return "a share"
    if "$" in answer or re.search(r"\b(dollars|pounds|euros)\b", answer, re.I):
        return "an undisclosed sum"
    if re.search(r"\d", answer) or _NUMBER_WORDS.search(answer):
        return "several"
    if asks.startswith(("who", "whom", "whose")):
        return "someone"
    if asks.startswith("where"):
        return "the area"
    if asks.startswith("when"):
        return "at the time"
    named = re.match(r"what (?:is|was) the name of (?:the |a |an )?([\w-]+)", asks)
    if named:
        return f"the {named.group(1)}"
    words = re.findall(r"[\w'-]+", asks)
    if words and words[0] in ("which", "what"):
        # The noun asked for: the last word before the verb ("Which Ivy League school
        # announced ..." -> "school"), found without a tagger: up to three words, ending
        # before an auxiliary, a preposition or a past tense.
        head = []
        for word in words[1:4]:
            if word in _AUXILIARIES or word.endswith("ed"):
                break
            if word.endswith("'s"):  # "Which animal's venom": the animal
                head.append(word[:-2])
                break
            head.append(word)
        if head:
            return f"the {head[-1]}"
    return "it"


def judge_examples(
    questions: Iterable[TrainQuestion], seed: int, removed_share: float = REMOVED_SHARE
) -> Iterator[Example]:
    """Examples from the training sets' questions (bot/training/datasets.py), each
    sentence read as the index would give it (with its title and the sentence before).

    An answerable question gives its first answering sentence and, as negatives, the
    paragraph's sentences without the answer that share most of its words, one more at
    random, and its answering sentence with the answer replaced by a stand-in; for
    `removed_share` of them, a second example without the answering sentence (nothing
    answers: the judge must say so). An unanswerable question gives only negatives."""
    rng = random.Random(f"{seed}:judge")
    for question in questions:
        inputs = [
            reader_text(s, question.sentences[i - 1] if i else "", question.title)
            for i, s in enumerate(question.sentences)
        ]
        asked = set(terms(question.question))
        others = sorted(
            (i for i in range(len(inputs)) if i not in question.answers),
            key=lambda i: (-len(asked & set(terms(question.sentences[i]))), i),
        )
        negatives = [inputs[i] for i in others[:HARD_NEGATIVES]]
        rest = others[HARD_NEGATIVES:]
        negatives += [inputs[i] for i in rng.sample(rest, min(RANDOM_NEGATIVES, len(rest)))]
        if not question.answerable:
            if negatives:
                yield Example(question.id, question.question, None, negatives)
            continue
        first = min(question.answers)
        masked = (
            _masked(question.sentences[first], question.question, [question.answer_text])
            if question.answer_text
            else None
        )
        if masked:
            previous = question.sentences[first - 1] if first else ""
            negatives.append(reader_text(masked, previous, question.title))
        if not negatives:
            continue
        yield Example(question.id, question.question, inputs[first], negatives)
        if rng.random() < removed_share:
            yield Example(f"{question.id}:removed", question.question, None, negatives)
