"""citebot in Slack, end to end: the real bolt App over real HTTP on 127.0.0.1, requests
signed like Slack's, the real index and answerer, and a loopback fake of the Slack Web API
that records every call.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEMO_ARTICLES, REFERENCE_QUOTE, make_settings
from slack_bolt import App
from slack_fake import (
    ALICE,
    BOB,
    BOT_TOKEN,
    CHANNEL,
    DM_CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    ServerProcess,
    direct_message,
    file_upload,
    mention,
    message,
    running,
)

from bot.answering.answerer import Answerer
from bot.slack import IndexBackend, SlackConfig, create_app, messages
from bot.slack.state import SlackState
from index.store.article_index import ArticleIndex

pytestmark = pytest.mark.slow

REFERENCE_QUESTION = "who denied the crematorium claim"
TESLA_QUESTION = "when was Nikola Tesla born"
LIGHTHOUSE = b"""---
title: Vardo lighthouse relit after the storm
published: 2024-03-04
---

The lighthouse at Vardo was relit on Sunday by keeper Ingrid Solberg after a winter storm
had knocked out its lamp for nine days. Fishing boats had used radio beacons in the meantime.
"""
LIGHTHOUSE_QUESTION = "who relit the lighthouse at Vardo"


def backend_of(index: ArticleIndex) -> IndexBackend:
    """What `citebot serve` answers from (without an LLM)."""
    return IndexBackend(index, Answerer(index, index.settings), index.settings)


def start(fake: FakeSlack, state_dir: Path, index: ArticleIndex, **changes: object) -> App:
    config = SlackConfig(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=fake.api_url,
        admins=frozenset({ALICE}),
    )
    return create_app(dataclasses.replace(config, **changes), backend_of(index), state_dir)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


@pytest.fixture
def fresh_index(tmp_path: Path, demo_index: ArticleIndex) -> ArticleIndex:
    """An index of its own (one article), sharing the demo index's loaded model."""
    # The fake Slack serves uploads on 127.0.0.1: allowed as an intranet host would be.
    settings = make_settings(tmp_path / "home", allowed_hosts=("127.0.0.1",))
    index = ArticleIndex(settings, encoder=demo_index.encoder)
    assert index.add([str(DEMO_ARTICLES / "syria-denies-burning-prisoners-bodies-claim.txt")]).ok
    return index


def best_quote(index: ArticleIndex, question: str) -> str:
    """The sentence the answerer quotes first: what Slack must show, whatever the ranking."""
    return Answerer(index, index.settings).answer(question).citations[0].text


def first_quote(call) -> str:
    return call.body["blocks"][0]["text"]["text"]


def button_value(blocks: list[dict], action_id: str) -> str:
    [value] = [
        e["value"]
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    ]
    return value


def test_a_mention_is_answered_in_its_thread_with_the_reference_citation(
    fake, tmp_path, demo_index
):
    with running(start(fake, tmp_path, demo_index)) as url:
        event = mention(REFERENCE_QUESTION)
        started = time.monotonic()
        assert fake.send_event(url, event, "Ev1") == (200, "")
        assert time.monotonic() - started < 3
        [answer] = fake.wait_for("chat.postMessage")
        fake.wait_for("reactions.remove")
    assert (answer.body["channel"], answer.body["thread_ts"]) == (CHANNEL, event["ts"])
    assert f"> {REFERENCE_QUOTE}\n— *Syria denies" in answer.text
    assert "(syria-denies-burning-prisoners-bodies-claim.txt)" in answer.text
    [eyes] = fake.calls_to("reactions.add")
    assert (eyes.body["name"], eyes.body["timestamp"]) == ("eyes", event["ts"])


def test_a_web_source_links_to_the_quoted_sentence(fake, tmp_path, demo_index):
    with running(start(fake, tmp_path, demo_index)) as url:
        fake.send_event(url, mention(TESLA_QUESTION), "Ev1")
        [answer] = fake.wait_for("chat.postMessage")
    assert first_quote(answer).startswith(f"> {best_quote(demo_index, TESLA_QUESTION)}\n— <")
    assert "<https://en.wikipedia.org/wiki/Nikola_Tesla#:~:text=" in first_quote(answer)


