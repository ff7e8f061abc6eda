"""Extractive answers: pick the sentences of the best passages that answer the question.

Every quoted sentence is a slice of a stored passage at its stored offsets, so it is
verbatim from the article. When the evidence is weak, the answer says so and carries the
closest passages instead of citations.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from bot.answering.answers import NO_WORDS_HINT, Answer, Citation, Outlet, PassageHit
from bot.answering.context import QuestionContext
from bot.answering.question_kinds import answer_kind, has_answer_kind
from bot.answering.question_time import question_time
from bot.answering.reader import SentenceReader, reader_text
from index.errors import CitebotError
from index.retrieval import HybridRetriever, PassageQuery, PublishedWindow, RetrievedPassage
from index.settings import Settings
from index.store.article_index import ArticleIndex
from index.store.keyword import KeywordIndex
from index.store.passage_info import PassageInfo
from index.text import TermMatcher, terms

# How a sentence's score mixes its evidence; chosen on SQuAD dev (docs/EVALUATION.md).
# Cosine of the question to the sentence, or to it read with the one before (which "it"
# or "this" may refer to), whichever is closer. 0.7 rather than 0.3: best-sentence hit@1
# +0.011 on SQuAD (on the articles it was not chosen on as well), RealTime QA unchanged.
# Beyond about 0.75 the meaning outweighs the rare word that singles out the answer: "who
# denied the crematorium claim" then quotes the claim, not the denial.
MEANING_WEIGHT = 0.7
WORDS_WEIGHT = 0.7  # weighted share of the question's words the sentence has
PASSAGE_WEIGHT = 0.1  # cosine of the question to the whole passage
KIND_WEIGHT = 0.1  # the sentence has the kind of thing asked for (a name, a date, a number)
# Share of the question's consecutive word pairs (stopwords dropped: "Sun Life Stadium")
# found consecutive in the sentence: a phrase matched is stronger evidence than its words
# scattered. Best-sentence hit@1 +0.007 on the SQuAD articles it was not chosen on.
PHRASE_WEIGHT = 0.1
# The question asks about recent news ("this week") and the article is of those days.
RECENT_WEIGHT = 0.35
# The sentence has the headline's words that the question lacks: a news headline names
# what the story is about ("'Harbor Lights': streamer renews drama for season 2"), which
# is what "which show was renewed" asks for. Only for dated articles: an encyclopedia
# title is a topic named everywhere, and weighting it cost 0.09 of SQuAD hit@1.
HEADLINE_WEIGHT = 0.2
# A question word found only in the sentence before (which "this" or "it" may refer to)
# or in the title counts for this much of a word found in the sentence itself.
PREVIOUS_SENTENCE_CREDIT = 0.5
TITLE_CREDIT = 0.3
# Passages are ordered by their best sentence plus this much of their retrieval score
# (reciprocal rank fusion) relative to the top passage's: where two passages' best
# sentences are close, the one that matches as a whole goes first. RealTime QA
# recall@1 0.573 -> 0.621, SQuAD recall@5 +0.005 (docs/EVALUATION.md); it does not
# change which sentences are quoted.
FUSED_ORDER_WEIGHT = 0.2
# What the reader's raw score (a logit) for a sentence, times this, adds to its score (the
# features' scores span about 0 to 1.6). Best-sentence hit@1 on 1,000 SQuAD split A
# questions, 8 candidates: 0.791 without the reader, 0.868 adding its probability (the
# first design), 0.882 at 0.2 times its logit with the stage-2 reader, 0.885 with the
# shipped average of stages 2 and 3 (docs/EVALUATION.md, benchmarks/reader_weights.py).
READER_WEIGHT = 0.2
# The same for sentences of dated (news) articles, which the reader reads less well (it
# favours the sentence that restates a news quiz question's premise): chosen on the 20
# RealTime QA 2023-2024 weeks drawn first and on RealTime QA 2022 (0.03 and 0.05 tied on
# the weeks; 2022 preferred 0.03), and checked on 25 other weeks: 0.300 -> 0.323.
READER_NEWS_WEIGHT = 0.03
# A read sentence's support is its feature support plus the reader's gain plus this, so
# that answer.min_confidence (0.72) answers 90% of split A's questions with the reader on
# as it did without it (the 90% point of support + gain measured 0.402 there with the
# shipped reader; 0.368 with stage 2, which had 0.35).
READER_SUPPORT_SHIFT = 0.32
# Further citations must score within this much of the best one.
CITATION_MARGIN = 0.08
PASSAGES_SHOWN = 3
# Two sentences whose words match this closely (difflib's ratio) are one sentence quoted
# from two copies of a story.
NEAR_COPY = 0.9
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class ScoredSentence:
    passage: RetrievedPassage
    start: int
    end: int
    score: float  # what sentences are ranked by
    # How well the sentence answers the question, whatever its article's date or headline:
    # the confidence that answer.min_confidence is compared with, the same scale for
    # news and for undated documents.
    support: float

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


@dataclass(frozen=True)
class Ranking:
    """What an answer is chosen from: the question (whitespace collapsed), its vector and
    time frame, the retrieved passages ordered by their best sentence, and every sentence
    of those passages, best first."""

    question: str
    query: np.ndarray
    when: PublishedWindow
    passages: list[RetrievedPassage]
    sentences: list[ScoredSentence]


class Answerer:
    """Answers questions from an `ArticleIndex`, without an LLM.

    The feature scorer ranks every sentence of the best passages; with a reader (a
    cross-encoder, `answer.reader`; the shipped one by default), the best
    `answer.reader_candidates` of them are read with the question and its score counts in
    theirs (less for news: READER_NEWS_WEIGHT).
    """

    def __init__(
        self,
        index: ArticleIndex,
        settings: Settings,
        reader: SentenceReader | None | str = "settings",
    ) -> None:
        self.index = index
        self.settings = settings
        self.retriever = HybridRetriever(index)
        if reader == "settings":
            reader = SentenceReader.from_setting(settings.reader, settings.reader_precision)
        self.reader = reader

    def answer(
        self,
        question: str,
        asked_on: date | None = None,
        context: QuestionContext | None = None,
    ) -> Answer:
        """Answer `question` as asked on `asked_on` (default today): articles published
        after that day are left out, and "this week" or "recently" favour the articles of
        the days before it. `context`: the thread and sources it is asked in (Slack)."""
        return self.answer_and_rank(question, asked_on, context)[0]

    def warm_up(self) -> None:
        """Loads the model, the reader and the passages now, before the first question."""
        if self.reader is not None:
            self.reader.load()
        try:
            self.rank("which articles are indexed")
        except CitebotError as err:  # no index yet: the question is told so when it comes
            logging.getLogger(__name__).warning("citebot can't answer yet: %s", err)

    def answer_and_rank(
        self,
        question: str,
        asked_on: date | None = None,
        context: QuestionContext | None = None,
    ) -> tuple[Answer, Ranking]:
        """The answer, and the ranking it was chosen from (what the evaluation measures
        recall on), from one embedding of the question."""
        ranking = self.rank(question, asked_on, context)
        question = ranking.question
        sentences = ranking.sentences
        shown = [_passage_hit(p) for p in ranking.passages[:PASSAGES_SHOWN]]
        confidence = _confidence(sentences, ranking.when)
        if not sentences or confidence < self.settings.min_confidence:
            hint = None if terms(question) else NO_WORDS_HINT
            return Answer(question, False, [], shown, confidence, hint=hint), ranking
        best = sentences[0]
        cited = [s for s in sentences if s.score >= best.score - CITATION_MARGIN]
        quoted = {id(s) for s in cited}
        citations = distinct_citations(
            cited, self.settings.max_citations, [s for s in sentences if id(s) not in quoted]
        )
        return Answer(question, True, citations, shown, confidence=confidence), ranking

    def rank(
        self,
        question: str,
        asked_on: date | None = None,
        context: QuestionContext | None = None,
    ) -> Ranking:
        """The retrieved passages, ordered by their best sentence, and all their sentences,
        best first."""
        question = " ".join(question.split())
        if not question:
            raise CitebotError('the question is empty: ask something, e.g. citebot ask "who ...?"')
        when = question_time(question, asked_on or date.today())
        query = np.asarray(self.index.encoder.get_query_embedding(question), dtype=np.float32)
        # A thread's context (bot/answering/context.py): the retrieval also reads the earlier
        # questions, sentences of the articles already cited rank higher.
        context = context or QuestionContext()
        vector = context.query_vector(query, self.index.encoder).tolist()
        k = self.settings.candidate_passages
        found = self.retriever.search(
            PassageQuery(question, vector, k, when, context.earlier_text, context.scope)
        )
        passages = found.passages
        if not passages:
            return Ranking(question, query, when, [], [])
        sentences = self.score_sentences(question, query, passages, found.keyword_index, when)
        sentences = context.favour_cited(sentences)
        if self.reader is not None:
            sentences = self.read(question, sentences)
        best: dict[str, float] = {}
        for sentence in sentences:
            best.setdefault(sentence.passage.id, sentence.score)
        top = max(p.score for p in passages)
        passages.sort(
            key=lambda p: best.get(p.id, float("-inf")) + FUSED_ORDER_WEIGHT * p.score / top,
            reverse=True,
        )
        return Ranking(question, query, when, passages, sentences)

    def score_sentences(
        self,
        question: str,
        query: np.ndarray,
        passages: list[RetrievedPassage],
        keywords: KeywordIndex,
        when: PublishedWindow | None = None,
    ) -> list[ScoredSentence]:
        """Every sentence of `passages`, best first, scored by meaning and shared words."""
        candidates = [
            _Candidate(passage, spans, vectors, i)
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

    def read(self, question: str, sentences: list[ScoredSentence]) -> list[ScoredSentence]:
        """The sentences re-ranked: the best `answer.reader_candidates` gain the reader's
        score (a logit) times READER_WEIGHT, or times READER_NEWS_WEIGHT for sentences
        of dated (news) articles, counted from the lowest gain read. A read sentence of
        an undated article has its support, which abstention compares with
        answer.min_confidence, raised by its gain plus READER_SUPPORT_SHIFT; a news
        sentence keeps the feature scorer's support, on which the news threshold was
        measured."""
        head = sentences[: self.settings.reader_candidates]
        dated = [bool(s.passage.metadata.published) for s in head]
        weights = [READER_NEWS_WEIGHT if news else READER_WEIGHT for news in dated]
        read = [i for i, weight in enumerate(weights) if weight]
        if not read:
            return sentences
        logits = self.reader.score(question, [reader_input(head[i]) for i in read])
        gains = {i: weights[i] * logit for i, logit in zip(read, logits.tolist(), strict=True)}
        # In the score, the gain counts from the least believed read sentence up: the
        # order among them is the same, and a sentence the reader rejects does not sink
        # below the unread ones (passages are ordered by their best sentence: a negative
        # gain took split B's recall@5 from 0.979 to 0.867).
        floor = min(gains.values())
        ranked = [
            dataclasses.replace(
                s,
                score=s.score + gains[i] - floor,
                support=s.support if dated[i] else s.support + gains[i] + READER_SUPPORT_SHIFT,
            )
            if i in gains
            else s
            for i, s in enumerate(head)
        ]
        ranked.sort(key=lambda s: s.score, reverse=True)
        return ranked + sentences[len(head) :]


def reader_input(sentence: ScoredSentence, text: str | None = None) -> str:
    """The sentence as the reader reads it: with its title and the sentence before it
    (with `text` in place of the sentence's own: training's answer-masked negatives)."""
    spans = list(sentence.passage.metadata.sentences)
    i = spans.index((sentence.start, sentence.end))
    previous = sentence.passage.text[spans[i - 1][0] : spans[i - 1][1]] if i else ""
    own = sentence.text if text is None else text
    return reader_text(own, previous, sentence.passage.metadata.title)


def _confidence(sentences: list[ScoredSentence], when: PublishedWindow) -> float:
    """How well the best-supported sentence answers the question (when a headline's or
    a recent article's sentence ranks first, the question is no less answered). A
    question about recent news ("this week") is answered only by the articles of those
    days, or undated ones: an older article's sentence does not count as support."""
    eligible = [
        s
        for s in sentences
        if when.recent_from is None
        or not s.passage.metadata.published
        or when.is_recent(s.passage.metadata.published)
    ]
    return max((s.support for s in eligible), default=0.0)


def distinct_citations(
    sentences: list[ScoredSentence], limit: int, copies: Sequence[ScoredSentence] = ()
) -> list[Citation]:
    """Up to `limit` citations of `sentences`, best first, each sentence quoted once: a
    copy of it in another article (the same wire story from two outlets), among
    `sentences` or `copies` (ranked lower: the reader may score an outlet's "(AP)" a
    little differently), is listed in the first one's `also_in` instead."""
    citations: list[Citation] = []
    keys: list[list[str]] = []
    for n, sentence in enumerate([*sentences, *copies]):
        key = _WORDS.findall(sentence.text.casefold())
        copy_of = next((i for i, k in enumerate(keys) if _same_words(k, key)), None)
        if copy_of is None:
            if n < len(sentences) and len(citations) < limit:
                citations.append(citation_of(sentence))
                keys.append(key)
            continue
        first = citations[copy_of]
        outlet = Outlet(**_article_fields(sentence.passage.metadata))
        if sentence.passage.metadata.article_id != first.article_id and outlet not in (
            first.also_in
        ):
            citations[copy_of] = dataclasses.replace(first, also_in=(*first.also_in, outlet))
    return citations


def _same_words(a: list[str], b: list[str]) -> bool:
    """The same sentence but for punctuation, case and a word or two an outlet changed
    ("(AP) --", "said on Tuesday")."""
    if a == b:
        return True
    if not a or not b or min(len(a), len(b)) / max(len(a), len(b)) < NEAR_COPY:
        return False
    # quick_ratio() bounds ratio() from above, in linear time: most pairs stop there.
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return matcher.quick_ratio() >= NEAR_COPY and matcher.ratio() >= NEAR_COPY


def citation_of(sentence: ScoredSentence) -> Citation:
    meta = sentence.passage.metadata
    return Citation(
        text=sentence.text,
        score=round(sentence.score, 4),
        article_id=meta.article_id,
        start=meta.start + sentence.start,
        end=meta.start + sentence.end,
        **_article_fields(meta),
    )


def _passage_hit(passage: RetrievedPassage) -> PassageHit:
    return PassageHit(
        text=passage.text, score=round(passage.dense, 4), **_article_fields(passage.metadata)
    )


def _article_fields(meta: PassageInfo) -> dict[str, str | None]:
    """Title, source (the URL when there is one, else the path), URL and date."""
    return {
        "title": meta.title,
        "source": meta.url or meta.source,
        "url": meta.url or None,
        "published": meta.published or None,
    }


class _Candidate:
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
