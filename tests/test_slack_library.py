"""The source library from Slack, end to end: the real bolt App over HTTP on 127.0.0.1,
the real index, a loopback fake of the Slack Web API and a loopback web site.

Admins add URLs, feeds and uploads (recorded as theirs, under the public-only policy),
list the library and remove from it with `/citebot`; the Home tab shows each source with
its last error and the latest refresh."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from fake_site import fake_site, rss
from slack_fake import ALICE, BOB, FakeSlack, app_home_opened, file_upload, running
from test_index import write_articles
from test_slack import start

from bot.slack import messages
from bot.slack.home import ADD_SOURCE_MODAL
from index.store.article_index import ArticleIndex

pytestmark = pytest.mark.slow

MEMO = b"Council memo\n\nThe council will repaint the old lighthouse in green next spring."
GLACIER = "Glacier shrinks\n\nThe Vatnaholt glacier lost four metres of ice this summer."


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


def command(fake: FakeSlack, url: str, text: str, user: str = ALICE) -> str:
    """Sends `/citebot TEXT` and returns the report it posts (commands run one at a time)."""
    before = len(fake.calls_to("response"))
    fake.send_command(url, "/citebot", text, user)
    return fake.wait_for("response", count=before + 1, timeout=120)[-1].body["text"]


def test_an_admin_adds_lists_and_removes_sources_with_citebot_commands(
    fake, tmp_path: Path, demo_index: ArticleIndex
) -> None:
    folder = write_articles(tmp_path / "news")
    settings = make_settings(tmp_path / "home", sources=(str(folder),))
    index = ArticleIndex(settings, encoder=demo_index.encoder)
    index.rebuild()
    with fake_site() as site, running(start(fake, tmp_path / "state", index)) as url:
        internal = site.put("/internal.txt", GLACIER)
        refused = command(fake, url, f"add <{internal}>")

        fake.send_event(url, file_upload(fake.add_file("memo.txt", MEMO), user=ALICE), "Ev1")
        [uploaded] = fake.wait_for("chat.postMessage", timeout=120)

        assert fake.send_command(url, "/citebot", "sources", BOB)[1] == messages.NOT_ADMIN
        assert fake.send_command(url, "/citebot", "remove x", BOB)[1] == messages.NOT_ADMIN
        listed = command(fake, url, "sources")
        upload = f"upload://{ALICE}/memo.txt"
        removed = command(fake, url, f"remove {upload}")
        kept = command(fake, url, f"remove {folder}")

    assert "not a public address" in refused and site.requested("/internal.txt") == []
    assert uploaded.body["text"].startswith("Indexed `memo.txt`: 1 added")
    assert listed.startswith("*The source library*\n```")
    assert f"folder  {folder}  (2 articles)" in listed
    assert f"upload  {upload}  (1 article)" in listed and f"added by {ALICE}" in listed
    assert removed.startswith(f"Removed `{upload}`: 0 added") and f"removed: {upload}" in removed
    assert kept.startswith(f"I couldn't remove `{folder}`: {folder} is configured in index.sources")
    assert [s.source.key for s in index.sources()] == [str(folder)]
    assert index.status().articles == 2
    # Each admin's change is in the audit log (`citebot audit`), refused ones too.
    changes = [(e.who, e.action, e.what, e.outcome[:8]) for e in index.audit.entries()][1:]
    assert changes == [
        (ALICE, "add", (internal,), "0 added,"),
        (ALICE, "upload", ("memo.txt",), "1 added,"),
        (ALICE, "remove", (upload,), "0 added,"),
        (ALICE, "remove", (str(folder),), "failed: "),
    ]


def test_a_feed_added_in_the_modal_shows_on_the_home_tab_with_its_last_error(
    fake, tmp_path: Path, demo_index: ArticleIndex
) -> None:
    settings = make_settings(tmp_path / "home", sources=(), allowed_hosts=("127.0.0.1",))
    index = ArticleIndex(settings, encoder=demo_index.encoder)
    with fake_site() as site, running(start(fake, tmp_path / "state", index)) as url:
        site.put("/a.txt", GLACIER)
        # An & in the address: it reaches Slack escaped, and the button removes it as given.
        feed = site.put(
            "/feed.xml?edition=1&lang=en",
            rss(site, [("/a.txt", "Glacier")]),
            content_type="application/rss+xml",
        )
        submitted = {"urls": {"urls": feed}}
        assert fake.send_view_submission(url, ADD_SOURCE_MODAL, submitted, ALICE)[0] == 200
        fake.wait_for("views.publish", timeout=120)
        (source,) = index.sources()
        assert (source.source.kind, source.source.added_by, source.indexed) == ("feed", ALICE, 1)

        site.put("/feed.xml?edition=1&lang=en", "down", status=500)
        assert not index.refresh().ok
        fake.send_event(url, app_home_opened(ALICE), "Ev2")
        home = fake.wait_for("views.publish", count=2, timeout=60)[-1].body["view"]

        fake.send_home_click(url, "home_remove_source", feed, ALICE)
        fake.wait_for("views.publish", count=3, timeout=60)

    texts = json.dumps([block.get("text") for block in home["blocks"]])
    escaped = feed.replace("&", "&amp;")
    assert f"`{escaped}` (feed): 1 article(s); added by <@{ALICE}>" in texts
    assert "Last read failed" in texts and "HTTP 500" in texts
    assert "*Latest refresh*" in texts and f"failed: {escaped}" in texts
    assert "edition=1&lang" not in texts
    [button] = [b["accessory"] for b in home["blocks"] if b.get("accessory")]
    assert button["value"] == feed
    assert index.sources() == [] and index.status().articles == 0
