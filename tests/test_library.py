"""The source library, end to end: a real Chroma store, the real model, a loopback site.

What an admin adds survives rebuilds and settings changes; an article leaves only when
removed or when its source was read and lacks it; feeds refresh with conditional
requests; Slack may add only public URLs."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_settings
from fake_site import Site, fake_site, rss
from test_index import write_articles

from bot.answering.answerer import Answerer
from bot.cli import main
from bot.sources_admin import add_from_slack
from index.errors import IndexMismatchError
from index.store.article_index import ArticleIndex

pytestmark = pytest.mark.slow

GLACIER = "Glacier shrinks\n\nThe Vatnaholt glacier lost four metres of ice this summer."
MEMO = "Council memo\n\nThe council will repaint the old lighthouse in green next spring."
WIRE = "Wire story\n\nThe mayor of Tallinn cut the ribbon on the new bridge."


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def ask(index: ArticleIndex, question: str) -> str:
    answer = Answerer(index, index.settings).answer(question)
    return answer.citations[0].text if answer.citations else ""


def write_settings(path: Path, home: Path, sources: list[str] | None) -> Path:
    lines = ["[index]", f'home = "{home}"']
    if sources is not None:
        lines.append("sources = [" + ", ".join(json.dumps(s) for s in sources) + "]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_added_file_url_and_upload_survive_rebuild_and_settings_change(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    story = tmp_path / "elsewhere" / "glacier.txt"
    story.parent.mkdir()
    story.write_text(GLACIER, encoding="utf-8")
    settings = make_settings(tmp_path / "home", sources=(str(folder),))
    index = ArticleIndex(settings)
    with fake_site() as site:
        url = site.put("/wire.txt", WIRE)
        assert index.rebuild().ok
        assert index.add([str(story)]).added == [str(story)]
        assert index.add([url]).added == [url]
        assert index.add_bytes("memo.txt", MEMO.encode(), uploaded_by="U1").added == [
            "upload://U1/memo.txt"
        ]

        again = index.rebuild()
        assert again.ok and again.removed == [] and len(again.unchanged) == 5
        assert again.passages_embedded == 0

        # Other index settings: everything is embedded again, the upload from its kept
        # bytes, and the URL, which fails now, from the text stored with it.
        site.put("/wire.txt", "down", status=503)
        changed = dataclasses.replace(settings, passage_chars=900)
        report = ArticleIndex(changed).rebuild()
    assert report.removed == []
    assert [f.reason for f in report.failed] == ["HTTP 503 Service Unavailable"]
    rebuilt = ArticleIndex(changed)
    assert rebuilt.status().articles == 5
    assert "lighthouse in green" in ask(
        rebuilt, "What colour will the council paint the lighthouse?"
    )
    assert "cut the ribbon" in ask(rebuilt, "Who cut the ribbon on the new bridge?")
    assert "four metres" in ask(rebuilt, "How much ice did the Vatnaholt glacier lose?")


def test_mistyped_sources_path_removes_nothing_and_exits_1(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "news")
    assert run("index", "rebuild", "--sources", str(folder))[0] == 0

    code, out, err = run("index", "rebuild", "--sources", str(tmp_path / "nwes"))

    assert code == 1
    assert f"Error: {tmp_path / 'nwes'}: no such file or folder" in err
    assert "Traceback" not in out + err
    assert json.loads(run("status", "--json")[1])["articles"] == 2


def test_settings_without_sources_remove_nothing_unless_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_articles(tmp_path / "news")
    home = tmp_path / "home"
    monkeypatch.setenv("CITEBOT_HOME", str(home))
    monkeypatch.setenv(
        "CITEBOT_CONFIG", str(write_settings(tmp_path / "a.toml", home, [str(folder)]))
    )
    assert run("index", "rebuild")[0] == 0
    monkeypatch.setenv("CITEBOT_CONFIG", str(write_settings(tmp_path / "b.toml", home, None)))

    code, out, _ = run("index", "rebuild")
    assert code == 0
    assert "0 removed" in out
    assert "kept 2 article(s): its source is no longer configured or added" in out
    assert "--prune" in out
    assert json.loads(run("status", "--json")[1])["articles"] == 2

    code, out, _ = run("index", "rebuild", "--prune")
    assert code == 0 and "2 removed" in out
    assert json.loads(run("status", "--json")[1])["articles"] == 0


def test_remove_removes_exactly_one_article_and_a_rebuild_does_not_bring_it_back(
    tmp_path: Path,
) -> None:
    folder = write_articles(tmp_path / "news")
    assert run("index", "rebuild", "--sources", str(folder))[0] == 0

    code, out, _ = run("remove", str(folder / "harbour.txt"))
    assert code == 0 and "1 removed" in out and f"removed: {folder / 'harbour.txt'}" in out
    assert json.loads(run("status", "--json")[1])["articles"] == 1
    assert "0 removed" in run("index", "rebuild", "--sources", str(folder))[1]
    assert json.loads(run("status", "--json")[1])["articles"] == 1

    code, out, _ = run("add", str(folder / "harbour.txt"))
    assert code == 0 and out.startswith("1 added")

    code, _, err = run("remove", str(tmp_path / "nothing.txt"))
    assert code == 1 and "is neither a source nor an indexed article" in err


def test_removing_an_added_source_removes_its_articles_only(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "news")
    extra = write_articles(tmp_path / "extra", {"glacier.txt": GLACIER, "memo.txt": MEMO})
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))
    index.rebuild()
    index.add([str(extra)])
    assert index.status().articles == 4

    report = index.remove([str(extra)])

    assert sorted(report.removed) == sorted(str(extra / n) for n in ("glacier.txt", "memo.txt"))
    assert index.status().articles == 2
    assert [s.source.key for s in index.sources()] == [str(folder)]


def test_sources_are_counted_in_the_snapshot_without_reading_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_articles(tmp_path / "news")
    extra = write_articles(tmp_path / "extra", {"glacier.txt": GLACIER, "memo.txt": MEMO})
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))
    index.rebuild()
    index.add([str(extra)])

    def read_every_passage(*args: object, **kwargs: object) -> None:
        raise AssertionError("the store's metadata of every passage was read")

    # A serving process answers /citebot sources from what it holds (at a million
    # passages, reading their metadata means reading their sentence vectors too).
    monkeypatch.setattr("index.store.article_index.stored_articles", read_every_passage)
    counts = {s.source.key: s.indexed for s in index.sources()}
    assert counts == {str(folder): 2, str(extra): 2}


def test_feed_refresh_adds_new_entries_and_an_unchanged_feed_costs_nothing(
    tmp_path: Path,
) -> None:
    index = ArticleIndex(make_settings(tmp_path / "home", sources=()))
    with fake_site() as site:
        site.put("/a.txt", GLACIER)
        site.put("/b.txt", MEMO)
        feed = site.put(
            "/feed.xml",
            rss(site, [("/a.txt", "Glacier"), ("/b.txt", "Memo")]),
            content_type="application/rss+xml",
        )
        first = index.add([feed])
        assert sorted(first.added) == sorted([site.base + "/a.txt", site.base + "/b.txt"])

        unchanged = index.refresh()
        assert unchanged.added == unchanged.changed == unchanged.failed == []
        assert unchanged.passages_embedded == 0 and unchanged.downloads == 0
        headers = site.requested("/feed.xml")[-1]
        assert headers["If-None-Match"] and headers["If-Modified-Since"]
        assert len(site.requested("/a.txt")) == 1, "an unchanged entry is not fetched again"

        site.put("/c.txt", WIRE)
        site.put(
            "/feed.xml",
            rss(site, [("/c.txt", "Bridge"), ("/a.txt", "Glacier")]),
            content_type="application/rss+xml",
        )
        newer = index.refresh()
    assert newer.added == [site.base + "/c.txt"]
    assert newer.removed == [], "an entry gone from a feed stays indexed"
    assert index.status().articles == 3
    assert "cut the ribbon" in ask(index, "Who cut the ribbon on the new bridge?")
    (source,) = index.sources()
    assert source.source.kind == "feed" and source.indexed == 3


def test_a_huge_feed_is_read_in_capped_parts_and_a_dead_entry_is_not_asked_each_time(
    tmp_path: Path,
) -> None:
    """Issue 29 #5: a 300-entry feed reads its first `max_feed_entries`, and fetches at
    most `max_page_fetches` pages a read (the rest come with the next); an entry whose
    page fails is reported once and not asked again on the next refresh (back-off)."""
    settings = make_settings(tmp_path / "home", sources=(), max_feed_entries=4, max_page_fetches=2)
    index = ArticleIndex(settings)
    with fake_site() as site:
        site.put("/gone.txt", "gone", status=500)
        for n, text in enumerate((GLACIER, MEMO, WIRE)):
            site.put(f"/{n}.txt", text)
        paths = ["/gone.txt", "/0.txt", "/1.txt", "/2.txt"] + [f"/x{n}.txt" for n in range(296)]
        feed = site.put(
            "/feed.xml", rss(site, [(p, p) for p in paths]), content_type="application/rss+xml"
        )
        first = index.add([feed])
        second = index.refresh()
        third = index.refresh()
        fetched = [path for path, _ in site.requests if path != "/feed.xml"]
    assert sorted(fetched) == ["/0.txt", "/1.txt", "/2.txt", "/gone.txt"]  # once each, x* never
    assert first.added == [site.base + "/0.txt"] and second.added == sorted(
        [site.base + "/1.txt", site.base + "/2.txt"]
    )
    reasons = [f.reason for f in first.failed]
    assert "296 more entries not read: sources.max_feed_entries reads the first 4" in reasons
    assert (
        "2 entries left for the next read: sources.max_page_fetches pages were fetched "
        "in this one" in reasons
    )
    assert any(f.source == site.base + "/gone.txt" for f in first.failed)
    assert not any(f.source == site.base + "/gone.txt" for f in second.failed + third.failed)
    assert third.added == third.changed == [] and index.status().articles == 3


def test_an_add_does_not_wait_for_a_refresh_fetching_a_slow_feed(tmp_path: Path) -> None:
    """Issue 29 #5: the refresh fetches before it takes the write lock."""
    index = ArticleIndex(make_settings(tmp_path / "home", sources=()))
    story = tmp_path / "glacier.txt"
    story.write_text(GLACIER, encoding="utf-8")
    with fake_site() as site:
        site.put("/a.txt", MEMO)
        feed = site.put(
            "/feed.xml", rss(site, [("/a.txt", "Memo")]), content_type="application/rss+xml"
        )
        assert index.add([feed]).added == [site.base + "/a.txt"]  # the model loaded too
        site.put("/b.txt", WIRE, delay=8)
        site.put(
            "/feed.xml",
            rss(site, [("/b.txt", "Bridge"), ("/a.txt", "Memo")]),
            content_type="application/rss+xml",
        )
        refreshing = threading.Thread(target=index.refresh)
        refreshing.start()
        deadline = time.monotonic() + 30
        while not site.requested("/b.txt") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert index.add([str(story)]).added == [str(story)]
        assert refreshing.is_alive(), "the add waited for the slow refresh"
        refreshing.join()
    assert index.status().articles == 3


