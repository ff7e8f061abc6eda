"""Private sources stay private: what an admin adds in a DM, a group DM or a private
channel answers only there (and shows, marked, to admins on the Home tab) until an admin
shares it. End to end: the real bolt App over HTTP on 127.0.0.1, the real index, the
loopback fake Slack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEMO_ARTICLES, make_settings
from slack_fake import (
    ALICE,
    BOB,
    CHANNEL,
    DM_CHANNEL,
    FakeSlack,
    app_home_opened,
    direct_message,
    file_upload,
    mention,
    message,
    running,
)
from test_slack import LIGHTHOUSE, LIGHTHOUSE_QUESTION, start
from test_slack_library import command

from bot.slack.backend import summarize
from bot.sources_admin import sources_lines
from index.retrieval import SourceScope
from index.sources.library import LibrarySource
from index.store.article_index import ArticleIndex
from index.store.passage_info import PassageInfo
from index.store.status import SourceStatus

pytestmark = pytest.mark.slow

RELIT_BY = "Ingrid Solberg"
PRIVATE_CHANNEL = "G0NEWSROOM"
UPLOAD = f"upload://{ALICE}/lighthouse.md"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def index(tmp_path: Path, demo_index: ArticleIndex) -> ArticleIndex:
    """An index of one demo article, sharing the demo index's model; the fake Slack's
    files (on 127.0.0.1) may be added as an intranet host's would."""
    settings = make_settings(tmp_path / "home", allowed_hosts=("127.0.0.1",))
    index = ArticleIndex(settings, encoder=demo_index.encoder)
    assert index.add([str(DEMO_ARTICLES / "syria-denies-burning-prisoners-bodies-claim.txt")]).ok
    return index


def ask(fake: FakeSlack, url: str, event: dict, event_id: str) -> str:
    """Sends a question; returns all the text of its answer in its thread."""
    fake.send_event(url, event, event_id)
    in_thread = lambda c: c.body.get("thread_ts") == event["ts"]  # noqa: E731
    return fake.wait_for("chat.postMessage", in_thread, timeout=120)[0].text


def test_an_upload_in_a_dm_answers_only_there_until_an_admin_shares_it(
    fake, tmp_path: Path, index
) -> None:
    with running(start(fake, tmp_path / "state", index)) as url:
        upload = file_upload(fake.add_file("lighthouse.md", LIGHTHOUSE), user=ALICE)
        fake.send_event(url, upload, "Ev1")
        [report] = fake.wait_for("chat.postMessage", timeout=120)

        in_the_dm = ask(fake, url, direct_message(LIGHTHOUSE_QUESTION), "Ev2")
        in_a_channel = ask(fake, url, mention(LIGHTHOUSE_QUESTION), "Ev3")
        bobs_dm = message(LIGHTHOUSE_QUESTION, channel="D0BOB", user=BOB, channel_type="im")
        in_bobs_dm = ask(fake, url, bobs_dm, "Ev4")
        listed = command(fake, url, "sources")
        refused = fake.send_command(url, "/citebot", f"share {UPLOAD}", BOB)[1]
        shared = command(fake, url, f"share {UPLOAD}")
        again = command(fake, url, f"share {UPLOAD}")
        after = ask(fake, url, mention(LIGHTHOUSE_QUESTION), "Ev5")

    assert "Private: only questions asked in this conversation" in report.text
    assert RELIT_BY in in_the_dm
    assert RELIT_BY not in in_a_channel and "lighthouse.md" not in in_a_channel
    assert RELIT_BY not in in_bobs_dm
    assert f"private: answers only in {DM_CHANNEL}" in listed
    assert refused.startswith("Sorry, only citebot admins")
    assert shared == f"Now answering in every channel from: `{UPLOAD}`."
    assert again.endswith("public already, nothing changed.")
    assert RELIT_BY in after
    shares = [(e.who, e.what, e.outcome) for e in index.audit.entries() if e.action == "share"]
    assert shares == [(ALICE, (UPLOAD,), "1 made public"), (ALICE, (UPLOAD,), "0 made public")]


def test_a_url_added_in_a_private_channel_answers_there_and_admins_see_it_marked(
    fake, tmp_path: Path, index
) -> None:
    article = fake.add_file("lighthouse.md", LIGHTHOUSE, "F9")
    with running(start(fake, tmp_path / "state", index)) as url:
        fake.send_command(url, "/citebot", f"add {article['url_private']}", ALICE, PRIVATE_CHANNEL)
        [added] = fake.wait_for("response", timeout=120)
        in_private = ask(fake, url, mention(LIGHTHOUSE_QUESTION, channel=PRIVATE_CHANNEL), "Ev1")
        in_public = ask(fake, url, mention(LIGHTHOUSE_QUESTION, channel=CHANNEL), "Ev2")

        fake.send_event(url, app_home_opened(ALICE), "Ev3")
        home = fake.wait_for("views.publish", timeout=60)[0].body["view"]
        fake.send_home_click(url, "home_share_source", article["url_private"], ALICE)
        fake.wait_for("views.publish", count=2, timeout=60)
        after = ask(fake, url, mention(LIGHTHOUSE_QUESTION, channel=CHANNEL), "Ev4")

    assert "1 added" in added.body["text"] and "Private" in added.body["text"]
    assert RELIT_BY in in_private and RELIT_BY not in in_public
    assert f"answers only in <#{PRIVATE_CHANNEL}>" in json.dumps(home)
    buttons = [
        e
        for b in home["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "home_share_source"
    ]
    assert [b["value"] for b in buttons] == [article["url_private"]]
    assert RELIT_BY in after
    assert [s.source.visible_in for s in index.sources()] == ["", ""]


# --- the filter and what shows it, without Slack ---


def passage(article: str, origin: str, title: str) -> PassageInfo:
    return PassageInfo.from_metadata(
        {"article_id": article, "source": origin, "origin": origin, "title": title}
    )


def test_a_scope_hides_other_conversations_private_sources_and_their_headlines() -> None:
    passages = [
        passage("a1", "/srv/news", "Public story"),
        passage("a2", UPLOAD, "Private memo"),
    ]
    hidden = SourceScope(hidden=frozenset({UPLOAD}))
    assert [hidden(p) for p in passages] == [True, False]
    assert [SourceScope(("/srv/",))(p) for p in passages] == [True, False]
    assert [SourceScope(("upload://",))(p) for p in passages] == [False, True]
    # The snapshot keeps one column per scope value: the hidden set is part of it.
    assert hidden != SourceScope() and hash(hidden) == hash(SourceScope(hidden=frozenset({UPLOAD})))
    summary = summarize(passages, len(passages), private=frozenset({UPLOAD}))
    assert summary.articles == 2 and summary.headlines == ("Public story",)


def test_citebot_sources_says_which_sources_are_private() -> None:
    private = LibrarySource(UPLOAD, "upload", added_by=ALICE, visible_in=DM_CHANNEL)
    lines = sources_lines(
        [SourceStatus(private, 1), SourceStatus(LibrarySource("/srv", "folder"), 3)]
    )
    assert lines[2].strip().startswith(f"private: answers only in {DM_CHANNEL}")
    assert not any("private" in line for line in lines[3:])