def test_a_direct_message_is_answered_in_its_thread(fake, tmp_path, demo_index):
    with running(start(fake, tmp_path, demo_index)) as url:
        event = direct_message(REFERENCE_QUESTION)
        fake.send_event(url, event, "Ev1")
        [answer] = fake.wait_for("chat.postMessage")
    assert (answer.body["channel"], answer.body["thread_ts"]) == (DM_CHANNEL, event["ts"])
    assert best_quote(demo_index, REFERENCE_QUESTION) in answer.text


def test_a_follow_up_in_an_answered_thread_needs_no_mention(fake, tmp_path, demo_index):
    with running(start(fake, tmp_path, demo_index)) as url:
        question = mention(REFERENCE_QUESTION)
        fake.send_event(url, question, "Ev1")
        fake.wait_for("chat.postMessage")
        # A reply in some other thread is chatter, not a question for the bot.
        fake.send_event(url, message(TESLA_QUESTION, thread_ts="1.000009"), "Ev2")
        fake.send_event(url, message(TESLA_QUESTION, thread_ts=question["ts"]), "Ev3")
        answers = fake.wait_for("chat.postMessage", count=2)
    assert [a.body["thread_ts"] for a in answers] == [question["ts"], question["ts"]]
    assert best_quote(demo_index, TESLA_QUESTION) in answers[1].text
    assert len(fake.calls_to("chat.postMessage")) == 2


def test_ask_answers_privately_and_the_answer_can_be_shared(fake, tmp_path, demo_index):
    with running(start(fake, tmp_path, demo_index)) as url:
        assert fake.send_command(url, "/ask", REFERENCE_QUESTION, BOB) == (200, "")
        [private] = fake.wait_for("response")
        assert private.body["response_type"] == "ephemeral"
        assert best_quote(demo_index, REFERENCE_QUESTION) in private.text
        assert fake.calls_to("chat.postMessage") == []

        share = button_value(private.body["blocks"], "share_answer")
        assert fake.send_click(url, "share_answer", share, BOB)[0] == 200
        [shared] = fake.wait_for("chat.postMessage")
        [_, deleted] = fake.wait_for("response", count=2)
    assert shared.body["channel"] == CHANNEL and "thread_ts" not in shared.body
    assert first_quote(shared) == f"<@{BOB}> asked: {REFERENCE_QUESTION}"
    assert best_quote(demo_index, REFERENCE_QUESTION) in shared.text
    assert deleted.body["delete_original"] is True


def test_a_feedback_click_is_recorded_with_question_and_answer(fake, tmp_path, demo_index):
    with running(start(fake, tmp_path, demo_index)) as url:
        fake.send_event(url, mention(REFERENCE_QUESTION), "Ev1")
        [answer] = fake.wait_for("chat.postMessage")
        vote = button_value(answer.body["blocks"], "feedback_down")
        assert fake.send_click(url, "feedback_down", vote, BOB)[0] == 200
        [thanks] = fake.wait_for("response")
    [feedback] = SlackState(tmp_path).feedback()
    assert (feedback.user, feedback.question, feedback.vote) == (BOB, REFERENCE_QUESTION, "down")
    assert best_quote(demo_index, REFERENCE_QUESTION) in feedback.answer_json
    assert thanks.body["text"] == messages.FEEDBACK_THANKS.format(vote=messages.NOT_HELPFUL)


def test_a_redelivered_event_is_answered_once_also_after_a_restart(fake, tmp_path, demo_index):
    event = direct_message(REFERENCE_QUESTION)
    with running(start(fake, tmp_path, demo_index)) as url:
        assert fake.send_event(url, event, "Ev1") == (200, "")
        assert fake.send_event(url, event, "Ev1", retry=1) == (200, "")
        # The same message as an app_mention: another event id, the same message.
        assert fake.send_event(url, event | {"type": "app_mention"}, "Ev2") == (200, "")
    with running(start(fake, tmp_path, demo_index)) as url:
        assert fake.send_event(url, event, "Ev1", retry=2) == (200, "")
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert len(fake.calls_to("reactions.add")) == 1


