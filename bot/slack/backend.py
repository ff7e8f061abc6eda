"""What the Slack app asks of the index: answers, adds and removals, and what is indexed.

`Backend` is the whole interface; `IndexBackend` is the real one, over an `ArticleIndex`
and an `Answerer` (and the LLM, when one is configured). Tests hand the app a stand-in.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.answers import Answer
from bot.context import QuestionContext
from index.errors import CitebotError
from index.report import IndexReport
from index.settings import Settings

if TYPE_CHECKING:  # both import llama-index: seconds, which the Slack app's import needn't pay
    from bot.answering import Answerer
    from index.store import ArticleIndex

log = logging.getLogger(__name__)

HEADLINES_KEPT = 10


@dataclass(frozen=True)
class IndexedSource:
    """A source in the index: a configured one (a folder, file or URL of the settings,
    removed there) or one added since (from Slack or `citebot add`), with its articles."""

    source: str
    articles: int
    configured: bool


@dataclass(frozen=True)
class Overview:
    """What is indexed: the generation (changes with every change), articles, sources,
    the latest headlines (dated articles, newest first; else any titles)."""

    generation: str
    articles: int
    sources: tuple[IndexedSource, ...] = ()
    headlines: tuple[str, ...] = ()
    updated_at: str | None = None
    rebuilt_at: str | None = None


@dataclass(frozen=True)
class Asked:
    """An answer, and the question it answers when that is not the one asked (a
    follow-up the LLM rewrote into a standalone question)."""

    answer: Answer
    read_as: str | None = None


class Backend(Protocol):
    def ask(self, question: str, context: QuestionContext | None = None) -> Asked: ...

    def add_sources(self, urls: list[str]) -> IndexReport: ...

    def add_upload(self, name: str, data: bytes) -> IndexReport: ...

    def remove_source(self, source: str) -> IndexReport: ...

    def overview(self) -> Overview:
        """Raises CitebotError (or the store's error) when the index can't be read."""
        ...

    def warm_up(self) -> None: ...


@dataclass
class IndexBackend:
    """The index, its answerer, and (optional) the LLM's checked answers and rewrites."""

    index: ArticleIndex
    answerer: Answerer
    settings: Settings
    llm_answerer: Any = None  # bot.llm.CheckedAnswerer
    _overview: tuple[tuple[str, str], Overview] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexBackend:
        from bot.answering import Answerer
        from bot.llm import CheckedAnswerer, LlmConfig, make_llm
        from index.store import ArticleIndex

        index = ArticleIndex(settings)
        answerer = Answerer(index, settings)
        llm_config = LlmConfig.from_settings(settings)
        checked = None
        if llm_config is not None:
            checked = CheckedAnswerer(answerer, make_llm(llm_config), llm_config)
        return cls(index, answerer, settings, checked)

    def ask(self, question: str, context: QuestionContext | None = None) -> Asked:
        if self.llm_answerer is None:
            return Asked(self.answerer.answer(question, context=context))
        read_as = None
        if context is not None and context.earlier_questions:
            read_as = self.llm_answerer.rewrite_follow_up(question, context.earlier_questions)
        answer = self.llm_answerer.answer(read_as or question, context=context)
        return Asked(answer, read_as)

    def add_sources(self, urls: list[str]) -> IndexReport:
        return self.index.add(urls)

    def add_upload(self, name: str, data: bytes) -> IndexReport:
        return self.index.add_bytes(name, data)

    def remove_source(self, source: str) -> IndexReport:
        return self.index.remove([source])

    def overview(self) -> Overview:
        stored = self.index.stored_passages()
        with self._lock:
            if self._overview is not None and self._overview[0] == stored.key:
                return self._overview[1]
        state = self.index.index_state()
        overview = summarize(stored.key[1], stored.metadatas, self.settings.sources, state)
        with self._lock:
            self._overview = (stored.key, overview)
        return overview

    def warm_up(self) -> None:
        """Loads the model, the reader and the passages now, before the first request."""
        if self.answerer.reader is not None:
            self.answerer.reader.load()
        try:
            self.answerer.rank("which articles are indexed")
        except CitebotError as err:  # no index yet: the bot says so when asked
            log.warning("citebot can't answer yet: %s", err)


def summarize(
    generation: str,
    metadatas: list[dict[str, Any]],
    configured: tuple[str, ...],
    state: dict[str, Any],
) -> Overview:
    """The overview of the passages `metadatas` (one pass)."""
    articles: dict[str, tuple[str, str, str]] = {}
    for meta in metadatas:
        articles.setdefault(meta["article_id"], (meta["source"], meta["title"], meta["published"]))
    counts: dict[tuple[str, bool], int] = {}
    for source, _, _ in articles.values():
        home = next((c for c in configured if _under(source, c)), None)
        key = (home or source, home is not None)
        counts[key] = counts.get(key, 0) + 1
    sources = tuple(
        IndexedSource(source, n, is_configured)
        for (source, is_configured), n in sorted(
            counts.items(), key=lambda kv: (not kv[0][1], kv[0][0])
        )
    )
    dated = sorted((a for a in articles.values() if a[2]), key=lambda a: a[2], reverse=True)
    titles = [title for _, title, _ in (dated or list(articles.values()))]
    headlines = tuple(dict.fromkeys(t for t in titles if t))[:HEADLINES_KEPT]
    return Overview(
        generation=generation,
        articles=len(articles),
        sources=sources,
        headlines=headlines,
        updated_at=state.get("updated_at"),
        rebuilt_at=state.get("rebuilt_at"),
    )


def _under(source: str, configured: str) -> bool:
    base = configured.rstrip("/")
    return source == configured or source.startswith((base + "/", base + "#"))
