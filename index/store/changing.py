"""How a change reaches the index, for `ArticleIndex` (index/store/article_index.py):
sources are read (fetched) without the write lock, planned (index/store/planning.py),
then applied under it: a rebuild into a new build it switches to once complete, the
others in place, new passages embedded before old ones are deleted, so a kill at any
point leaves an index that answers.
"""

from __future__ import annotations

import getpass
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from index.articles import Article
from index.errors import IndexMismatchError, SettingsError, SourceError
from index.report import Failure, IndexReport
from index.sources.fetch import CLI_POLICY, FetchPolicy, is_url
from index.sources.formats import NOT_UTF8_NAME, escaped, is_utf8
from index.sources.library import LibrarySource, PageState, SourceLibrary
from index.sources.reading import LibraryReader, local_kind, source_key
from index.store.build_records import (
    ORIGIN,
    PAGE,
    articles_from_passages,
    chunks,
    copy_passages,
    stored_articles,
)
from index.store.builds import ActiveBuildMissing, Lease, identity_of, now
from index.store.planning import Plan, SourceRead, plan_changes

if TYPE_CHECKING:
    from index.store.article_index import ArticleIndex

Progress = Callable[[int], None]
# Encoder batches of passages a pipeline run embeds (docs/BENCHMARKS.md, "Batch size per
# device": 4 embedded 16% and 42% more passages per CPU-second than 1, in two rounds).
BATCHES_PER_RUN = 4

log = logging.getLogger(__name__)


def rebuild_from_library(
    index: ArticleIndex,
    configured: list[str],
    prune: bool,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
) -> IndexReport:
    try:
        old = index.builds.active()
    except ActiveBuildMissing as missing:
        log.warning("%s; building a new index from the library", missing)
        old = None
    reusable = old is not None and identity_of(old.metadata) == index.builds.identity()
    stored = stored_articles(old)
    library = index.library
    known = {s.key: s for s in library.sources()}
    if not configured and not stored and not known:
        raise SettingsError(
            "there are no sources to index: set index.sources in the settings file "
            "(`citebot config` names it) or pass --sources PATH_OR_URL"
        )
    library.set_configured(configured, {k: kind_of(k, known) for k in configured}, now())
    entries = library.sources()
    reader = library_reader(index, library, set(stored), prune=prune)
    reads, records = read_all(index, reader, entries)
    library.save_pages(reader.pages)
    plan = plan_changes(
        stored, reads, [e.key for e in entries], prune=prune, excluded=library.excluded()
    )
    report = report_of(plan)
    report.sources = outcomes(reads)
    records = with_changes(records, plan, stored)
    index.builds.drop_abandoned(keep={old.name} if old is not None else set())
    if reusable and not plan.changes_anything:
        # Nothing changed: the active build already is the index asked for.
        index.builds.mark_rebuilt()
        library.save(records)
        return report
    new = index.builds.create()
    lease = Lease(new)
    to_embed = list(plan.embed)
    if reusable:
        copy_passages(old, new, plan.keep, lease.renew)
    elif old is not None:
        # Other index settings: every vector is made again, kept articles' from the
        # text stored with them (their sources cannot be read now).
        kept = [pid for a in plan.kept_articles for pid in stored[a].complete_passage_ids]
        to_embed += plan.unchanged_read + articles_from_passages(old, kept)
    if on_total:
        on_total(len(to_embed))
    report.passages_embedded = embed_into(index, new, to_embed, progress, lease.renew)
    lease.check(index.client)
    # Ready before the switch: serving processes open it without reading the build.
    index.keyword_files.prepare(new)
    previous = index.builds.switch(new, rebuilt=True)
    index.keyword_files.synced(new, index.connection.synced or "")
    # Another rebuild may have switched since this one started: drop whatever was
    # active at the switch (the one this rebuild started from is then gone already).
    if previous and previous != new.name:
        index.builds.delete(previous)
    library.save(records)
    return report


def writable(index: ArticleIndex) -> Any:
    """The active build, made when there is none; refuses other index settings."""
    collection = same_settings(index, index.builds.active())
    if collection is None:
        collection = index.builds.create()
        index.builds.switch(collection, rebuilt=False)
    return collection