def test_a_bad_or_stale_signature_is_refused_and_does_nothing(fake, tmp_path, demo_index):
    body = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": mention("hi")})
    with running(start(fake, tmp_path, demo_index)) as url:
        assert fake.post(url, body, "application/json", signature="v0=" + "0" * 64)[0] == 401
        stale = int(time.time()) - 10 * 60
        assert fake.post(url, body, "application/json", timestamp=stale)[0] == 401
        command = "command=%2Fcitebot&text=add+https%3A%2F%2Fexample.com&user_id=" + ALICE
        assert (
            fake.post(url, command, "application/x-www-form-urlencoded", signature="v0=x")[0] == 401
        )
    assert fake.calls == []


def test_an_admin_adds_documents_that_are_then_searchable(fake, tmp_path, fresh_index):
    before = fresh_index.status().articles
    web_article = fake.add_file(
        "tesla.md", (DEMO_ARTICLES / "wikipedia-nikola-tesla.md").read_bytes(), "F2"
    )
    with running(start(fake, tmp_path / "state", fresh_index)) as url:
        upload = file_upload(fake.add_file("lighthouse.md", LIGHTHOUSE), user=ALICE)
        fake.send_event(url, upload, "Ev1")
        [report] = fake.wait_for("chat.postMessage")
        assert report.body["thread_ts"] == upload["ts"]
        assert report.body["text"].startswith("Indexed `lighthouse.md`: 1 added, 0 changed")

        status, text = fake.send_command(
            url, "/citebot", f"add {web_article['url_private']}", ALICE
        )
        assert (status, text) == (200, messages.ADDING.format(count=1))
        [web_report] = fake.wait_for("response")
        assert "1 added" in web_report.body["text"]

        # Uploaded in a DM, the article answers there (test_private_sources.py: only there).
        lighthouse, tesla = direct_message(LIGHTHOUSE_QUESTION), mention(TESLA_QUESTION)
        fake.send_event(url, lighthouse, "Ev2")
        fake.send_event(url, tesla, "Ev3")
        answers = fake.wait_for("chat.postMessage", count=3)
    in_thread = {a.body.get("thread_ts"): a for a in answers}
    assert "Ingrid Solberg" in first_quote(in_thread[lighthouse["ts"]])
    assert best_quote(fresh_index, TESLA_QUESTION) in in_thread[tesla["ts"]].text
    assert fresh_index.status().articles == before + 2
    [download] = [c for c in fake.calls_to("file") if "lighthouse" in c.path]
    assert download.headers["Authorization"] == f"Bearer {BOT_TOKEN}"


def test_a_non_admin_is_refused_and_the_index_is_unchanged(fake, tmp_path, fresh_index):
    before = fresh_index.status()
    with running(start(fake, tmp_path / "state", fresh_index)) as url:
        upload = file_upload(fake.add_file("lighthouse.md", LIGHTHOUSE), user=BOB)
        fake.send_event(url, upload, "Ev1")
        [refusal] = fake.wait_for("chat.postMessage")
        command = fake.send_command(url, "/citebot", "add https://example.com/story", BOB)
    assert refusal.body["text"] == messages.NOT_ADMIN
    assert command == (200, messages.NOT_ADMIN)
    assert fake.calls_to("file") == [] and fake.calls_to("response") == []
    assert fresh_index.status() == before


def test_a_rate_limited_post_is_retried_after_retry_after(fake, tmp_path, demo_index):
    fake.script("chat.postMessage", status=429, headers={"Retry-After": "1"})
    with running(start(fake, tmp_path, demo_index)) as url:
        fake.send_event(url, mention(REFERENCE_QUESTION), "Ev1")
        limited, posted = fake.wait_for("chat.postMessage", count=2)
    assert posted.time - limited.time >= 1
    assert posted.body == limited.body
    assert best_quote(demo_index, REFERENCE_QUESTION) in posted.text


