"""Follow-ups derived from SQuAD, to measure what a thread's context adds
(bot/answering/context.py).

A pair is two questions about one paragraph: the first names a subject ("When was the
University of Chicago founded?"), the follow-up is another question of the paragraph
with that subject replaced by a pronoun ("Who founded it?"), as people ask in a thread.
Only follow-ups the rewrite really left without the subject's words are kept.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.answering.answerer import Answerer
from bot.answering.answers import Answer
from bot.answering.context import QuestionContext
from bot.evaluation.metrics import QuestionResult
from bot.evaluation.readers import EvalQuestion, EvalSet
from bot.evaluation.runner import Tick, ask_one, warm_up

# The pronoun's forms: as a subject, as an object, as a possessive.
PRONOUNS = {
    "it": ("it", "it", "its"),
    "they": ("they", "them", "their"),
    "he": ("he", "him", "his"),
    "she": ("she", "her", "her"),
}
AUXILIARIES = frozenset(
    "is was are were be been being am do does did has have had can could will would "
    "should shall may might must".split()
)
# After these the subject is the verb's subject and a bare verb follows ("did X invent").
DO_MODALS = frozenset("do does did can could will would should shall may might must".split())
PREPOSITIONS = frozenset(
    "of in on at to for with by from about during after before into onto over under "
    "between among within without against through across toward towards upon since than "
    "like as near around throughout beyond behind beside besides via per".split()
)
CONJUNCTIONS = frozenset("and or but nor that when while because if".split())
WH_ADVERBS = frozenset("who whom when where why".split())
# Words inside a name ("University of Chicago", "Newcastle upon Tyne").
CONNECTORS = frozenset("of and upon de du la".split())
# Capitalised at the start of a question, but never part of its subject.
FUNCTION_WORDS = (
    AUXILIARIES
    | PREPOSITIONS
    | CONJUNCTIONS
    | WH_ADVERBS
    | frozenset(
        "what which whose how the a an this that these those its their his her there it "
        "they he she other another some any many much most all each every no not name "
        "according".split()
    )
)
# "What kind of X": X names a kind, not the subject.
CLASSIFIERS = frozenset("kind kinds type types sort sorts form forms class variety".split())
WORD = re.compile(r"\w+(?:[-.&'’]\w+)*(?:['’])?")


@dataclass(frozen=True)
class FollowUp:
    """`follow_up` asked after `first` about the same paragraph; `written` is how SQuAD
    wrote it, `subject` the words its pronoun replaced."""

    first: EvalQuestion
    follow_up: EvalQuestion
    written: str
    subject: str


@dataclass(frozen=True)
class FollowUpResults:
    """Per pair: the first question; the follow-up as SQuAD wrote it (its subject named);
    the rewritten follow-up in the first one's thread; and alone."""

    first: list[QuestionResult]
    written: list[QuestionResult]
    in_thread: list[QuestionResult]
    alone: list[QuestionResult]


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    base: str  # without a possessive 's or '
    possessive: bool


def ask_follow_ups(
    answerer: Answerer, pairs: Sequence[FollowUp], progress: Tick | None = None
) -> FollowUpResults:
    """Asks each pair's first question, then its follow-up in that thread and alone (and
    as SQuAD wrote it, for the ceiling)."""
    warm_up(answerer)
    results = FollowUpResults([], [], [], [])
    for pair in pairs:
        answer, first = ask_one(answerer, pair.first)
        results.first.append(first)
        context = thread_context(pair.first.question, answer)
        results.in_thread.append(ask_one(answerer, pair.follow_up, context)[1])
        results.alone.append(ask_one(answerer, pair.follow_up)[1])
        written = replace(pair.follow_up, question=pair.written)
        results.written.append(ask_one(answerer, written)[1])
        if progress:
            progress(1)
    return results


def thread_context(question: str, answer: Answer) -> QuestionContext:
    """What a Slack thread gives the question after its first answer (the listeners'
    `answer` in bot/slack/listeners/questions.py): the question asked, the articles it cited."""
    return QuestionContext(
        earlier_questions=(question,),
        cited_articles=frozenset(c.article_id for c in answer.citations),
    )


