"""Text helpers shared by indexing and answering: sentence spans and keyword terms."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nltk and llama-index load when text is first split or stemmed, not
    # for commands that never do (`citebot status`): seconds (docs/BENCHMARKS.md)
    from nltk.stem import PorterStemmer
    from nltk.tokenize import PunktTokenizer

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence of `text`, whitespace trimmed.

    Paragraphs (blank-line separated) never share a sentence, so a headline or a list
    item without a full stop is a sentence of its own. No sentence is longer than
    `MAX_SENTENCE_CHARS`: text without sentence breaks is cut at word boundaries.
    """
    tokenizer = _sentence_tokenizer()
    spans: list[tuple[int, int]] = []
    for para_start, para_end in _paragraphs(text):
        paragraph = text[para_start:para_end]
        pieces = [s for s in tokenizer.span_tokenize(paragraph) if paragraph[s[0] : s[1]].strip()]
        for start, end in _rejoined(paragraph, pieces):
            spans += _bounded(text, para_start + start, para_start + end)
    return spans


# A quote and a passage's sentence are at most this long (3 of the 10,375 sentences of
# SQuAD v1.1 dev are longer): a line with no sentence breaks is not one quote of 1 MB.
MAX_SENTENCE_CHARS = 1000


def _bounded(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The sentence text[start:end] in pieces of at most MAX_SENTENCE_CHARS characters,
    each cut after the last whitespace that fits (within a word only if none does)."""
    pieces = []
    while end - start > MAX_SENTENCE_CHARS:
        limit = start + MAX_SENTENCE_CHARS
        cut = max(text.rfind(space, start + 1, limit + 1) for space in " \t\n")
        cut = cut if cut > start else limit
        pieces += _trimmed(text, start, cut)
        start = cut
        while start < end and text[start].isspace():
            start += 1
    return pieces + list(_trimmed(text, start, end))


# Abbreviations that end no sentence but that the trained model lacks: Punkt splits
# "born on 10 July [O.S. 28 June]" and "(e.g. apples)" after them. Punkt still splits
# after one when the next word is a frequent sentence starter ("The").
_EXTRA_ABBREVIATIONS = (
    "e.g",
    "i.e",
    "o.s",
    "n.s",
    "cf",
    "viz",
    "vs",
    "approx",
    "ca",
    "fig",
    "figs",
    "vol",
    "pp",
    "nos",
    "op",
    "al",
)
# "No." ends a sentence ("No. That is wrong.") unless a number follows ("No. 5").
_NUMBER_SIGN = re.compile(r"\bNos?\.$")
# A sentence may hold at most this many characters of a bracketed note that a split cut.
_MAX_JOINED_CHARS = 800


def _rejoined(paragraph: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Joins a piece to the next while it leaves a bracket open that the next one closes
    ("(see Fig. 3)", "[O.S. 28 June]"), or ends in "No." before a number ("No. 5")."""
    joined: list[tuple[int, int]] = []
    for start, end in pieces:
        if joined and _continues(paragraph, *joined[-1], start, end):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def _continues(paragraph: str, start: int, end: int, next_start: int, next_end: int) -> bool:
    if next_end - start > _MAX_JOINED_CHARS:
        return False
    piece = paragraph[start:end]
    if _NUMBER_SIGN.search(piece) and paragraph[next_start].isdigit():
        return True
    following = paragraph[next_start:next_end]
    return any(
        piece.count(opening) > piece.count(closing) and closing in following
        for opening, closing in ("()", "[]")
    )


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        yield from _trimmed(text, start, match.start())
        start = match.end()
    yield from _trimmed(text, start, len(text))


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield start, end


@lru_cache(maxsize=1)
def _sentence_tokenizer() -> PunktTokenizer:
    # The trained English model knows abbreviations ("U.N.", "Mr.") that the untrained
    # tokenizer splits at; llama-index ships its data, so this works offline.
    from llama_index.core.utils import globals_helper
    from nltk.tokenize import PunktTokenizer

    globals_helper.wait_for_nltk_check()
    tokenizer = PunktTokenizer("english")
    tokenizer._params.abbrev_types.update(_EXTRA_ABBREVIATIONS)
    return tokenizer


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from llama_index.core.utils import globals_helper

    return frozenset(globals_helper.stopwords)


@lru_cache(maxsize=1)
def _stemmer() -> PorterStemmer:
    from nltk.stem import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stem(word)


def terms(text: str) -> list[str]:
    """Lower-cased, stemmed words of `text` without stopwords: the keyword index's terms."""
    stop = _stopwords()
    words = (w.lower().replace("’", "'") for w in _WORD.findall(text))
    return [_stem(w) for w in words if w not in stop]


# Stems of words that say a claim is untrue, so "who denied ..." finds "... is a lie".
_SYNONYMS = {
    "deni": frozenset(
        {
            "deni",
            "denial",
            "lie",
            "fals",
            "untru",
            "refut",
            "reject",
            "dismiss",
            "baseless",
            "fabric",
            "hoax",
        }
    ),
}
PREFIX_MATCH_CREDIT = 0.8


class TermMatcher:
    """Matches a question's stemmed words against sets of stemmed words drawn from one
    vocabulary (the candidate sentences of an answer). Each question word's close
    variants are found in the vocabulary once, so a match is two set intersections."""

    def __init__(self, question_terms: Iterable[str], vocabulary: Iterable[str]) -> None:
        vocabulary = set(vocabulary)
        self._exact = {t: {t} | _SYNONYMS.get(t, frozenset()) for t in question_terms}
        self._close = {
            t: frozenset(w for w in vocabulary if _close_variant(t, w)) for t in self._exact
        }

    def match(self, term: str, words: set[str]) -> float:
        """How well the question word `term` is matched by `words` (of the vocabulary):
        1 for the word or a listed synonym, 0.8 for a close variant sharing its start
        ("syria" and "syrian"), else 0."""
        if not self._exact[term].isdisjoint(words):
            return 1.0
        if not self._close[term].isdisjoint(words):
            return PREFIX_MATCH_CREDIT
        return 0.0


def _close_variant(term: str, word: str) -> bool:
    """`word` shares its start with `term` and is at most 3 letters longer or shorter
    (both at least 4 letters long)."""
    return (
        len(term) >= 4
        and len(word) >= 4
        and abs(len(word) - len(term)) <= 3
        and (word.startswith(term) or term.startswith(word))
    )