def test_a_source_removed_or_shared_while_a_refresh_fetches_stays_so(tmp_path: Path) -> None:
    """The refresh reads before it takes the write lock, so a removal or a share may come
    in between: the refresh neither brings the removed feed back nor makes the shared
    one private again."""
    index = ArticleIndex(make_settings(tmp_path / "home", sources=()))
    with fake_site() as site:
        site.put("/a.txt", MEMO)
        site.put("/b.txt", WIRE)
        feeds = [
            site.put(f"/{name}.xml", rss(site, [(page, name)]), content_type="application/rss+xml")
            for name, page in (("gone", "/a.txt"), ("shared", "/b.txt"))
        ]
        assert index.add(feeds, visible_in="C0PRIVATE").ok
        for name, page in (("gone", "/a2.txt"), ("shared", "/b2.txt")):
            site.put(page, GLACIER, delay=4)
            site.put(f"/{name}.xml", rss(site, [(page, name)]), content_type="application/rss+xml")
        refreshing = threading.Thread(target=index.refresh)
        refreshing.start()
        deadline = time.monotonic() + 30
        while not site.requested("/b2.txt") and time.monotonic() < deadline:
            time.sleep(0.05)
        index.remove([feeds[0]])
        assert index.share([feeds[1]]) == [feeds[1]]
        refreshing.join()
    [kept] = index.library.sources()
    assert kept.key == feeds[1] and kept.visible_in == ""
    assert index.status().articles == 2  # the shared feed's two entries


