"""Change planning, a pure function: stored articles + what the library read -> the plan.
No Chroma, no model."""

from __future__ import annotations

from dataclasses import replace as dataclass_replace

from index.articles import Article
from index.report import Failure
from index.store.planning import (
    UNCONFIGURED,
    UNREADABLE,
    SourceRead,
    StoredArticle,
    StoredVersion,
    plan_changes,
)

FOLDER = "/news"


def article(name: str, text: str = "Text.", folder: str = FOLDER) -> Article:
    path = f"{folder}/{name}"
    return Article(id=path, title=name, text=text, source=path)


def stored(a: Article, origin: str | None = FOLDER, complete: bool = True) -> StoredArticle:
    ids = (f"{a.id}|{a.content_hash[:16]}|0", f"{a.id}|{a.content_hash[:16]}|1")
    return StoredArticle(a.id, a.source, origin, (StoredVersion(a.content_hash, ids, complete),))


def index_of(*articles: StoredArticle) -> dict[str, StoredArticle]:
    return {a.id: a for a in articles}


def test_unchanged_articles_are_kept_and_new_ones_embedded() -> None:
    old, new = article("a.txt"), article("b.txt")
    plan = plan_changes(index_of(stored(old)), [SourceRead(FOLDER, True, (old, new))], [FOLDER])

    assert plan.unchanged == [old.source]
    assert plan.added == [new.source]
    assert [a for a, _ in plan.embed] == [new]
    assert set(plan.keep) == set(stored(old).passage_ids)
    assert plan.drop == [] and plan.removed == []


def test_changed_article_is_embedded_and_its_old_version_dropped() -> None:
    old = article("a.txt", "Old text.")
    new = article("a.txt", "New text.")
    plan = plan_changes(index_of(stored(old)), [SourceRead(FOLDER, True, (new,))])

    assert plan.changed == [new.source]
    assert plan.embed == [(new, FOLDER)]
    assert set(plan.drop) == set(stored(old).passage_ids)


def test_article_gone_from_a_folder_that_was_read_is_removed() -> None:
    gone, stays = article("gone.txt"), article("stays.txt")
    plan = plan_changes(
        index_of(stored(gone), stored(stays)), [SourceRead(FOLDER, True, (stays,))], [FOLDER]
    )

    assert plan.removed == [gone.source]
    assert set(plan.drop) == set(stored(gone).passage_ids)
    assert not set(plan.keep) & set(plan.drop)


def test_unreadable_source_keeps_its_articles_and_says_why() -> None:
    kept = article("a.txt")
    failure = Failure(FOLDER, "no such file or folder")
    plan = plan_changes(
        index_of(stored(kept)), [SourceRead(FOLDER, False, failures=(failure,))], [FOLDER]
    )

    assert plan.removed == [] and plan.drop == []
    assert [(k.article, k.reason) for k in plan.kept] == [(kept.source, UNREADABLE)]
    assert set(plan.keep) == set(stored(kept).passage_ids)
    assert plan.failed == [failure]


def test_a_broken_entry_of_a_folder_keeps_its_article() -> None:
    broken, fine = article("broken.txt"), article("fine.txt")
    failure = Failure(broken.source, "not UTF-8 text")
    plan = plan_changes(
        index_of(stored(broken), stored(fine)),
        [SourceRead(FOLDER, True, (fine,), (failure,))],
        [FOLDER],
    )

    assert plan.removed == []
    assert [k.article for k in plan.kept] == [broken.source]


def test_a_feed_only_adds() -> None:
    feed = "https://example.com/feed.xml"
    old = Article("https://example.com/old", "Old", "Old.", "https://example.com/old")
    new = Article("https://example.com/new", "New", "New.", "https://example.com/new")
    plan = plan_changes(
        index_of(stored(old, origin=feed)), [SourceRead(feed, True, (new,), complete=False)], [feed]
    )

    assert plan.added == [new.id]
    assert plan.removed == [] and plan.kept == []


def test_what_a_source_says_is_unchanged_is_reported_unchanged_and_kept() -> None:
    page = "https://example.com/story"
    story = Article(page, "Story", "Story.", page)
    # The server answered 304: the page's article is unchanged, not silently kept.
    not_modified = SourceRead(page, True, complete=False, not_modified=True)
    plan = plan_changes(index_of(stored(story, origin=page)), [not_modified])
    assert plan.unchanged == [page] and plan.keep == stored(story).passage_ids
    assert plan.embed == plan.drop == plan.removed == plan.kept == []

    # A feed: the entry it dated as before is unchanged; one gone from it only stays.
    feed = "https://example.com/feed.xml"
    dated, gone = (Article(f"{feed}-{n}", n, "Text.", f"{feed}-{n}") for n in ("dated", "gone"))
    read = SourceRead(feed, True, complete=False, unchanged=(dated.id,))
    plan = plan_changes(index_of(stored(dated, origin=feed), stored(gone, origin=feed)), [read])
    assert plan.unchanged == [dated.id] and plan.removed == plan.kept == []
    assert len(plan.keep) == 4


