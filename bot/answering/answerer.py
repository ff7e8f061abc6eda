"""Extractive answers: pick the sentences of the best passages that answer the question.

Every quoted sentence is a slice of a stored passage at its stored offsets, so it is
verbatim from the article. When the evidence is weak, the answer says so and carries the
closest passages instead of citations.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from bot.answering.answers import NO_WORDS_HINT, Answer, Citation, Outlet, PassageHit
from bot.answering.calibration import Calibration, load_calibration
from bot.answering.context import QuestionContext
from bot.answering.question_time import question_time
from bot.answering.reader import SentenceReader, reader_text
from bot.answering.scoring import ScoredSentence, score_sentences
from index.errors import CitebotError
from index.retrieval import HybridRetriever, PassageQuery, PublishedWindow, RetrievedPassage
from index.settings import Settings
from index.store.article_index import ArticleIndex
from index.store.passage_info import PassageInfo
from index.text import terms

# How the ranking weighs what is not the feature scorer's, each measured as
# docs/EVALUATION.md's "Why the scorer's weights are what they are" says.
FUSED_ORDER_WEIGHT = 0.2  # passages: best sentence + this much of their fused retrieval score
READER_WEIGHT = 0.2  # a read sentence's score gains this much of the reader's logit
READER_NEWS_WEIGHT = 0.03  # ... for a news sentence: the reader reads news less well
READER_SUPPORT_SHIFT = 0.32  # a read undated sentence's support: + its gain + this
# Further citations must score within this much of the best one.
CITATION_MARGIN = 0.08
PASSAGES_SHOWN = 3
# Two sentences whose words match this closely (difflib's ratio) are one sentence quoted
# from two copies of a story.
NEAR_COPY = 0.9
_WORDS = re.compile(r"\w+")


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
        calibration: Calibration | None = None,
    ) -> None:
        self.index = index
        self.settings = settings
        self.retriever = HybridRetriever(index)
        if reader == "settings":
            reader = SentenceReader.from_setting(settings.reader, settings.reader_precision)
        self.reader = reader
        self._calibration = calibration

    @property
    def calibration(self) -> Calibration:
        """The calibration given, or the shipped one (bot/models/confidence.json)."""
        if self._calibration is None:
            self._calibration = load_calibration()
        return self._calibration

    @property
    def min_confidence(self) -> float:
        """answer.min_confidence, or where it is not set the calibration's own for the
        reader on or off: the probability of the support answers were given at before."""
        if self.settings.min_confidence is not None:
            return self.settings.min_confidence
        return self.calibration.threshold(self.reader is not None)

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
        self.calibration  # noqa: B018 (read now, not at the first question)
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
        support = answer_support(sentences, ranking.when)
        read = self.reader is not None
        confidence = 0.0 if support is None else self.calibration.probability(support, read)
        if support is None or confidence < self.min_confidence:
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
        sentences = score_sentences(question, query, passages, found.keyword_index, when)
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


def answer_support(sentences: list[ScoredSentence], when: PublishedWindow) -> float | None:
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
    return max((s.support for s in eligible), default=None)


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