def test_an_add_to_an_index_built_with_other_settings_is_refused_before_fetching(
    tmp_path: Path,
) -> None:
    """The mismatch is known before any page is asked for: add and refresh refuse then,
    not after fetching every feed for nothing."""
    settings = make_settings(tmp_path / "home", sources=())
    index = ArticleIndex(settings)
    other = ArticleIndex(dataclasses.replace(settings, passage_chars=500), encoder=index.encoder)
    with fake_site() as site:
        site.put("/a.txt", MEMO)
        site.put("/b.txt", WIRE)
        feed = site.put(
            "/feed.xml", rss(site, [("/a.txt", "Memo")]), content_type="application/rss+xml"
        )
        assert index.add([feed]).added == [site.base + "/a.txt"]
        asked = len(site.requests)
        with pytest.raises(IndexMismatchError, match="run `citebot index rebuild`"):
            other.add([site.base + "/b.txt"])
        with pytest.raises(IndexMismatchError, match="run `citebot index rebuild`"):
            other.refresh()
        assert len(site.requests) == asked
    assert index.status().articles == 1


def test_refresh_counts_what_the_servers_say_is_unchanged_and_verbose_says_how_each_was_read(
    tmp_path: Path,
) -> None:
    with fake_site() as site:
        page = site.put("/story.txt", GLACIER)
        site.put("/a.txt", MEMO)
        entries = [("/a.txt", "Memo")]
        feed = site.put("/feed.xml", rss(site, entries), content_type="application/rss+xml")
        assert run("add", page, feed)[0] == 0
        # One request each: adding a URL fetches it once.
        assert [len(site.requested(p)) for p in ("/story.txt", "/feed.xml", "/a.txt")] == [1, 1, 1]

        # Both answer 304: the page and the feed's entry are unchanged, not left uncounted.
        code, out, _ = run("refresh")
        assert code == 0
        assert out.splitlines() == ["0 added, 0 changed, 2 unchanged, 0 removed, 0 failed"]

        site.put("/c.txt", WIRE)
        entries.append(("/c.txt", "Bridge"))
        site.put("/feed.xml", rss(site, entries), content_type="application/rss+xml")
        code, out, _ = run("refresh", "--verbose")
    lines = out.splitlines()
    assert lines[0] == "1 added, 0 changed, 2 unchanged, 0 removed, 0 failed"
    assert (
        f"source: {page}: not modified since the last read (HTTP 304), nothing downloaded" in lines
    )
    assert f"source: {feed}: read, 1 article, 1 unchanged not downloaded again" in lines
    assert {
        f"unchanged: {page}",
        f"unchanged: {site.base}/a.txt",
        f"added: {site.base}/c.txt",
    } <= set(lines)
    assert len(site.requested("/a.txt")) == 1, "the entry dated as before is not fetched again"