def follow_up_pairs(eval_set: EvalSet, seed: int, limit: int | None = None) -> list[FollowUp]:
    """At most one pair per paragraph, in paragraph order: its questions in a seeded order,
    the first pair (first, follow-up) whose follow-up can be rewritten with a subject the
    first question names. `limit`: that many of them, drawn by `seed`."""
    titles = {a.id: a.title for a in eval_set.articles}
    texts = {a.id: a.text for a in eval_set.articles}
    paragraphs: dict[tuple[str, int, int], list[EvalQuestion]] = {}
    for question in eval_set.questions:
        if question.gold_spans and len(question.gold_spans) == 1:
            paragraphs.setdefault(question.gold_spans[0], []).append(question)
    rng = random.Random(f"{seed}:follow-ups")
    pairs = []
    for (article_id, start, end), questions in sorted(paragraphs.items()):
        order = list(questions)
        rng.shuffle(order)
        paragraph = texts[article_id][start:end]
        pairs += _first_pair(order, titles[article_id], paragraph)[:1]
    if limit is None or limit >= len(pairs):
        return pairs
    chosen = random.Random(f"{seed}:follow-up-limit").sample(range(len(pairs)), limit)
    return [pairs[i] for i in sorted(chosen)]


def _first_pair(questions: Sequence[EvalQuestion], title: str, paragraph: str) -> list[FollowUp]:
    for first in questions:
        for second in questions:
            if second.id == first.id:
                continue
            rewrite = pronoun_rewrite(second.question, first.question, title, paragraph)
            if rewrite is not None:
                text, subject = rewrite
                follow_up = replace(second, id=f"{second.id}:follow-up", question=text)
                return [FollowUp(first, follow_up, second.question, subject)]
    return []


def pronoun_rewrite(
    question: str, first: str, title: str, paragraph: str = ""
) -> tuple[str, str] | None:
    """`question` with its subject replaced by a pronoun, and the words replaced; None
    when it has no subject named in `first` (or the title) that a pronoun can stand for,
    or when a word of the subject would be left.

    The subject is a run of capitalised words, numbers and the title's words ("the
    Amazon rainforest", "Newcastle upon Tyne"), its content words all in `first` or the
    title and one at least in `first`, in a place a pronoun fits: after an auxiliary, a
    preposition or at the start, and before a verb, a preposition or the end. "they" for
    a plural, "he" / "she" for a name `paragraph` refers to so, else "it".
    """
    tokens = _tokens(question)
    first_words = _content_words(first)
    title_words = _content_words(title)
    candidates = []
    for start, stop in _runs(tokens, title_words, paragraph):
        words = _content_words(question[tokens[start].start : tokens[stop - 1].end])
        if not words & first_words or not words <= first_words | title_words:
            continue
        # A name, not only numbers; and no year ("July 1973" is a time, not a subject).
        if not any(w.isalpha() and len(w) > 2 for w in words):
            continue
        if any(w.isdigit() and len(w) == 4 for w in words):
            continue
        placed = _placed(tokens, start, stop, question, paragraph)
        if placed is not None:
            candidates.append((bool(words & title_words), stop - start, start, stop, placed))
    if not candidates:
        return None
    *_, start, stop, (begin, prev) = max(candidates)
    subject_text = question[tokens[begin].start : tokens[stop - 1].end]
    name = question[tokens[start].start : tokens[stop - 1].end]
    pronoun = _pronoun(tokens, start, stop, question, begin < start, f"{title}. {paragraph}")
    subject_form, object_form, possessive_form = PRONOUNS[pronoun]
    last = tokens[stop - 1]
    if last.possessive:
        word = possessive_form
    elif prev is not None and (prev in PREPOSITIONS or prev.endswith("ed")):
        word = object_form
    else:
        word = subject_form
    if begin == 0:
        word = word[0].upper() + word[1:]
    rewritten = question[: tokens[begin].start] + word + question[last.end :]
    removed = _content_words(name)
    if removed & title_words:
        removed |= title_words
    if removed & _content_words(rewritten):
        return None
    return " ".join(rewritten.split()), subject_text


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for match in WORD.finditer(text):
        word = match.group()
        possessive = word.endswith(("'s", "’s", "'", "’"))
        base = re.sub(r"(['’]s?)$", "", word)
        tokens.append(_Token(match.start(), match.end(), base, possessive))
    return tokens