# `citebot add`, then `citebot serve`, as an operator would run them. The add runs in its
# own process: Chroma must not be opened in the process gunicorn forks from.
SERVE_SCRIPT = """
import subprocess
import sys

from bot.cli import main

port, article = sys.argv[1], sys.argv[3]
add = [sys.executable, "-c", "from bot.cli import main; main()", "add", article]
subprocess.run(add, check=True)
main(["serve", "--port", port, "--host", "127.0.0.1"])
"""


def test_serve_answers_from_the_real_index_behind_gunicorn(fake, tmp_path):
    article = str(DEMO_ARTICLES / "syria-denies-burning-prisoners-bodies-claim.txt")
    env = {
        "CITEBOT_HOME": str(tmp_path / "home"),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CITEBOT_SLACK_API_URL": fake.api_url,
    }
    with ServerProcess(SERVE_SCRIPT, str(tmp_path / "state"), article, env=env) as server:
        # Acknowledged as soon as the port accepts; answered once the model and the
        # reader are loaded (on a thread of the worker's own).
        first = server.send_first_event(fake, mention(REFERENCE_QUESTION), "Ev1", timeout=300)
        assert first == (200, "")
        assert server.first_ack_s < 3
        [answer] = fake.wait_for("chat.postMessage", timeout=120)
    assert first_quote(answer).startswith("> ")
    assert "(syria-denies-burning-prisoners-bodies-claim.txt)" in first_quote(answer)
    assert "Using worker: gthread" in server.log
    assert "PyTorch uses 1 thread(s) per operation" in server.log


TESLA = str(DEMO_ARTICLES / "wikipedia-nikola-tesla.md")
SUPER_BOWL = str(DEMO_ARTICLES / "wikipedia-super-bowl-50.md")
FOLLOW_UP = "where did it take place?"


def test_a_follow_up_is_answered_from_the_article_the_thread_cited(fake, tmp_path, demo_index):
    # Asked alone, the follow-up is answered from another article: the thread makes the difference.
    alone = Answerer(demo_index, demo_index.settings).rank(FOLLOW_UP)
    assert alone.sentences[0].passage.metadata.article_id != SUPER_BOWL
    with running(start(fake, tmp_path, demo_index)) as url:
        question = mention("who won Super Bowl 50")
        fake.send_event(url, question, "Ev1")
        fake.wait_for("chat.postMessage")
        fake.send_event(url, message(FOLLOW_UP, thread_ts=question["ts"]), "Ev2")
        _, follow_up = fake.wait_for("chat.postMessage", count=2)
    assert follow_up.body["thread_ts"] == question["ts"]
    # The first quote (or, unanswered, the first passage) is from the Super Bowl article.
    assert "Super Bowl 50" in json.dumps(follow_up.body["blocks"][:2])


def test_a_scoped_channel_answers_only_from_its_sources(fake, tmp_path, demo_index):
    app = start(fake, tmp_path, demo_index, channel_sources={"C0SCIENCE": (TESLA,)})
    with running(app) as url:
        fake.send_event(url, mention(REFERENCE_QUESTION, channel="C0SCIENCE"), "Ev1")
        fake.send_event(url, mention(REFERENCE_QUESTION, channel=CHANNEL), "Ev2")
        answers = fake.wait_for("chat.postMessage", count=2)
    scoped = next(a for a in answers if a.body["channel"] == "C0SCIENCE")
    everywhere = next(a for a in answers if a.body["channel"] == CHANNEL)
    assert "syria-denies" not in scoped.text and REFERENCE_QUOTE not in scoped.text
    assert "Nikola" in scoped.text
    assert messages.SCOPED.format(sources=TESLA) in scoped.text
    assert REFERENCE_QUOTE in everywhere.text