def test_unconfigured_source_is_kept_unless_pruned() -> None:
    other = article("a.txt", folder="/old-news")
    reads = [SourceRead(FOLDER, True, ())]

    kept = plan_changes(index_of(stored(other, origin="/old-news")), reads, [FOLDER])
    pruned = plan_changes(index_of(stored(other, origin="/old-news")), reads, [FOLDER], prune=True)

    assert kept.removed == [] and [k.reason for k in kept.kept] == [UNCONFIGURED]
    assert pruned.removed == [other.source]


def test_articles_indexed_before_the_library_are_matched_to_their_folder() -> None:
    gone, stays = article("gone.txt"), article("stays.txt")
    plan = plan_changes(
        index_of(stored(gone, origin=None), stored(stays, origin=None)),
        [SourceRead(FOLDER, True, (stays,))],
        [FOLDER],
    )

    assert plan.removed == [gone.source]


def test_partial_changes_leave_other_sources_alone() -> None:
    other = article("a.txt", folder="/elsewhere")
    new = article("b.txt")
    plan = plan_changes(
        index_of(stored(other, origin="/elsewhere")), [SourceRead(FOLDER, True, (new,))]
    )

    assert plan.removed == [] and plan.kept == [] and plan.drop == []


def test_explicit_remove_removes_exactly_that_article() -> None:
    one, two = article("one.txt"), article("two.txt")
    plan = plan_changes(index_of(stored(one), stored(two)), [], remove={one.id})

    assert plan.removed == [one.source]
    assert set(plan.drop) == set(stored(one).passage_ids)


def test_excluded_article_is_not_brought_back_by_its_folder() -> None:
    removed = article("removed.txt")
    plan = plan_changes({}, [SourceRead(FOLDER, True, (removed,))], [FOLDER], excluded={removed.id})

    assert plan.embed == [] and plan.added == []


def test_incomplete_version_is_embedded_again_and_cleaned_up() -> None:
    half = article("a.txt")
    plan = plan_changes(index_of(stored(half, complete=False)), [SourceRead(FOLDER, True, (half,))])

    assert plan.changed == [half.source]
    assert plan.embed == [(half, FOLDER)]
    assert set(plan.drop) == set(stored(half).passage_ids)


def test_identical_text_under_two_sources_is_two_articles() -> None:
    one = Article(id="/news/one.txt", title="Wire", text="Same.", source="/news/one.txt")
    two = Article(id="/copies/one.txt", title="Wire", text="Same.", source="/copies/one.txt")
    plan = plan_changes({}, [SourceRead(FOLDER, True, (one, two))])

    assert [a.id for a, _ in plan.embed] == [one.id, two.id]
    assert one.content_hash == two.content_hash


def record(export: str, url: str, text: str = "Text.") -> Article:
    return Article(id=f"{export}#{url}", title=url, text=text, source=export, url=url)


def test_a_record_indexed_under_its_bare_url_is_rekeyed_and_nothing_is_lost() -> None:
    """Before issue 29 a JSON record's id was its url; its export's next read moves it to
    `export#url`, embedding it before the old passages go."""
    export, url = "/exports/wire.jsonl", "https://n.example/a"
    new = record(export, url)
    former = stored(dataclass_replace(new, id=url), origin=export)

    plan = plan_changes(index_of(former), [SourceRead(export, True, (new,))], [export])

    assert plan.embed == [(new, export)]
    assert set(plan.drop) == set(former.passage_ids)
    assert plan.changed == [export] and plan.removed == [] and plan.kept == []


def test_a_bare_url_another_source_reads_is_not_rekeyed_away() -> None:
    export, url = "/exports/wire.jsonl", "https://n.example/a"
    page = Article(id=url, title="Page", text="The page.", source=url, url=url)
    forged_before = stored(dataclass_replace(page, text="Forged."), origin=export)
    reads = [SourceRead(export, True, (record(export, url),)), SourceRead(url, True, (page,))]

    plan = plan_changes(index_of(forged_before), reads, [export, url])

    assert sorted(a.id for a, _ in plan.embed) == sorted([url, f"{export}#{url}"])
    assert plan.changed == [url] and plan.added == [export]


def test_an_article_removed_under_its_former_id_stays_removed() -> None:
    export, url = "/exports/wire.jsonl", "https://n.example/a"
    plan = plan_changes({}, [SourceRead(export, True, (record(export, url),))], excluded={url})

    assert plan.embed == [] and plan.added == []