def same_settings(index: ArticleIndex, collection: Any | None) -> Any | None:
    """`collection`; refuses one built with other index settings."""
    if collection is not None and identity_of(collection.metadata) != index.builds.identity():
        raise IndexMismatchError(
            "the index was built with other index settings (model, backend or passage "
            "size): run `citebot index rebuild` before adding"
        )
    return collection


def read_sources(
    index: ArticleIndex,
    entries: list[LibrarySource],
    policy: FetchPolicy,
    conditional: bool = False,
) -> Reading:
    """Reads (fetches) `entries` and writes nothing: `add` and `refresh` read before
    they take the write lock, so other changes need not wait for slow servers."""
    collection = same_settings(index, index.builds.active())  # refused before fetching
    keys = [e.key for e in entries]
    indexed = stored_articles(collection, where={ORIGIN: {"$in": keys}}) if keys else {}
    reader = library_reader(index, index.library, set(indexed), policy, conditional)
    reads, records = read_all(index, reader, entries)
    return Reading(reads, records, reader.pages, reader.downloads)


def change_in_place(
    index: ArticleIndex,
    entries: list[LibrarySource],
    reading: Reading,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
    include: Sequence[str] = (),
) -> IndexReport:
    """Applies what reading `entries` gave, in place, under the write lock; records
    them in the library (a new source only when it could be read)."""
    collection = writable(index)
    library = index.library
    # Read before the lock was taken: a source removed since stays removed (unless
    # this adds it), and one shared since stays shared.
    current = {s.key: s for s in library.sources()}
    kept = [i for i, e in enumerate(entries) if e.key in current or e.key in include]
    entries = [entries[i] for i in kept]
    reads = [reading.reads[i] for i in kept]
    records = [
        replace(r, visible_in=current[r.key].visible_in) if r.key in current else r
        for r in (reading.records[i] for i in kept)
    ]
    keys = [e.key for e in entries]
    stored = stored_articles(collection, where={ORIGIN: {"$in": keys}}) if keys else {}
    read_ids = [a.id for r in reads for a in r.articles if a.id not in stored]
    stored |= stored_articles(collection, read_ids)
    library.include(include)
    plan = plan_changes(stored, reads, excluded=library.excluded() - set(include))
    report = apply_plan(index, collection, plan, progress, on_total)
    report.sources = outcomes(reads)
    known = {s.key for s in library.sources()}
    records = with_changes(records, plan, stored)
    library.save(r for r, read in zip(records, reads, strict=True) if read.ok or r.key in known)
    library.save_pages(reading.pages)
    report.downloads = reading.downloads
    return report


def apply_plan(
    index: ArticleIndex,
    collection: Any,
    plan: Plan,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
) -> IndexReport:
    report = report_of(plan)
    if on_total:
        on_total(len(plan.embed))
    # The new versions first, then the old are deleted: a kill in between never
    # loses an article, and the next change sees two versions and cleans up.
    report.passages_embedded = embed_into(index, collection, plan.embed, progress)
    for chunk in chunks(plan.drop, PAGE):
        collection.delete(ids=list(chunk))
    if plan.embed or plan.drop:
        index.builds.switch(collection, rebuilt=False)
        index.keyword_files.synced(collection, index.connection.synced or "")
    return report


def library_reader(
    index: ArticleIndex,
    library: SourceLibrary,
    indexed: set[str],
    policy: FetchPolicy = CLI_POLICY,
    conditional: bool = False,
    prune: bool = False,
) -> LibraryReader:
    return LibraryReader(
        library,
        index.settings.json_keys,
        policy,
        conditional,
        indexed=indexed,
        allowed_hosts=index.settings.allowed_hosts,
        max_chars=index.settings.max_article_chars,
        prune=prune,
        max_feed_entries=index.settings.max_feed_entries,
        fetch_budget=index.settings.max_page_fetches,
    )


def read_all(
    index: ArticleIndex, reader: LibraryReader, entries: Iterable[LibrarySource]
) -> tuple[list[SourceRead], list[LibrarySource]]:
    reads, records = [], []
    for entry in entries:
        read, record = reader.read(entry, now())
        reads.append(read)
        records.append(record)
    return reads, records