def test_a_changed_url_replaces_its_old_version_on_refresh(tmp_path: Path) -> None:
    index = ArticleIndex(make_settings(tmp_path / "home", sources=()))
    with fake_site() as site:
        url = site.put("/story.txt", GLACIER)
        index.add([url])
        site.put("/story.txt", GLACIER.replace("four", "nine"))
        report = index.refresh()
    assert report.changed == [url] and report.passages_embedded == 1
    assert "nine metres" in ask(index, "How much ice did the Vatnaholt glacier lose?")
    assert index.status().passages == 1


def test_a_failing_url_keeps_its_article_and_is_reported(tmp_path: Path) -> None:
    index = ArticleIndex(make_settings(tmp_path / "home", sources=()))
    with fake_site() as site:
        url = site.put("/story.txt", GLACIER)
        index.add([url])
        site.put("/story.txt", "", status=500)
        report = index.refresh()
    assert [f.source for f in report.failed] == [url] and report.removed == []
    assert index.status().articles == 1
    (source,) = index.sources()
    assert "HTTP 500" in source.source.last_error


def test_slack_may_not_add_a_loopback_url_but_the_cli_may(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", sources=())
    index = ArticleIndex(settings)
    with fake_site() as site:
        url = site.put("/internal.txt", MEMO)
        refused = add_from_slack(index, settings, [url], added_by="U1")
        assert "not a public address" in refused.failed[0].reason
        assert site.requested("/internal.txt") == []
        assert index.sources() == []
        allowed = dataclasses.replace(settings, allowed_hosts=("127.0.0.1",))
        assert add_from_slack(index, allowed, [url], added_by="U1").added == [url]
    (source,) = index.sources()
    assert source.source.added_by == "U1"


def test_an_upload_is_namespaced_by_its_uploader(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "news")
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))
    index.rebuild()

    report = index.add_bytes(
        str(folder / "harbour.txt"), b"Impostor\n\nThe harbour is closed.", "U2"
    )

    assert report.added == ["upload://U2/harbour.txt"]
    assert index.status().articles == 3
    assert ask(index, "How many ferries can the harbour berth?") == (
        "The harbour can berth six ferries at once."
    )


