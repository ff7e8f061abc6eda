"""Unanswerable twins: answerable training questions changed the way SQuAD 2.0's writers
made theirs, so that the paragraph no longer answers them.

SQuAD 2.0's unanswerable questions were written against a paragraph so that a plausible
answer is in it but the question asks about something else: a name or number swapped
for another ("Which stadium hosted Super Bowl 40?" of the Super Bowl 50 article), an
antonym ("the last" for "the first"), a negation. The training data has 2,647 of those,
a third of them for the reader; every answerable question of the other sets can give
one more. A twin is asked of the same paragraph, and its original answering sentence,
which holds every word of the twin but the changed one, is its hardest negative: the
reader must learn that "nearly every word" is not "answers".

Each twin is a `TrainQuestion` with no answering sentence and the id of its original
plus ":twin"; its article and role are its original's. Twins are made only for the
questions a reader trains on (never for the combiner's or dev's measurements).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import replace

from bot.training.datasets import TrainQuestion

TWIN_SUFFIX = ":twin"

# Pairs of words whose swap reverses what a question asks ("the first" for "the last").
ANTONYMS = {
    "first": "last",
    "largest": "smallest",
    "biggest": "smallest",
    "highest": "lowest",
    "most": "least",
    "earliest": "latest",
    "oldest": "youngest",
    "before": "after",
    "increase": "decrease",
    "increased": "decreased",
    "won": "lost",
    "win": "lose",
    "north": "south",
    "east": "west",
    "northern": "southern",
    "eastern": "western",
    "older": "younger",
    "larger": "smaller",
    "higher": "lower",
    "longest": "shortest",
    "best": "worst",
    "major": "minor",
    "maximum": "minimum",
    "above": "below",
    "inside": "outside",
    "early": "late",
    "start": "end",
    "began": "ended",
    "opened": "closed",
    "allowed": "banned",
    "accepted": "rejected",
    "supported": "opposed",
    "successful": "unsuccessful",
    "private": "public",
    "domestic": "foreign",
    "modern": "ancient",
}
ANTONYMS |= {b: a for a, b in list(ANTONYMS.items())}

# Auxiliaries and their negations ("Where was ..." -> "Where wasn't ...").
NEGATIONS = {
    "is": "isn't",
    "was": "wasn't",
    "are": "aren't",
    "were": "weren't",
    "did": "didn't",
    "does": "doesn't",
    "do": "don't",
    "can": "can't",
    "could": "couldn't",
    "has": "hasn't",
    "had": "hadn't",
    "have": "haven't",
    "would": "wouldn't",
    "will": "won't",
}
# Of the questions no swap applies to, the share negated instead.
NEGATION_SHARE = 0.3
_NEGATABLE = re.compile(r"\b(" + "|".join(NEGATIONS) + r")\b")
_WORD = re.compile(r"(?<![\w'’])[a-z]+(?![\w'’])")
_NUMBER = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")
# A run of capitalised words (a name), not the question's first word.
_NAME = re.compile(r"(?<=[\w,] )(?:[A-Z][\w'’.-]*)(?: (?:of |the |de |von )?[A-Z][\w'’-]*)*")
_QUESTION_WORDS = {"What", "Who", "When", "Where", "Which", "Why", "How", "In", "The", "A", "I"}


def unanswerable_twins(
    questions: Sequence[TrainQuestion], share: float, seed: int
) -> list[TrainQuestion]:
    """A twin for about `share` of the answerable `questions` (those a change applies
    to), drawn by `seed`."""
    rng = random.Random(f"{seed}:twins")
    twins = []
    for question in questions:
        if not question.answerable or rng.random() >= share:
            continue
        changed = twin_question(question, rng)
        if changed:
            twins.append(
                replace(
                    question,
                    id=question.id + TWIN_SUFFIX,
                    question=changed,
                    answers=frozenset(),
                    answer_text="",
                )
            )
    return twins


def twin_question(question: TrainQuestion, rng: random.Random) -> str | None:
    """The question with one change that its paragraph does not answer, or None: a name
    or number swapped for another of the paragraph's (one its answering sentences and
    the sentences before them lack), else an antonym, else (for NEGATION_SHARE of
    them) a negation. A change is not taken where a sentence of the paragraph holds the
    new word and most of the rest of the question: that sentence may answer the twin
    ("When did the war end?" of "The war began in 1939 and ended in 1945.")."""
    answering = " ".join(
        question.sentences[j] for i in question.answers for j in (i - 1, i) if j >= 0
    )
    others = [s for i, s in enumerate(question.sentences) if i not in question.answers]
    for change in (_swap_number, _swap_name, _antonym):
        changed = change(question.question, answering, others, rng)
        if changed and not _answered_in(changed[0], changed[1], question.sentences):
            return changed[0]
    # Negations are a tenth of SQuAD 2.0's kinds: without this draw they would be
    # most of the twins of lower-case search queries (QED), which name nothing.
    if rng.random() < NEGATION_SHARE:
        return _negation(question.question, answering, others, rng)
    return None


# A sentence holding a twin's new word and more than this share of its other words may
# answer it ("The war began in 1939 and ended in 1945." for "When did the war end?").
ANSWERED_SHARE = 0.5
_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or "
    "that the their this to was were what when where which who whom whose why with".split()
)


def _words(text: str) -> set[str]:
    """The words of `text`, lower-cased, but the commonest."""
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if w not in _STOPWORDS}


def _answered_in(twin: str, new: str, sentences: Sequence[str]) -> bool:
    """Whether a sentence holds the twin's `new` word (or a longer form of it: "ended"
    for "end") and more than ANSWERED_SHARE of its other words (by their first five
    letters)."""
    changed = _words(new)
    rest = {w[:5] for w in _words(twin) - changed}
    for sentence in sentences:
        words = _words(sentence)
        if not all(any(w.startswith(c) for w in words) for c in changed):
            continue
        if len(rest & {w[:5] for w in words}) > ANSWERED_SHARE * len(rest):
            return True
    return False


def _swap_number(text: str, answering: str, others: Sequence[str], rng) -> tuple[str, str] | None:
    asked = list(_NUMBER.finditer(text))
    if not asked:
        return None
    target = rng.choice(asked)
    # Another of the paragraph's numbers of the same shape (a year for a year).
    shape = re.sub(r"\d", "0", target.group())
    found = {m.group() for s in others for m in _NUMBER.finditer(s)}
    pool = sorted(
        n for n in found if re.sub(r"\d", "0", n) == shape and n not in answering and n not in text
    )
    if pool:
        new = rng.choice(pool)
    else:
        value = target.group().replace(",", "")
        if not value.isdigit():
            return None
        number = int(value)
        spread = 15 if 1000 <= number <= 2100 else max(2, number // 10)  # a year: near it
        new = str(number + rng.choice([-1, 1]) * rng.randint(1, spread))
        if new in answering or new == value or int(new) < 1:
            return None
    return text[: target.start()] + new + text[target.end() :], new


def _names(text: str) -> list[re.Match]:
    return [m for m in _NAME.finditer(text) if m.group() not in _QUESTION_WORDS]


def _swap_name(text: str, answering: str, others: Sequence[str], rng) -> tuple[str, str] | None:
    asked = _names(text)
    if not asked:
        return None
    target = rng.choice(asked)
    # A possessive stays one: "Obama's first book" becomes "Biden's first book".
    name = _without_possessive(target.group())
    known = answering.casefold() + " " + text.casefold()
    pool = sorted(
        {_without_possessive(m.group()) for s in others for m in _names(s)}
        - {_without_possessive(m.group()) for m in asked}
    )
    pool = [n for n in pool if n.casefold() not in known and len(n) > 2]
    if not pool:
        return None
    new = rng.choice(pool)
    end = target.start() + len(name)
    return text[: target.start()] + new + text[end:], new


def _without_possessive(name: str) -> str:
    """The name without a possessive "'s" or a sentence's full stop ("U.S." keeps its)."""
    name = name.removesuffix("'s").removesuffix("’s")
    return name[:-1] if name.endswith(".") and name.count(".") == 1 else name


def _antonym(text: str, answering: str, others: Sequence[str], rng) -> tuple[str, str] | None:
    # Whole words only: not the "won" of "won't".
    words = [m for m in _WORD.finditer(text) if m.group() in ANTONYMS]
    if not words:
        return None
    target = rng.choice(words)
    new = ANTONYMS[target.group()]
    return text[: target.start()] + new + text[target.end() :], new


def _negation(text: str, answering: str, others: Sequence[str], rng) -> str | None:
    match = _NEGATABLE.search(text)
    if not match or re.search(r"\b(?:not|never)\b|n['’]t\b", text):
        return None
    return text[: match.start()] + NEGATIONS[match.group()] + text[match.end() :]
