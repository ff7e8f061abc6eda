"""What the Slack app asks of the index: answers, the source library (adds, removals, the
sources listed), and what is indexed.

`Backend` is the whole interface; `IndexBackend` is the real one, over an `ArticleIndex`
and a `QuestionAnswerer` (the checked LLM answer when one is configured, else the
extractive one). Tests hand the app a stand-in.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from bot.answering.answers import Answer, QuestionAnswerer
from bot.answering.context import QuestionContext
from bot.slack import messages
from index.errors import CitebotError
from index.report import IndexReport
from index.settings import Settings
from index.sources.library import LibraryReport, LibrarySource
from index.store.passage_info import PassageInfo
from index.store.status import SourceStatus

if TYPE_CHECKING:  # it imports llama-index: seconds, which the Slack app's import needn't pay
    from index.store.article_index import ArticleIndex

log = logging.getLogger(__name__)

HEADLINES_KEPT = 10


@dataclass(frozen=True)
class IndexedSource:
    """A source of the library: a configured one (a folder, file or URL of the settings,
    removed there) or one added since (from Slack or `citebot add`), with its articles
    in the index now, its kind, who added it and how its last read went."""

    source: str
    articles: int
    configured: bool
    kind: str = ""
    added_by: str = ""
    last_error: str = ""
    # A private source's conversation (its only one); "": every conversation's.
    visible_in: str = ""
    # Added in one workspace of many: its team id (its only one); "": every workspace's.
    team: str = ""


@dataclass(frozen=True)
class Overview:
    """What is indexed: the generation (changes with every change), articles, sources,
    the latest headlines (dated articles, newest first; else any titles)."""

    generation: str
    articles: int
    sources: tuple[IndexedSource, ...] = ()
    passages: int = 0
    headlines: tuple[str, ...] = ()
    updated_at: str | None = None
    rebuilt_at: str | None = None
    # The latest rebuild or refresh, from whichever process ran it (`citebot serve` refreshes).
    last_report: LibraryReport | None = None

    def serving(self, team: str) -> Overview:
        """The overview workspace `team` sees: without other workspaces' sources (nor
        their articles in the count)."""
        others = [s for s in self.sources if s.team not in ("", team)]
        return replace(
            self,
            articles=self.articles - sum(s.articles for s in others),
            sources=tuple(s for s in self.sources if s not in others),
        )


@dataclass(frozen=True)
class Asked:
    """An answer, and the question it answers when that is not the one asked (a
    follow-up the LLM rewrote into a standalone question)."""

    answer: Answer
    read_as: str | None = None


class Backend(Protocol):
    """`team` is the Slack workspace asking (with many workspaces; else ""): what it adds
    is its own, and it cannot change another workspace's sources."""

    def ask(self, question: str, context: QuestionContext | None = None) -> Asked: ...

    def add_sources(
        self, urls: list[str], added_by: str, visible_in: str = "", team: str = ""
    ) -> IndexReport:
        """Adds URLs; `visible_in` set: a new one answers only in that conversation.
        Raises CitebotError naming a URL another workspace added."""
        ...

    def add_upload(
        self, name: str, data: bytes, uploaded_by: str, visible_in: str = "", team: str = ""
    ) -> IndexReport: ...

    def remove(self, items: list[str], removed_by: str, team: str = "") -> IndexReport:
        """Removes sources or single articles; raises CitebotError naming what to fix."""
        ...

    def share(self, sources: list[str], shared_by: str, team: str = "") -> list[str]:
        """Makes private sources public (in their workspace); returns those that were
        private. Raises CitebotError naming a source that is not in the library."""
        ...

    def remove_workspace(self, team: str) -> IndexReport:
        """Removes the sources workspace `team` added (it uninstalled citebot), with their
        articles and uploaded files."""
        ...

    def private_sources(self) -> list[LibrarySource]:
        """The sources that do not answer everywhere: a conversation's, a workspace's."""
        ...

    def sources(self) -> list[SourceStatus]: ...

    def overview(self) -> Overview:
        """Raises CitebotError (or the store's error) when the index can't be read."""
        ...

    def warm_up(self) -> None: ...


