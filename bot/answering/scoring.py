"""The feature scorer: every sentence of the retrieved passages scored by how well it
answers the question, from what the index already has (no model run per question): its
meaning and its passage's (the stored vectors), the question's words it shares (weighted
by their rarity), the kind of thing asked for, and for news its date and headline. The
reader (bot/answering/reader.py) re-reads the best of them; answerer.py chooses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bot.answering.question_kinds import answer_kind, has_answer_kind
from index.retrieval import PublishedWindow, RetrievedPassage
from index.store.keyword import KeywordIndex
from index.text import TermMatcher, terms

# How a sentence's score mixes its evidence, each chosen on SQuAD dev and checked on the
# articles it was not chosen on (docs/EVALUATION.md, "Why the scorer's weights are what
# they are").
MEANING_WEIGHT = 0.7  # cosine of the question to the sentence, or to it with the one before
WORDS_WEIGHT = 0.7  # weighted share of the question's words the sentence has
PASSAGE_WEIGHT = 0.1  # cosine of the question to the whole passage
KIND_WEIGHT = 0.1  # the sentence has the kind of thing asked for (a name, a date, a number)
PHRASE_WEIGHT = 0.1  # share of the question's consecutive word pairs found consecutive
RECENT_WEIGHT = 0.35  # asked about recent news ("this week"), and of an article of those days
HEADLINE_WEIGHT = 0.2  # the (dated) headline's words the question lacks, that it has
# A question word found only in the sentence before (which "this" or "it" may refer to)
# or in the title counts for this much of a word found in the sentence itself.
PREVIOUS_SENTENCE_CREDIT = 0.5
TITLE_CREDIT = 0.3


@dataclass(frozen=True)
class ScoredSentence:
    passage: RetrievedPassage
    start: int
    end: int
    score: float  # what sentences are ranked by
    # How well the sentence answers the question, whatever its article's date or headline:
    # what the answer's confidence is calibrated from (bot/answering/calibration.py), the
    # same scale for news and for undated documents.
    support: float

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


def score_sentences(
    question: str,
    query: np.ndarray,
    passages: list[RetrievedPassage],
    keywords: KeywordIndex,
    when: PublishedWindow | None = None,
) -> list[ScoredSentence]:
    """Every sentence of `passages`, best first, scored by meaning and shared words."""
    candidates = [
        Candidate(passage, spans, vectors, i)
        for passage in passages
        for spans, vectors in [sentences_of(passage)]
        for i in range(len(spans))
    ]
    if not candidates:
        return []
    own = np.stack([c.vector for c in candidates]) @ query
    window = np.stack([c.window_vector for c in candidates]) @ query
    question_terms = terms(question)
    asked = set(question_terms)
    matcher = TermMatcher(
        asked, set().union(*(c.words | c.previous_words | c.title_words for c in candidates))
    )
    weights = _word_weights(asked, [c.words for c in candidates], keywords, matcher)
    total = sum(weights.values()) or 1.0
    kind = answer_kind(question)
    phrases = _word_pairs(question_terms)
    scored = []
    for candidate, meaning in zip(candidates, np.maximum(own, window), strict=True):
        words = sum(w * candidate.word_credit(t, matcher) for t, w in weights.items()) / total
        support = (
            MEANING_WEIGHT * float(meaning)
            + WORDS_WEIGHT * words
            + PASSAGE_WEIGHT * candidate.passage.dense
            + (KIND_WEIGHT if kind and has_answer_kind(kind, question, candidate.text) else 0)
            + (PHRASE_WEIGHT * len(phrases & candidate.pairs) / len(phrases) if phrases else 0)
        )
        score = (
            support
            + (RECENT_WEIGHT if when and when.is_recent(candidate.published) else 0)
            + HEADLINE_WEIGHT * candidate.headline_credit(asked, keywords)
        )
        scored.append(
            ScoredSentence(candidate.passage, candidate.start, candidate.end, score, support)
        )
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


class Candidate:
    """One sentence of a retrieved passage, with its words and its context's words."""

    def __init__(
        self,
        passage: RetrievedPassage,
        spans: list[tuple[int, int]],
        vectors: np.ndarray,
        i: int,
    ) -> None:
        self.passage = passage
        self.start, self.end = spans[i]
        self.text = passage.text[self.start : self.end]
        self.vector = vectors[i]
        self.window_vector = vectors[len(spans) + i]
        previous = passage.text[spans[i - 1][0] : spans[i - 1][1]] if i else ""
        own_terms = terms(self.text)
        self.words = set(own_terms)
        self.pairs = _word_pairs(own_terms)
        self.previous_words = set(terms(previous))
        self.title_words = set(terms(passage.metadata.title))
        self.published = passage.metadata.published

    def headline_credit(self, asked: set[str], keywords: KeywordIndex) -> float:
        """The IDF-weighted share of the headline's words the question does not have
        that this sentence has (0 for undated articles, whose title is no headline)."""
        if not self.published:
            return 0.0
        novel = self.title_words - asked
        total = sum(keywords.idf(t) for t in novel)
        if not total:
            return 0.0
        return sum(keywords.idf(t) for t in novel & self.words) / total

    def word_credit(self, term: str, matcher: TermMatcher) -> float:
        return max(
            matcher.match(term, self.words),
            PREVIOUS_SENTENCE_CREDIT * matcher.match(term, self.previous_words),
            TITLE_CREDIT * matcher.match(term, self.title_words),
        )


def sentences_of(passage: RetrievedPassage) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The passage's sentence spans and their stored vectors (sentences, then windows)."""
    return list(passage.metadata.sentences), passage.metadata.sentence_vectors()


def _word_pairs(words: list[str]) -> set[tuple[str, str]]:
    """Each pair of consecutive words."""
    return set(zip(words, words[1:], strict=False))


def _word_weights(
    asked: set[str],
    candidate_words: list[set[str]],
    keywords: KeywordIndex,
    matcher: TermMatcher,
) -> dict[str, float]:
    """Each question word's weight: its rarity in the index (IDF) times its rarity among
    the candidate sentences, so the word that singles out the answer ("denied", when
    every candidate mentions the crematorium) counts most."""
    n = len(candidate_words)
    weights = {}
    for term in asked:
        having = sum(1 for words in candidate_words if matcher.match(term, words) > 0)
        weights[term] = keywords.idf(term) * math.log(1 + n / (1 + having))
    return weights
