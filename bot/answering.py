"""Extractive answers: pick the sentences of the best passages that answer the question.

Every quoted sentence is a slice of a stored passage at its stored offsets, so it is
verbatim from the article. When the evidence is weak, the answer says so and carries the
closest passages instead of citations.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from bot.answers import Answer, Citation, PassageHit
from index.errors import CitebotError
from index.keyword import KeywordIndex
from index.retrieval import HybridRetriever, RetrievedPassage
from index.settings import Settings
from index.store import ArticleIndex, stored_sentences
from index.text import terms

# How a sentence's score mixes its evidence; chosen on the SQuAD eval (docs/EVALUATION.md).
SENTENCE_WEIGHT = 0.5
KEYWORD_WEIGHT = 0.3
PASSAGE_WEIGHT = 0.2
# Further citations must score within this much of the best one.
CITATION_MARGIN = 0.08
PASSAGES_SHOWN = 3
SENTENCE_CACHE = 50_000


@dataclass(frozen=True)
class ScoredSentence:
    passage: RetrievedPassage
    start: int
    end: int
    score: float

    @property
    def text(self) -> str:
        return self.passage.text[self.start : self.end]


class Answerer:
    """Answers questions from an `ArticleIndex`, without an LLM."""

    def __init__(self, index: ArticleIndex, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self.retriever = HybridRetriever(index)
        self._sentence_vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def answer(self, question: str) -> Answer:
        question = " ".join(question.split())
        if not question:
            raise CitebotError('the question is empty: ask something, e.g. citebot ask "who ...?"')
        query = np.asarray(self.index.encoder.get_query_embedding(question), dtype=np.float32)
        passages = self.retriever.search(
            question, query.tolist(), max(self.settings.candidate_passages, PASSAGES_SHOWN)
        )
        shown = [_passage_hit(p) for p in passages[:PASSAGES_SHOWN]]
        if not passages:
            return Answer(question, answered=False, passages=shown)
        keywords = self.index.stored_passages().keywords
        sentences = self.score_sentences(
            question, query, passages[: self.settings.candidate_passages], keywords
        )
        best = sentences[0] if sentences else None
        if best is None or best.score < self.settings.min_confidence:
            return Answer(question, answered=False, passages=shown)
        cited = [s for s in sentences if s.score >= best.score - CITATION_MARGIN]
        citations = [_citation(s) for s in cited[: self.settings.max_citations]]
        return Answer(question, answered=True, citations=citations, passages=shown)

    def score_sentences(
        self,
        question: str,
        query: np.ndarray,
        passages: list[RetrievedPassage],
        keywords: KeywordIndex,
    ) -> list[ScoredSentence]:
        """Every sentence of `passages`, best first, scored by meaning and shared words."""
        spans = [(p, s, e) for p in passages for s, e in stored_sentences(p.metadata)]
        if not spans:
            return []
        vectors = self._vectors([(f"{p.id}:{s}", p.text[s:e]) for p, s, e in spans])
        meaning = vectors @ query
        question_terms = set(terms(question))
        weights = {t: keywords.idf(t) for t in question_terms}
        total = sum(weights.values()) or 1.0
        scored = []
        for (passage, start, end), similarity in zip(spans, meaning, strict=True):
            context = set(terms(passage.text[start:end])) | set(terms(passage.metadata["title"]))
            overlap = sum(w for t, w in weights.items() if t in context) / total
            score = (
                SENTENCE_WEIGHT * float(similarity)
                + KEYWORD_WEIGHT * overlap
                + PASSAGE_WEIGHT * passage.dense
            )
            scored.append(ScoredSentence(passage, start, end, score))
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored

    def _vectors(self, keyed_texts: list[tuple[str, str]]) -> np.ndarray:
        """Sentence vectors, encoded once per process and kept in an LRU cache."""
        cache = self._sentence_vectors
        missing = [(k, t) for k, t in keyed_texts if k not in cache]
        if missing:
            encoded = self.index.encoder.encode([t for _, t in missing])
            for (key, _), vector in zip(missing, encoded, strict=True):
                cache[key] = vector
        for key, _ in keyed_texts:
            cache.move_to_end(key)
        while len(cache) > SENTENCE_CACHE:
            cache.popitem(last=False)
        return np.stack([cache[k] for k, _ in keyed_texts])


def _citation(sentence: ScoredSentence) -> Citation:
    meta = sentence.passage.metadata
    return Citation(
        text=sentence.text,
        title=meta["title"],
        source=meta["url"] or meta["source"],
        url=meta["url"] or None,
        published=meta["published"] or None,
        score=round(sentence.score, 4),
        article_id=meta["article_id"],
        start=meta["start"] + sentence.start,
        end=meta["start"] + sentence.end,
    )


def _passage_hit(passage: RetrievedPassage) -> PassageHit:
    meta = passage.metadata
    return PassageHit(
        text=passage.text,
        title=meta["title"],
        source=meta["url"] or meta["source"],
        url=meta["url"] or None,
        published=meta["published"] or None,
        score=round(passage.dense, 4),
    )