@dataclass
class IndexBackend:
    """The index, and what answers from it."""

    index: ArticleIndex
    answerer: QuestionAnswerer
    settings: Settings
    _overview: tuple[tuple[tuple[str, str], frozenset[str]], Indexed] | None = field(
        default=None, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexBackend:
        from bot.answering.answerer import Answerer
        from bot.answering.checked_llm import question_answerer
        from index.store.article_index import ArticleIndex

        index = ArticleIndex(settings)
        return cls(index, question_answerer(Answerer(index, settings), settings), settings)

    def ask(self, question: str, context: QuestionContext | None = None) -> Asked:
        answer = self.answerer.answer(question, context=context)
        rewritten = answer.question != " ".join(question.split())
        return Asked(answer, answer.question if rewritten else None)

    def add_sources(
        self, urls: list[str], added_by: str, visible_in: str = "", team: str = ""
    ) -> IndexReport:
        from bot.sources_admin import add_from_slack

        others = self._others(team)
        taken = next((url for url in urls if url in others), None)
        if taken is not None:
            self._refuse("add", added_by, urls, messages.ANOTHER_WORKSPACES.format(source=taken))
        return add_from_slack(self.index, self.settings, urls, added_by, visible_in, team)

    def add_upload(
        self, name: str, data: bytes, uploaded_by: str, visible_in: str = "", team: str = ""
    ) -> IndexReport:
        return self.index.add_bytes(name, data, uploaded_by, visible_in, team)

    def remove(self, items: list[str], removed_by: str, team: str = "") -> IndexReport:
        if other := self._another_workspaces(items, team):
            self._refuse("remove", removed_by, items, other)
        return self.index.remove(items, removed_by=removed_by)

    def share(self, sources: list[str], shared_by: str, team: str = "") -> list[str]:
        if other := self._another_workspaces(sources, team):
            self._refuse("share", shared_by, sources, other)
        return self.index.share(sources, shared_by=shared_by)

    def remove_workspace(self, team: str) -> IndexReport:
        own = [s for s in self.index.library.sources() if team and s.team == team]
        if not own:
            return IndexReport()
        keys = sorted(s.key for s in own)  # the library lists them in no set order
        report = self.index.remove(keys, removed_by=f"{team} (uninstalled)")
        with self.index.connection.writing():
            self.index.library.delete_uploads(s.upload_sha256 for s in own)
        return report

    def private_sources(self) -> list[LibrarySource]:
        return [s for s in self.index.library.sources() if s.visible_in or s.team]

    def _others(self, team: str) -> set[str]:
        """The keys of the sources other workspaces added."""
        return {s.key for s in self.index.library.sources() if not s.serves(team)}

    def _another_workspaces(self, items: list[str], team: str) -> str:
        """Why `items` can't be changed from workspace `team` (one is another workspace's
        source or one of its articles, told as if it were not there), or ""."""
        others = self._others(team)
        if not others:
            return ""
        articles = self.index.stored_passages().metadatas.in_articles()
        origins = {a.article_id: a.origin for a in articles}
        for item in items:
            if item in others or origins.get(item) in others:
                return messages.NOT_THIS_WORKSPACES.format(item=item)
        return ""

    def _refuse(self, action: str, who: str, items: list[str], reason: str) -> None:
        """Raises CitebotError(`reason`), recorded in the audit log as refused changes are."""

        def refused() -> None:
            raise CitebotError(reason)

        self.index.audit.recorded(action, who, items, refused)

    def sources(self) -> list[SourceStatus]:
        return self.index.sources()

    def overview(self) -> Overview:
        """The passages' summary, made once per generation; the library (small, and
        changed by failed reads that leave the index as it is) is read every time."""
        stored = self.index.stored_passages()
        library = self.index.library
        sources = library.sources()
        # Private sources' titles are no headline (the assistant view suggests them), nor
        # are a workspace's own sources'.
        private = frozenset(s.key for s in sources if s.visible_in or s.team)
        key = (stored.key, private)
        with self._lock:
            indexed = self._overview[1] if self._overview and self._overview[0] == key else None
        if indexed is None:
            indexed = summarize(stored.metadatas.in_articles(), len(stored.ids), private)
            with self._lock:
                self._overview = (key, indexed)
        return overview_of(
            stored.key[1],
            indexed,
            sources,
            self.index.index_state(),
            library.last_report(),
        )

    def warm_up(self) -> None:
        """Loads the model, the reader and the passages now, before the first request."""
        self.answerer.warm_up()


@dataclass(frozen=True)
class Indexed:
    """What one pass over the passages tells: articles per library source (`origin`;
    an article from no source, such as an evaluation corpus's, counts under its own
    source), and the latest headlines."""

    articles: int
    per_origin: dict[str, int]
    headlines: tuple[str, ...]
    passages: int = 0


def summarize(
    metadatas: list[PassageInfo], passages: int, private: frozenset[str] = frozenset()
) -> Indexed:
    """The summary of an index of `passages` passages from the articles `metadatas`
    say (one or more of each article's passages); articles of `private` sources are
    counted, but give no headline."""
    articles: dict[str, tuple[str, str, str]] = {}
    for meta in metadatas:
        origin = meta.origin or meta.source
        articles.setdefault(meta.article_id, (origin, meta.title, meta.published))
    per_origin: dict[str, int] = {}
    for origin, _, _ in articles.values():
        per_origin[origin] = per_origin.get(origin, 0) + 1
    public = [a for a in articles.values() if a[0] not in private]
    dated = sorted((a for a in public if a[2]), key=lambda a: a[2], reverse=True)
    titles = [title for _, title, _ in (dated or public)]
    headlines = tuple(dict.fromkeys(t for t in titles if t))[:HEADLINES_KEPT]
    return Indexed(len(articles), per_origin, headlines, passages=passages)


def overview_of(
    generation: str,
    indexed: Indexed,
    library: list[LibrarySource],
    state: dict[str, Any],
    last_report: LibraryReport | None = None,
) -> Overview:
    """The overview: the library's sources (configured ones first) with their articles,
    then any other source articles were indexed from."""
    known = {s.key for s in library}
    sources = [
        IndexedSource(
            s.key,
            indexed.per_origin.get(s.key, 0),
            s.origin == "config",
            s.kind,
            s.added_by,
            s.last_error,
            s.visible_in,
            s.team,
        )
        for s in library
    ]
    sources += [
        IndexedSource(origin, n, configured=False)
        for origin, n in sorted(indexed.per_origin.items())
        if origin not in known
    ]
    return Overview(
        generation=generation,
        articles=indexed.articles,
        sources=tuple(sources),
        passages=indexed.passages,
        headlines=indexed.headlines,
        updated_at=state.get("updated_at"),
        rebuilt_at=state.get("rebuilt_at"),
        last_report=last_report,
    )
