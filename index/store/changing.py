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
from collections.abc import Callable, Iterable, Sequence
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
from index.store.planning import Plan, SourceRead, StoredArticle, plan_changes
from index.store.writers import Writer

if TYPE_CHECKING:
    from index.store.article_index import ArticleIndex

Progress = Callable[[int], None]
# Encoder batches of passages a pipeline run embeds (docs/BENCHMARKS.md, "Batch size per
# device": 4 embedded 16% and 42% more passages per CPU-second than 1, in two rounds).
BATCHES_PER_RUN = 4
# Plans a change in place against the build it is given: (what it found stored, the plan).
Planner = Callable[[Any], tuple[dict[str, StoredArticle], Plan]]

log = logging.getLogger(__name__)


def rebuild_from_library(
    index: ArticleIndex,
    writer: Writer,
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
    report.passages_embedded = embed_into(index, writer, new, to_embed, progress, lease.renew)
    report.shared = writer.shared
    lease.check(index.client)
    # Ready before the switch: serving processes open it without reading the build.
    index.keyword_files.prepare(new)
    previous = index.builds.switch(new, rebuilt=True)
    if reusable and previous == old.name and not index.embedded:
        before = {pid for article in stored.values() for pid in article.passage_ids}
        catch_up(index, old, new, before)
    index.keyword_files.synced(new, index.connection.synced or "")
    # Another rebuild may have switched since this one started: drop whatever was
    # active at the switch (the one this rebuild started from is then gone already).
    if previous and previous != new.name:
        index.builds.delete(previous)
    library.save(records)
    return report


def catch_up(index: ArticleIndex, old: Any, new: Any, before: set[str]) -> None:
    """Brings into `new`, the build a rebuild on a Chroma server has just switched to,
    the changes other processes made in place in `old` while it ran (`before`: the
    passage ids `old` had when it started): what `old` gained is copied, not embedded
    again, and what it lost is deleted. A change whose last write comes after this read
    finds `new` active and is made again there (Builds.touch)."""
    from chromadb.errors import NotFoundError

    try:
        present = set(old.get(include=[])["ids"])
    except NotFoundError:  # another rebuild's clean-up, between the switch and now
        log.warning(
            "another rebuild deleted the previous build before this one copied what was "
            "added to it meanwhile: add those sources again if they are missing"
        )
        return
    gained, lost = sorted(present - before), sorted(before - present)
    if not gained and not lost:
        return
    log.info("bringing %d passages added and %d removed meanwhile", len(gained), len(lost))
    copy_passages(old, new, gained, lambda: None)
    for chunk in chunks(lost, PAGE):
        new.delete(ids=list(chunk))
    index.builds.touch(new)


def writable(index: ArticleIndex) -> Any:
    """The active build, made when there is none; refuses other index settings."""
    return same_settings(index, index.builds.active_or_new())


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
    writer: Writer,
    entries: list[LibrarySource],
    reading: Reading,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
    include: Sequence[str] = (),
) -> IndexReport:
    """Applies what reading `entries` gave, in place, under the write lock; records
    them in the library (a new source only when it could be read)."""
    writable(index)  # refuses other index settings before the library changes
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
    library.include(include)
    excluded = library.excluded() - set(include)

    def planned(collection: Any) -> tuple[dict[str, StoredArticle], Plan]:
        stored = stored_articles(collection, where={ORIGIN: {"$in": keys}}) if keys else {}
        read_ids = [a.id for r in reads for a in r.articles if a.id not in stored]
        stored |= stored_articles(collection, read_ids)
        return stored, plan_changes(stored, reads, excluded=excluded)

    stored, plan, report = apply_in_place(index, writer, planned, progress, on_total)
    report.sources = outcomes(reads)
    known = {s.key for s in library.sources()}
    records = with_changes(records, plan, stored)
    library.save(r for r, read in zip(records, reads, strict=True) if read.ok or r.key in known)
    library.save_pages(reading.pages)
    report.downloads = reading.downloads
    return report


def apply_in_place(
    index: ArticleIndex,
    writer: Writer,
    planned: Planner,
    progress: Progress | None,
    on_total: Callable[[int], None] | None,
    create: bool = True,
) -> tuple[dict[str, StoredArticle], Plan, IndexReport]:
    """Plans a change against the active build (made when there is none, if `create`)
    and applies it there. When a rebuild on a Chroma server switched to another build
    meanwhile, plans and applies it again against that one, where what the
    rebuild brought over (`catch_up`) no longer needs embedding. Returns the first
    plan, what it found stored, and its report."""
    from chromadb.errors import NotFoundError

    first: tuple[dict[str, StoredArticle], Plan, IndexReport] | None = None
    while True:
        collection = writable(index) if create else index.builds.require_active()
        stored, plan = planned(collection)
        if first is None:
            first = (stored, plan, report_of(plan))
            if on_total:
                on_total(len(plan.embed))
        report = first[2]
        try:
            report.passages_embedded += embed_into(
                index, writer, collection, plan.embed, progress if plan is first[1] else None
            )
            # The new versions first, then the old are deleted: a kill in between never
            # loses an article, and the next change sees two versions and cleans up.
            for chunk in chunks(plan.drop, PAGE):
                collection.delete(ids=list(chunk))
            if not (plan.embed or plan.drop) or index.builds.touch(collection):
                break
        except NotFoundError:
            pass  # a rebuild switched builds and deleted the one this change wrote into
        log.warning("a rebuild switched builds while this change was written: writing it again")
    if plan.embed or plan.drop:
        index.keyword_files.synced(collection, index.connection.synced or "")
    report.shared = writer.shared
    return first


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
    writer: Writer,
    collection: Any,
    articles: list[tuple[Article, str]],
    progress: Progress | None,
    renew: Callable[[], None] | None = None,
) -> int:
    """Embeds `articles` into `collection`, but for those another writer on the same
    Chroma server embeds (index/store/writers.py); returns the passages embedded."""
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
    embedded, shared = 0, writer.shared
    group: list[tuple[Article, str]] = []

    def run_group() -> None:
        nonlocal embedded
        if not group:
            return
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
        group.clear()

    # Articles go through together until they make a few encoder batches: one news
    # article (two or three passages) a run would leave most of a batch empty, and the
    # encoder sorts a run's passages by length, so a few batches pad less than one.
    # Memory is those passages' vectors (the encoder holds token vectors for one batch).
    # Before this writer waits for articles another writer claimed, its own go through:
    # the other may be waiting for them.
    passages_per_run = encoder.embed_batch_size * BATCHES_PER_RUN
    counted = 0
    for item in writer.articles_to_embed(collection, articles, before_waiting=run_group):
        if not group:
            counted = 0
        group.append(item)
        counted += max(1, -(-len(item[0].text) // index.settings.passage_chars))
        if counted >= passages_per_run:
            run_group()
    run_group()
    if progress and writer.shared > shared:
        progress(writer.shared - shared)
    log.info("embedded %d passages; %d articles by other writers", embedded, writer.shared - shared)
    return embedded


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
