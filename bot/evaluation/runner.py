"""Indexes an evaluation set (reusing a cached index) and asks every question the way the
bot does: `Answerer.answer` for the citations, the retriever's ranking for recall."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bot.answering.answerer import Answerer
from bot.answering.answers import Answer
from bot.answering.context import QuestionContext
from bot.evaluation.metrics import (
    RECALL_DEPTHS,
    QuestionResult,
    first_relevant_rank,
    is_relevant,
)
from bot.evaluation.readers import EvalQuestion
from index.articles import Article
from index.errors import CitebotError
from index.retrieval import PassageQuery
from index.settings import Settings
from index.store.article_index import ArticleIndex

# Articles per add_articles call: a killed build keeps what it finished, and the
# progress bar moves.
ARTICLES_PER_STEP = 4

Tick = Callable[[int], None]


@dataclass(frozen=True)
class EvalIndex:
    index: ArticleIndex
    cache_dir: Path
    passages_embedded: int

    @property
    def cached(self) -> bool:
        return self.passages_embedded == 0


def cache_key(articles: Sequence[Article], settings: Settings) -> str:
    """What the index's vectors depend on: the articles and the index settings."""
    identity = {
        "articles": sorted(f"{a.id}\0{a.content_hash}" for a in articles),
        # Model, backend, passage sizes and splitter version: what the store itself checks.
        "index": ArticleIndex(settings).index_identity(),
    }
    return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()


def build_index(
    articles: Sequence[Article], settings: Settings, progress: Tick | None = None
) -> EvalIndex:
    """Indexes `articles` into `<home>/eval-cache/<key>`; an index already there for the
    same articles and settings is reused without embedding anything."""
    cache_dir = Path(settings.home) / "eval-cache" / cache_key(articles, settings)[:16]
    # Always an embedded store of its own: an eval never writes to a shared Chroma server.
    eval_settings = dataclasses.replace(settings, home=cache_dir, chroma_url=None, sources=())
    index = ArticleIndex(eval_settings)
    embedded = 0
    for start in range(0, len(articles), ARTICLES_PER_STEP):
        step = articles[start : start + ARTICLES_PER_STEP]
        report = index.add_articles(step)
        if not report.ok:
            raise CitebotError("; ".join(f"failed: {f.source}: {f.reason}" for f in report.failed))
        embedded += report.passages_embedded
        if progress:
            progress(len(step))
    return EvalIndex(index, cache_dir, embedded)


def ask_all(
    answerer: Answerer, questions: Sequence[EvalQuestion], progress: Tick | None = None
) -> list[QuestionResult]:
    """Every question through `Answerer.answer_and_rank` (timed), and its ranking extended
    with the retriever's next passages down to the deepest recall cut-off."""
    warm_up(answerer)
    results = []
    for question in questions:
        results.append(ask_one(answerer, question)[1])
        if progress:
            progress(1)
    return results


def warm_up(answerer: Answerer) -> None:
    """Loads the model and the keyword index before timing, as a running bot has."""
    answerer.index.encoder.get_query_embedding("warm up")
    answerer.index.stored_passages()


def ask_one(
    answerer: Answerer, question: EvalQuestion, context: QuestionContext | None = None
) -> tuple[Answer, QuestionResult]:
    """One question asked in `context` (a thread's, or none): the answer and its result."""
    started = time.perf_counter()
    asked_on = date.fromisoformat(question.question_date) if question.question_date else None
    answer, ranked = answerer.answer_and_rank(question.question, asked_on, context)
    ms = (time.perf_counter() - started) * 1000
    # The answerer's own order (passages by their best sentence), then the rest of
    # the retriever's ranking, cut at the deepest recall cut-off like the baselines'.
    depth = max(RECALL_DEPTHS)
    ranking = list(ranked.passages[:depth])
    if len(ranking) < depth:
        seen = {p.id for p in ranking}
        query = PassageQuery(ranked.question, ranked.query.tolist(), depth, ranked.when)
        deeper = answerer.retriever.search(query).passages
        ranking += [p for p in deeper if p.id not in seen][: depth - len(ranking)]
    sentences = ranked.sentences
    result = QuestionResult(
        id=question.id,
        rank=first_relevant_rank([is_relevant(p.metadata, question) for p in ranking]),
        answered=answer.answered,
        cited=[c.text for c in answer.citations],
        ms=ms,
        answers=question.answers,
        confidence=answer.confidence,
        best_sentence=sentences[0].text if sentences else "",
    )
    return answer, result
