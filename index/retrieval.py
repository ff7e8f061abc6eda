"""Hybrid retrieval: dense (Chroma) and keyword (BM25) passage rankings, fused."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from index.store.article_index import ArticleIndex
from index.store.keyword import KeywordIndex, top_rows
from index.store.passage_info import PassageInfo
from index.store.snapshot import StoredPassages

# Reciprocal rank fusion constant (Cormack et al. 2009).
RRF_K = 60
# For a question about recent news, the dense search looks this many times deeper, and
# the recent passages among what it finds are ranked on their own. (Chroma's own filtered
# search, `where` on the dates, found the same candidates at twice the answer time.)
RECENT_POOL = 4
# With a scope (some sources' passages), the dense search looks this many times deeper, so
# that the scope's passages are among what it finds.
SUBSET_POOL = 10
# Keywords of `context` (a follow-up's earlier questions) count this much of the question's.
CONTEXT_KEYWORD_WEIGHT = 0.5


@dataclass(frozen=True)
class PublishedWindow:
    """The publication dates a question allows (up to `latest`) and prefers (from
    `recent_from` to `latest`, when its words point at recent news)."""

    latest: date
    recent_from: date | None = None

    @property
    def recent_dates(self) -> list[str]:
        """Every day of the recent period (YYYY-MM-DD), oldest first; none without one."""
        if self.recent_from is None:
            return []
        days = (self.latest - self.recent_from).days
        return [(self.recent_from + timedelta(days=d)).isoformat() for d in range(days + 1)]

    def is_recent(self, published: str | None) -> bool:
        if not published or self.recent_from is None:
            return False
        return self.recent_from.isoformat() <= published[:10] <= self.latest.isoformat()


@dataclass(frozen=True)
class SourceScope:
    """The sources a search may find passages in (a conversation's): each pattern
    (`slack.channel_sources`) matches an article's source (its path or URL) as a prefix or
    a shell-style pattern (`*`, `?`); no patterns: every source. Never those `hidden`
    (library sources by key: other conversations' private ones, other workspaces' own).
    Called with a passage's PassageInfo, it says whether the passage is in scope; equal
    scopes hash alike, so the snapshot works out each one's column once."""

    patterns: tuple[str, ...] = ()
    hidden: frozenset[str] = frozenset()

    def matches(self, source: str) -> bool:
        return any(source.startswith(p) or fnmatch.fnmatchcase(source, p) for p in self.patterns)

    def __call__(self, passage: PassageInfo) -> bool:
        if passage.origin in self.hidden:
            return False
        source = passage.source
        return not self.patterns or self.matches(passage.url or source) or self.matches(source)


@dataclass(frozen=True)
class PassageQuery:
    """What a search is for: the `k` best passages for `question` (its words, for the
    keyword ranking) and `vector` (its embedding, for the dense one).

    With `when`, passages published after its latest day are left out, and the passages
    of its recent days are also ranked on their own (from a deeper dense search, and by
    keywords) and fused in, so that they are among the candidates even when older
    articles match the question better. `context` is text the question is read with (a
    follow-up's earlier questions), whose keywords count CONTEXT_KEYWORD_WEIGHT of the
    question's. With `scope`, only passages of its sources are found."""

    question: str
    vector: list[float]
    k: int
    when: PublishedWindow | None = None
    context: str = ""
    scope: SourceScope | None = None


@dataclass(frozen=True)
class RetrievedPassage:
    """A passage with the evidence for it: cosine similarity, BM25 score, fused score."""

    id: str
    text: str
    metadata: PassageInfo
    dense: float
    keyword: float
    score: float


@dataclass(frozen=True)
class Retrieval:
    """A search's passages, best first, and the keyword index they were ranked with (its
    IDF says how rare a word is among all the passages)."""

    passages: list[RetrievedPassage]
    keyword_index: KeywordIndex


class HybridRetriever(BaseRetriever):
    """Fuses the dense and keyword rankings of the active index by reciprocal rank."""

    def __init__(self, index: ArticleIndex, depth: int = 30) -> None:
        super().__init__()
        self.index = index
        self.depth = depth

    def search(self, query: PassageQuery, stored: StoredPassages | None = None) -> Retrieval:
        """The passages `query` asks for, from `stored`, the snapshot to search (default:
        the current one, which costs a read of the index state)."""
        stored = stored or self.index.stored_passages()
        when = query.when
        days = stored.column(_published_day, np.int32)
        # None: every passage (a million-long mask of Trues costs a few ms a question).
        allowed = (days <= when.latest.toordinal()) | (days == 0) if when else None
        if query.scope is not None:
            scope = stored.column(query.scope, bool)
            allowed = scope if allowed is None else allowed & scope
        recent = None
        if when and when.recent_from:
            recent = (days >= when.recent_from.toordinal()) & (days <= when.latest.toordinal())
        # Recent passages may rank low among all: search deeper, keep both rankings.
        dense_depth = self.depth * (RECENT_POOL if recent is not None else 1)
        dense_depth *= SUBSET_POOL if query.scope is not None else 1
        # A passage another process added after this snapshot was taken waits for the next.
        found = [
            (row, similarity)
            for pid, similarity in stored.dense_search(query.vector, dense_depth)
            if (row := stored.ids.position(pid)) is not None
        ]
        dense = [(row, sim) for row, sim in found if allowed is None or allowed[row]]
        dense = dense[: self.depth]
        keyword_scores = stored.keywords.scores(query.question)
        if query.context:
            keyword_scores += CONTEXT_KEYWORD_WEIGHT * stored.keywords.scores(query.context)
        keyword = keyword_scores if allowed is None else keyword_scores * allowed
        rankings = [dense, top_rows(keyword, self.depth)]
        if recent is not None:
            recent_dense = [(row, sim) for row, sim in found if recent[row]][: self.depth]
            rankings += [recent_dense, top_rows(keyword_scores * recent, self.depth)]
        fused: dict[int, float] = {}  # by row
        for ranking in rankings:
            for rank, (row, _) in enumerate(ranking):
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
        dense_of = dict(found)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[: query.k]
        best_ids = [stored.ids[row] for row in best]
        # Texts, sentences and vectors of these passages only, in one read of the store.
        read = stored.read(best_ids, query.vector)
        passages = [
            RetrievedPassage(
                id=pid,
                text=read[pid].text,
                metadata=read[pid].metadata,
                dense=dense_of.get(row, read[pid].similarity),
                keyword=float(keyword_scores[row]),
                score=fused[row],
            )
            for row, pid in zip(best, best_ids, strict=True)
            if pid in read
        ]
        return Retrieval(passages, stored.keywords)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = query_bundle.embedding or self.index.encoder.get_query_embedding(
            query_bundle.query_str
        )
        query = PassageQuery(query_bundle.query_str, embedding, self.depth)
        return [
            NodeWithScore(
                node=TextNode(id_=p.id, text=p.text, metadata=p.metadata.to_metadata()),
                score=p.score,
            )
            for p in self.search(query).passages
        ]


def _published_day(passage: PassageInfo) -> int:
    """The passage's publication day as a proleptic ordinal (0 when unknown)."""
    return _ordinal(passage.published)


def _ordinal(published: str | None) -> int:
    try:
        return date.fromisoformat(published[:10]).toordinal() if published else 0
    except ValueError:
        return 0