def _runs(tokens: Sequence[_Token], title_words: set[str], paragraph: str) -> list[tuple[int, int]]:
    """[start, stop) of each maximal run of name-like tokens; connectors may join two.
    The question's first word counts as capitalised when the paragraph writes it so."""

    def name_like(i: int) -> bool:
        base = tokens[i].base
        if base.casefold() in FUNCTION_WORDS:
            return False
        if _stem(base) in title_words or base.isdigit():
            return True
        return base[0].isupper() and (i > 0 or _says(paragraph, base))

    runs, i = [], 0
    while i < len(tokens):
        if not name_like(i):
            i += 1
            continue
        stop = i + 1
        while stop < len(tokens) and not tokens[stop - 1].possessive:
            if name_like(stop):
                stop += 1
            elif (
                tokens[stop].base.casefold() in CONNECTORS
                and stop + 1 < len(tokens)
                and tokens[stop + 1].base[:1].isupper()
                and tokens[stop + 1].base.casefold() not in FUNCTION_WORDS
            ):
                stop += 2
            else:
                break
        runs.append((i, stop))
        i = stop
    return runs


def _placed(
    tokens: Sequence[_Token], start: int, stop: int, question: str, paragraph: str
) -> tuple[int, str | None] | None:
    """Where the pronoun would begin (a "the" before the name goes with it) and the word
    before it; None when a pronoun doesn't fit there ("what ctenophore", "the Rhine
    delta", "the first Huguenot colonists")."""
    begin = start - 1 if start > 0 and tokens[start - 1].base.casefold() == "the" else start
    prev = tokens[begin - 1].base.casefold() if begin > 0 else None
    if prev is not None and prev not in AUXILIARIES | PREPOSITIONS | CONJUNCTIONS | WH_ADVERBS:
        if not prev.endswith("ed"):  # a verb's object ("who founded X?")
            return None
    if prev == "of" and begin > 1 and tokens[begin - 2].base.casefold() in CLASSIFIERS:
        return None
    if tokens[stop - 1].possessive or stop == len(tokens):
        return begin, prev
    between = question[tokens[stop - 1].end : tokens[stop].start]
    if between.strip() and between.strip() not in ("-",):  # punctuation ends the subject
        return begin, prev
    following = tokens[stop].base.casefold()
    if following in AUXILIARIES | PREPOSITIONS | CONJUNCTIONS or following.endswith("ed"):
        return begin, prev
    verb = tokens[stop].base
    name_goes_on = f"{tokens[stop - 1].base} {verb}".casefold() in paragraph.casefold()
    if prev in DO_MODALS and verb.islower() and _stem(verb) == verb and not name_goes_on:
        return begin, prev  # "did X invent", not "did the Germanic tribes", "did X viride"
    return None


def _pronoun(
    tokens: Sequence[_Token],
    start: int,
    stop: int,
    question: str,
    after_the: bool,
    paragraph: str,
) -> str:
    name = question[tokens[start].start : tokens[stop - 1].end]
    head = tokens[stop - 1].base
    following = tokens[stop].base.casefold() if stop < len(tokens) else ""
    if start > 0 and tokens[start - 1 - after_the].base.casefold() in DO_MODALS:
        following = ""  # "does X have": the verb says nothing of the number
    if following in ("is", "was", "has", "does"):
        plural = False
    elif following in ("are", "were", "have", "do"):
        plural = True
    else:  # "Davies" is one man, "Normans" many: the title or paragraph says "Norman"
        plural = " and " in name or (
            len(head) > 3
            and head.endswith("s")
            and not head.endswith(("ss", "us", "is", "ics"))
            and (after_the or not head[0].isupper() or _says(paragraph, head[:-1]))
        )
    if plural:
        return "they"
    if after_the or not head[:1].isupper():
        return "it"
    # Is the name a person's? The paragraph's pronouns just after its first mention.
    mention = re.search(rf"\b{re.escape(head)}\b", paragraph)
    nearby = paragraph[mention.start() : mention.start() + 300] if mention else ""
    counts = {
        pronoun: len(re.findall(pattern, nearby, flags=re.IGNORECASE))
        for pronoun, pattern in (
            ("he", r"\b(?:he|him|his)\b"),
            ("she", r"\b(?:she|her|hers)\b"),
            ("it", r"\b(?:it|its)\b"),
        )
    }
    person = max(("he", "she"), key=lambda p: counts[p])
    return person if counts[person] >= 1 and counts[person] > counts["it"] else "it"


def _says(paragraph: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", paragraph) is not None


def _content_words(text: str) -> set[str]:
    return {
        _stem(t.base)
        for t in _tokens(text)
        if t.base.casefold() not in FUNCTION_WORDS and (len(t.base) > 2 or t.base.isdigit())
    }


def _stem(word: str) -> str:
    """Case and a plural's s aside ("Normans" and "Norman" are one word here)."""
    word = word.casefold()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