def test_identical_bytes_under_two_sources_are_two_articles(tmp_path: Path) -> None:
    one = write_articles(tmp_path / "one", {"wire.txt": WIRE})
    two = write_articles(tmp_path / "two", {"wire.txt": WIRE})
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(one), str(two))))

    report = index.rebuild()
    copy = tmp_path / "copy.txt"
    copy.write_text(WIRE, encoding="utf-8")
    added = index.add([str(copy)])

    assert report.ok and len(report.added) == 2
    assert added.added == [str(copy)] and index.status().articles == 3


def test_a_symlink_loop_in_a_folder_is_one_failed_source(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "news")
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))

    report = index.rebuild()

    assert len(report.added) == 2
    assert [f.source for f in report.failed] == [str(folder / "loop.txt")]
    assert "cannot follow the path" in report.failed[0].reason


def test_a_second_process_sees_the_library(tmp_path: Path) -> None:
    home = tmp_path / "home"
    index = ArticleIndex(make_settings(home, sources=()))
    with fake_site() as site:
        url = site.put("/wire.txt", WIRE)
        index.add([url], added_by="alice")
    env = os.environ | {"CITEBOT_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "sources", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    (listed,) = [s for s in json.loads(out) if s["key"] == url]
    assert listed["kind"] == "url" and listed["added_by"] == "alice"
    assert listed["articles"] == 1 and listed["added_at"]


def _refresh_process(home: Path) -> subprocess.Popen[str]:
    env = os.environ | {"CITEBOT_HOME": str(home)}
    command = [sys.executable, "-c", "from bot.cli import main; main()", "refresh"]
    return subprocess.Popen(command, env=env, text=True, stderr=subprocess.PIPE)


def _wait_for(site: Site, path: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not site.requested(path):
        assert time.monotonic() < deadline, f"{path} was never requested"
        time.sleep(0.05)


def test_sigkill_during_a_refresh_leaves_the_previous_index_answering(tmp_path: Path) -> None:
    home = tmp_path / "home"
    index = ArticleIndex(make_settings(home, sources=()))
    with fake_site() as site:
        site.put("/a.txt", GLACIER)
        feed = site.put(
            "/feed.xml", rss(site, [("/a.txt", "Glacier")]), content_type="application/rss+xml"
        )
        index.add([feed])
        site.put("/b.txt", WIRE, delay=10)
        site.put(
            "/feed.xml",
            rss(site, [("/b.txt", "Bridge"), ("/a.txt", "Glacier")]),
            content_type="application/rss+xml",
        )
        process = _refresh_process(home)
        try:
            _wait_for(site, "/b.txt")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        reopened = ArticleIndex(make_settings(home, sources=()))
        assert "four metres" in ask(reopened, "How much ice did the Vatnaholt glacier lose?")
        site.put("/b.txt", WIRE)
        assert reopened.refresh().added == [site.base + "/b.txt"], "the write lock was released"


def test_one_process_at_a_time_holds_the_refresh_lease(tmp_path: Path) -> None:
    from datetime import timedelta

    from index.store.chroma import open_chroma
    from index.store.refresh import Refresher, RefreshLease

    settings = make_settings(tmp_path / "home", sources=())
    client = open_chroma(settings)
    first, second = RefreshLease(client, "first"), RefreshLease(client, "second")
    interval = timedelta(minutes=30)

    assert first.acquire(interval)
    assert not second.acquire(interval), "held by the first"
    first.release()
    assert not second.acquire(interval), "a refresh finished just now"
    assert second.acquire(timedelta(0))
    second.release()

    index = ArticleIndex(settings)
    assert not Refresher(index, 30).run_once(), "the last refresh is too recent"
    assert Refresher(index, 0).run_once()