def embed_into(
    index: ArticleIndex,
    collection: Any,
    articles: list[tuple[Article, str]],
    progress: Progress | None,
    renew: Callable[[], None] | None = None,
) -> int:
    if not articles:
        return 0  # and the model need not be loaded
    from llama_index.core.ingestion import IngestionPipeline

    from index.embedding.passages import PassageEncoder, PassageSplitter, article_document

    encoder = index._loaded_encoder()
    pipeline = IngestionPipeline(
        transformations=[
            PassageSplitter(
                max_sentences=index.settings.passage_sentences,
                max_chars=index.settings.passage_chars,
            ),
            PassageEncoder(encoder=encoder),
        ],
        # Chroma is the record of what was embedded; the pipeline's own cache would
        # hash and keep every node of a rebuild in memory for nothing.
        disable_cache=True,
    )
    embedded = 0
    # Articles go through together until they make a few encoder batches: one news
    # article (two or three passages) a run would leave most of a batch empty, and the
    # encoder sorts a run's passages by length, so a few batches pad less than one.
    # Memory is those passages' vectors (the encoder holds token vectors for one batch).
    passages_per_run = encoder.embed_batch_size * BATCHES_PER_RUN
    for group in article_batches(articles, passages_per_run, index.settings.passage_chars):
        nodes = pipeline.run(documents=[article_document(article) for article, _ in group])
        origins = {article.id: origin for article, origin in group}
        counts = Counter(node.metadata["article_id"] for node in nodes)
        for chunk in chunks(nodes, index.client.get_max_batch_size()):
            collection.add(
                ids=[n.node_id for n in chunk],
                embeddings=[n.embedding for n in chunk],
                documents=[n.get_content() for n in chunk],
                metadatas=[
                    n.metadata
                    | {
                        "passages": counts[n.metadata["article_id"]],
                        ORIGIN: origins[n.metadata["article_id"]],
                    }
                    for n in chunk
                ],
            )
        embedded += len(nodes)
        if renew:
            renew()
        if progress:
            for _ in group:  # the bar counts articles
                progress(1)
    return embedded


def article_batches(
    articles: list[tuple[Article, str]], passages: int, passage_chars: int
) -> Iterator[list[tuple[Article, str]]]:
    """`articles` in runs of at least about `passages` passages (the last may be short),
    counting each article as its characters over `passage_chars`, at least one."""
    group: list[tuple[Article, str]] = []
    counted = 0
    for item in articles:
        group.append(item)
        counted += max(1, -(-len(item[0].text) // passage_chars))
        if counted >= passages:
            yield group
            group, counted = [], 0
    if group:
        yield group


@dataclass(frozen=True)
class Reading:
    """What reading some sources gave, before anything was written."""

    reads: list[SourceRead]
    records: list[LibrarySource]
    pages: list[PageState]
    downloads: int


def report_of(plan: Plan) -> IndexReport:
    return IndexReport(
        added=list(plan.added),
        changed=list(plan.changed),
        unchanged=list(plan.unchanged),
        removed=list(plan.removed),
        failed=list(plan.failed),
        kept=[Failure(k.article, k.reason) for k in plan.kept],
    )


def outcomes(reads: Sequence[SourceRead]) -> list[tuple[str, str]]:
    return [(read.key, read.outcome()) for read in reads]


def with_changes(
    records: list[LibrarySource], plan: Plan, stored: dict[str, Any]
) -> list[LibrarySource]:
    """Stamps `last_change` on the sources whose articles the plan adds, changes or removes."""
    changed = {origin for _, origin in plan.embed}
    removed = set(plan.removed)
    changed |= {a.origin for a in stored.values() if a.source in removed and a.origin}
    stamp = now()
    return [replace(r, last_change=stamp) if r.key in changed else r for r in records]


def utf8_keys(sources: Iterable[str]) -> list[str]:
    """The library keys of `sources`; a name that is not UTF-8 cannot be one (the store
    keeps keys as UTF-8), which is one line before anything changes."""
    keys = [source_key(s) for s in sources]
    for key in keys:
        if not is_utf8(key):
            raise SourceError(escaped(key), NOT_UTF8_NAME + ": nothing was changed")
    return keys


def records_at(collection: Any, url: str) -> dict[str, Any]:
    """The JSON records whose url is `url`: their id before ids named their export."""
    found = stored_articles(collection, where={"url": url})
    return {i: a for i, a in found.items() if i.endswith("#" + url)}


def kind_of(key: str, known: dict[str, LibrarySource]) -> str:
    if key in known:
        return known[key].kind
    return "url" if is_url(key) else local_kind(key)


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
