"""Change planning: what is stored plus what the library read -> what to embed, keep, drop.

A pure function shared by rebuild, add, refresh and remove, so the rules for when an
article leaves the index live in one place and are tested without Chroma or the model:

- an article leaves only when it is removed explicitly, or when its source was read
  successfully, lists everything it holds (a folder, a file, a page; not a feed, which
  only adds) and no longer holds it;
- a source that could not be read keeps everything indexed from it;
- what a source says is unchanged without being read again (a 304, a feed entry dated
  as before) is reported unchanged, as an article read and found the same is;
- a JSON record indexed under its former id (its bare url) is re-keyed by its
  export's next read, and an exclusion of that id still holds;
- in a rebuild, the articles of a source that is no longer in the library are kept
  unless `prune` is set, and the report says how many and why.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from index.articles import Article
from index.report import Failure
from index.sources.reading import SourceRead


@dataclass(frozen=True)
class StoredVersion:
    """One version of an article in the index: its passages, and whether all of them
    are there (an add killed halfway leaves an incomplete version, cleaned up later)."""

    content_hash: str
    passage_ids: tuple[str, ...]
    complete: bool


@dataclass(frozen=True)
class StoredArticle:
    """An article as the index holds it. `origin` is the library source it was read from
    (None for articles indexed before the library existed)."""

    id: str
    source: str
    origin: str | None
    versions: tuple[StoredVersion, ...]

    def complete_version(self, content_hash: str) -> StoredVersion | None:
        for version in self.versions:
            if version.complete and version.content_hash == content_hash:
                return version
        return None

    @property
    def passage_ids(self) -> list[str]:
        return [pid for version in self.versions for pid in version.passage_ids]

    @property
    def complete_passage_ids(self) -> list[str]:
        return [pid for v in self.versions if v.complete for pid in v.passage_ids]


@dataclass(frozen=True)
class Kept:
    """A stored article that was not read but stays, and why."""

    article: str
    reason: str


UNCONFIGURED = "its source is no longer configured or added"
UNREADABLE = "its source could not be read"


@dataclass
class Plan:
    """`embed` are (article, origin) to embed; `keep` passage ids that stay (a rebuild
    copies them); `drop` passage ids to delete in place (old versions, removed articles)."""

    embed: list[tuple[Article, str]] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    # Passage ids of articles kept without being read, in a rebuild: copied when the
    # index settings are unchanged, else re-embedded from their stored text.
    kept_articles: list[str] = field(default_factory=list)
    # The unchanged articles read, for a rebuild whose vectors cannot be reused.
    unchanged_read: list[tuple[Article, str]] = field(default_factory=list)

    @property
    def changes_anything(self) -> bool:
        return bool(self.embed or self.drop or self.removed)


def plan_changes(
    stored: Mapping[str, StoredArticle],
    reads: Sequence[SourceRead],
    library: Collection[str] | None = None,
    prune: bool = False,
    remove: Collection[str] = (),
    excluded: Collection[str] = (),
) -> Plan:
    """Plans one change of the index.

    `library` is given for a rebuild: the keys of every source in the library, all of
    which are in `reads`; a stored article whose source is not among them is kept
    unless `prune`. Without it (add, refresh, remove), articles of sources not read are
    left alone. `remove` are article ids removed explicitly; `excluded` article ids an
    admin removed, which reading their source does not bring back.
    """
    plan = Plan()
    read_keys = {read.key: read for read in reads}
    read_ids = {article.id for read in reads for article in read.articles}
    seen: set[str] = set()
    rekeyed: set[str] = set()
    for read in reads:
        plan.failed.extend(read.failures)
        for article in read.articles:
            if article.id in seen or _named(article, excluded) or _named(article, remove):
                continue
            seen.add(article.id)
            former = stored.get(article.former_id or "")
            if (
                article.id not in stored
                and former is not None
                and former.origin == read.key
                and former.id not in read_ids | rekeyed
            ):
                rekeyed.add(former.id)
                _rekey(plan, former, article, read.key)
                continue
            _plan_read(plan, stored.get(article.id), article, read.key)
    known = set(library) if library is not None else set(read_keys)
    for article_id, article in stored.items():
        if article_id in seen or article_id in rekeyed:
            continue
        if article_id in remove or article_id in excluded:
            _remove(plan, article)
            continue
        owner = article.origin if article.origin is not None else _owner(article, known)
        read = read_keys.get(owner) if owner is not None else None
        if read is not None and read.holds_unchanged(article_id):
            plan.unchanged.append(article.source)  # a 304, or a feed entry dated as before
        elif read is not None:
            reason = _kept_reason(article, read)
            if reason is None:
                _remove(plan, article)
                continue
            if reason != "":
                plan.kept.append(Kept(article.source, reason))
        elif library is not None:
            if prune:
                _remove(plan, article)
                continue
            plan.kept.append(Kept(article.source, UNCONFIGURED))
        plan.keep += article.complete_passage_ids
        plan.kept_articles.append(article_id)
        plan.drop += [pid for v in article.versions if not v.complete for pid in v.passage_ids]
    return plan


def _plan_read(plan: Plan, stored: StoredArticle | None, article: Article, origin: str) -> None:
    if stored is not None and (same := stored.complete_version(article.content_hash)):
        plan.keep += same.passage_ids
        plan.drop += [pid for pid in stored.passage_ids if pid not in set(same.passage_ids)]
        plan.unchanged.append(article.source)
        plan.unchanged_read.append((article, origin))
        return
    plan.embed.append((article, origin))
    if stored is None:
        plan.added.append(article.source)
    else:
        plan.drop += stored.passage_ids
        plan.changed.append(article.source)


def _named(article: Article, ids: Collection[str]) -> bool:
    return article.id in ids or (article.former_id is not None and article.former_id in ids)


def _rekey(plan: Plan, former: StoredArticle, article: Article, origin: str) -> None:
    """A JSON record indexed under its former id (its bare url) moves to its id now: the
    new passages are embedded before the old are dropped, as for any change."""
    plan.embed.append((article, origin))
    plan.drop += former.passage_ids
    plan.changed.append(article.source)


def _remove(plan: Plan, article: StoredArticle) -> None:
    plan.drop += article.passage_ids
    plan.removed.append(article.source)


def _kept_reason(article: StoredArticle, read: SourceRead) -> str | None:
    """Why an article its source's read lacks stays: a reason to report, "" to keep it
    without a word (a feed's old entry), None when it is removed."""
    if not read.ok:
        return UNREADABLE
    for failure in read.failures:
        if _within(article.id, failure.source) or _within(article.source, failure.source):
            return f"{failure.source} could not be read"
    if not read.complete:
        return ""
    return None


def _owner(article: StoredArticle, keys: Iterable[str]) -> str | None:
    """The library source an article indexed before the library came from: the source
    that is the article, or the folder or export holding it (the longest such)."""
    found = [k for k in keys if _within(article.id, k) or _within(article.source, k)]
    return max(found, key=len) if found else None


def _within(item: str, source: str) -> bool:
    base = source.rstrip("/")
    return item == source or item.startswith((base + "/", base + "#"))
