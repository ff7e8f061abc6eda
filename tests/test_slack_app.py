"""The Slack app's plumbing with stand-in answering and indexing (fast, no model).

The end-to-end behaviour with the real index is in test_slack.py; this file covers what
needs a controllable `ask`: failures, slowness, refusals, settings and the gunicorn server.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import sqlite3
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_bolt import App
from slack_fake import (
    ALICE,
    BOB,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    CHANNEL,
    DM_CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    ServerProcess,
    app_home_opened,
    assistant_thread_started,
    direct_message,
    event_callback,
    file_upload,
    mention,
    message,
    new_ts,
    running,
)

from bot.answering.answers import Answer, Citation
from bot.answering.context import QuestionContext
from bot.slack import SlackConfig, create_app, messages
from bot.slack.backend import Asked, IndexedSource, Overview
from bot.slack.blocks import block_text_length
from bot.slack.front import request_fields
from bot.slack.logs import JsonFormatter
from bot.slack.state import SlackState
from bot.slack.worker import REQUEST_SECONDS
from index.errors import SettingsError
from index.report import Failure, IndexReport
from index.settings import PROJECT_ROOT, load_settings
from index.sources.library import LibraryReport, LibrarySource
from index.store.status import SourceStatus

QUOTE = "Syrian officials assure that this is a lie to justify the aggressive policy."


def canned_answer(question: str) -> Answer:
    citation = Citation(
        text=QUOTE,
        title="Syria denies the claim",
        source="/articles/syria.txt",
        url="https://example.com/syria",
        published="2017-05-16",
        score=0.9,
        article_id="/articles/syria.txt",
        start=0,
        end=len(QUOTE),
    )
    return Answer(question, answered=True, citations=[citation])


def no_adding(*args: object) -> IndexReport:
    raise AssertionError("nothing should be added")


class CannedBackend:
    """The backend with stand-ins: `ask` answers, the index never changes, and the
    overview is whatever the test sets (an exception: the store is unreachable)."""

    def __init__(self, ask: Callable[[str], Answer] = canned_answer) -> None:
        self._ask = ask
        self.contexts: list[QuestionContext | None] = []
        self.removed: list[tuple[list[str], str]] = []
        self.library: list[SourceStatus] = []
        self.overview_result: Overview | Exception = Overview(
            generation="gen-1",
            articles=2031,
            sources=(
                IndexedSource("/srv/news", 2030, True),
                IndexedSource("https://example.com/x", 1, False),
            ),
            headlines=("Syria denies the claim", "Vardo lighthouse relit"),
        )

    def ask(self, question: str, context: QuestionContext | None = None) -> Asked:
        self.contexts.append(context)
        return Asked(self._ask(question))

    add_sources = add_upload = staticmethod(no_adding)

    def remove(self, items: list[str], removed_by: str, team: str = "") -> IndexReport:
        self.removed.append((items, removed_by))
        return IndexReport(removed=items)

    def share(self, sources: list[str], shared_by: str, team: str = "") -> list[str]:
        raise AssertionError("nothing should be shared")

    def remove_workspace(self, team: str) -> IndexReport:
        return IndexReport()

    def private_sources(self) -> list[LibrarySource]:
        return []

    def sources(self) -> list[SourceStatus]:
        return self.library

    def overview(self) -> Overview:
        if isinstance(self.overview_result, Exception):
            raise self.overview_result
        return self.overview_result

    def warm_up(self) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


def config_for(fake: FakeSlack, **changes: object) -> SlackConfig:
    config = SlackConfig(
        bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=fake.api_url, admins={ALICE}
    )
    return dataclasses.replace(config, **changes)


def make_app(
    fake: FakeSlack,
    tmp_path: Path,
    ask: Callable[[str], Answer] = canned_answer,
    backend: CannedBackend | None = None,
    **changes: object,
) -> App:
    backend = backend or CannedBackend(ask)
    return create_app(config_for(fake, **changes), backend, tmp_path / "state")


def test_a_mention_is_answered_in_its_thread_with_eyes_while_working(fake, tmp_path):
    with running(make_app(fake, tmp_path)) as url:
        event = mention("who denied it?")
        assert fake.send_event(url, event, "Ev1") == (200, "")
        [answer] = fake.wait_for("chat.postMessage")
        removed = fake.wait_for("reactions.remove")
    assert answer.body["thread_ts"] == event["ts"]
    assert QUOTE in answer.text
    [added] = fake.calls_to("reactions.add")
    assert (added.body["name"], added.body["channel"], added.body["timestamp"]) == (
        "eyes",
        CHANNEL,
        event["ts"],
    )
    assert removed[0].body == added.body
    assert added.time < answer.time < removed[0].time
    assert answer.headers["Authorization"] == f"Bearer {BOT_TOKEN}"


def test_a_failure_is_an_apology_in_the_thread_without_the_error(fake, tmp_path):
    def broken(question: str) -> Answer:
        raise RuntimeError("secret internal detail")

    with running(make_app(fake, tmp_path, ask=broken)) as url:
        event = mention("who denied it?")
        fake.send_event(url, event, "Ev1")
        [apology] = fake.wait_for("chat.postMessage")
        fake.wait_for("reactions.remove")
    assert apology.body["text"] == messages.APOLOGY
    assert apology.body["thread_ts"] == event["ts"]
    assert "secret" not in json.dumps([c.body for c in fake.calls])


def test_requests_are_acknowledged_while_the_answer_is_still_being_worked_on(fake, tmp_path):
    release = threading.Event()

    def slow(question: str) -> Answer:
        release.wait(20)
        return canned_answer(question)

    with running(make_app(fake, tmp_path, ask=slow)) as url:
        started = time.monotonic()
        assert fake.send_event(url, mention("slow?"), "Ev1")[0] == 200
        assert fake.send_command(url, "/ask", "slow?", BOB)[0] == 200
        assert time.monotonic() - started < 3
        assert fake.calls_to("chat.postMessage") == []
        release.set()
        fake.wait_for("chat.postMessage")
        fake.wait_for("response")


def blocked_until(release: threading.Event) -> Callable[[str], Answer]:
    """An answerer that waits for `release`."""

    def ask(question: str) -> Answer:
        assert release.wait(60), "never released"
        return canned_answer(question)

    return ask


def test_acks_do_not_wait_behind_the_answers_and_each_event_is_answered_once(fake, tmp_path):
    release = threading.Event()
    events = [mention(f"question {n}?") for n in range(12)]
    app = make_app(fake, tmp_path, ask=blocked_until(release), answer_workers=1)
    with running(app) as url:
        # Released together, while the one answering thread is blocked on the first.
        with ThreadPoolExecutor(len(events)) as senders:
            statuses = list(
                senders.map(lambda n: fake.send_event(url, events[n], f"Ev{n}")[0], range(12))
            )
        assert statuses == [200] * len(events)
        # Slack's re-delivery of an acknowledged event is acknowledged and dropped.
        assert fake.send_event(url, events[0], "Ev0", retry=1)[0] == 200
        assert fake.calls_to("chat.postMessage") == []
        release.set()
        posted = fake.wait_for("chat.postMessage", count=len(events))
        fake.wait_for("reactions.remove", count=len(events))
    assert sorted(c.body["thread_ts"] for c in posted) == sorted(e["ts"] for e in events)
    assert all(QUOTE in c.text for c in posted)


def test_a_question_beyond_the_queue_is_acknowledged_and_told_to_ask_again(fake, tmp_path):
    release = threading.Event()
    app = make_app(fake, tmp_path, ask=blocked_until(release), answer_workers=1, answer_queue=0)
    with running(app) as url:
        first, second = mention("first?"), mention("second?")
        assert fake.send_event(url, first, "Ev1")[0] == 200
        fake.wait_for("reactions.add")  # the first is being answered: no room left
        assert fake.send_event(url, second, "Ev2")[0] == 200
        [busy] = fake.wait_for("chat.postMessage")
        assert fake.send_command(url, "/ask", "third?", BOB) == (200, messages.BUSY)
        release.set()
        posted = fake.wait_for("chat.postMessage", count=2)
        fake.wait_for("reactions.remove")
        # Room again once the first is answered.
        assert fake.send_event(url, mention("fourth?"), "Ev4")[0] == 200
        posted = fake.wait_for("chat.postMessage", count=3)
    assert (busy.body["thread_ts"], busy.body["text"]) == (second["ts"], messages.BUSY)
    assert [QUOTE in c.text for c in posted] == [False, True, True]
    assert posted[1].body["thread_ts"] == first["ts"]


def test_bots_and_the_bot_itself_are_ignored(fake, tmp_path):
    asked = []

    def ask(question: str) -> Answer:
        asked.append(question)
        return canned_answer(question)

    with running(make_app(fake, tmp_path, ask=ask)) as url:
        own = direct_message("my own answer", user=BOT_USER_ID, bot_id=BOT_ID)
        other = mention("from another bot", bot_id="B0OTHER")
        legacy = direct_message("legacy bot", subtype="bot_message", bot_id="B0OLD")
        for number, event in enumerate([own, other, legacy]):
            assert fake.send_event(url, event, f"Ev{number}")[0] == 200
        fake.send_event(url, direct_message("a person"), "Ev9")
        fake.wait_for("chat.postMessage")
    assert asked == ["a person"]


def test_only_configured_channels_get_answers(fake, tmp_path):
    app = make_app(fake, tmp_path, channels=frozenset({"C0ALLOWED"}))
    with running(app) as url:
        fake.send_event(url, mention("here?", channel="C0OTHER"), "Ev1")
        [refusal] = fake.wait_for("chat.postEphemeral")
        assert fake.send_command(url, "/ask", "here?", BOB, channel="C0OTHER") == (
            200,
            messages.CHANNEL_NOT_ALLOWED,
        )
        fake.send_event(url, mention("and here?", channel="C0ALLOWED"), "Ev2")
        fake.send_event(url, direct_message("in a DM?"), "Ev3")
        posted = fake.wait_for("chat.postMessage", count=2)
    assert refusal.body["text"] == messages.CHANNEL_NOT_ALLOWED
    assert {c.body["channel"] for c in posted} == {"C0ALLOWED", "D0ALICE"}


def test_channel_chatter_and_foreign_threads_are_not_answered(fake, tmp_path):
    with running(make_app(fake, tmp_path)) as url:
        fake.send_event(url, message("just chatting"), "Ev1")
        fake.send_event(url, message("reply", thread_ts="1.000001"), "Ev2")
        fake.send_event(url, message("edited", subtype="message_changed"), "Ev3")
        fake.send_event(url, direct_message("answer this one"), "Ev4")
        [answer] = fake.wait_for("chat.postMessage")
    assert answer.body["channel"] == "D0ALICE"


def test_a_mention_without_a_question_gets_an_example(fake, tmp_path):
    with running(make_app(fake, tmp_path)) as url:
        fake.send_event(url, mention(""), "Ev1")
        [reply] = fake.wait_for("chat.postMessage")
    assert reply.body["text"] == messages.EMPTY_QUESTION


def test_slash_commands_explain_themselves(fake, tmp_path):
    with running(make_app(fake, tmp_path)) as url:
        assert fake.send_command(url, "/ask", "  ", BOB) == (200, messages.ASK_USAGE)
        assert fake.send_command(url, "/citebot", "help", BOB) == (200, messages.CITEBOT_HELP)
        assert fake.send_command(url, "/citebot", "add", ALICE) == (200, messages.ADD_USAGE)
        status, text = fake.send_command(url, "/citebot", "add /etc/passwd", ALICE)
    assert text == messages.NOT_A_URL.format(text="/etc/passwd")


def test_markup_in_headlines_commands_and_file_names_reaches_slack_escaped(fake, tmp_path):
    """Issue 29 #11: a headline in a suggested prompt (sent as the person's message when
    clicked), the admin's own text in the /citebot acknowledgement, an upload's name."""
    backend = CannedBackend()
    hostile = "<!channel> & <https://evil.example|a prize>"
    backend.overview_result = dataclasses.replace(backend.overview_result, headlines=(hostile,))
    file = fake.add_file("<!here>.txt", b"text")
    del fake.files[file["id"]]  # the download fails: the file's name is reported
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        fake.send_event(url, assistant_thread_started(), "Ev1")
        [prompts] = fake.wait_for("assistant.threads.setSuggestedPrompts")
        _, acknowledged = fake.send_command(url, "/citebot", "add x<!here>", ALICE)
        fake.send_event(url, file_upload(file), "Ev2")
        [reported] = fake.wait_for("chat.postMessage")
    [prompt] = prompts.body["prompts"]
    assert prompt["message"] == (
        "What happened with &lt;!channel&gt; &amp; &lt;https://evil.example|a prize&gt;?"
    )
    assert acknowledged == messages.NOT_A_URL.format(text="x&lt;!here&gt;")
    assert reported.body["text"] == messages.DOWNLOAD_FAILED.format(name="&lt;!here&gt;.txt")


def test_an_upload_with_3000_bad_lines_is_reported_within_slacks_limits(fake, tmp_path):
    """Issue 29 #9: one line per failed record made a 326,011-character message."""
    backend = CannedBackend()
    failed = [
        Failure(f"upload://U0ALICE/memo.jsonl#{n}", "not JSON: " + "x" * 90) for n in range(3000)
    ]
    backend.add_upload = lambda name, data, user, channel, team="": IndexReport(
        added=["a", "b"], failed=failed
    )
    backend.library = [
        SourceStatus(LibrarySource(f"https://example.com/{n}/" + "p" * 80, "url"), 1)
        for n in range(200)
    ]
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        fake.send_event(url, file_upload(fake.add_file("memo.jsonl", b"{")), "Ev1")
        [reported] = fake.wait_for("chat.postMessage")
        fake.send_command(url, "/citebot", "sources", ALICE)
        [listed] = fake.wait_for("response")
    text = reported.body["text"]
    assert len(text) <= messages.REPORT_CHARS and text.endswith(messages.PRIVATE_HERE)
    lines = text.removesuffix(messages.PRIVATE_HERE).splitlines()
    assert lines[0].startswith("Indexed `memo.jsonl`: 2 added, 0 changed")
    assert lines[1:3] == ["added: a", "added: b"]
    shown = len(lines) - 4  # the head, the 2 added, the "more"
    assert lines[-1] == f"…and {3000 - shown:,} more"
    assert len(listed.body["text"]) <= 4000 and "more" in listed.body["text"]


def test_sharing_into_a_channel_without_the_bot_explains_how_to_invite_it(fake, tmp_path):
    fake.script("chat.postMessage", body={"ok": False, "error": "not_in_channel"})
    app = make_app(fake, tmp_path)
    answer_id = SlackState(tmp_path / "state").save_answer(canned_answer("q"))
    with running(app) as url:
        fake.send_click(url, "share_answer", answer_id, BOB)
        [reply] = fake.wait_for("response")
    assert reply.body["text"] == messages.SHARE_NOT_IN_CHANNEL
    assert reply.body["response_type"] == "ephemeral"


def test_slack_url_verification_is_answered(fake, tmp_path):
    with running(make_app(fake, tmp_path)) as url:
        body = json.dumps({"type": "url_verification", "challenge": "abc", "token": "x"})
        status, text = fake.post(url, body, "application/json")
    assert (status, json.loads(text)) == (200, {"challenge": "abc"})


# --- settings ---


def slack_settings(tmp_path: Path, slack_table: str, environ: dict[str, str] | None = None):
    path = tmp_path / "citebot.toml"
    path.write_text(f"[index]\nsources = []\n\n[slack]\n{slack_table}\n", encoding="utf-8")
    return load_settings({"CITEBOT_CONFIG": str(path)} | (environ or {}))


TOKENS = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s3cret"}


def test_settings_name_the_missing_environment_variable(tmp_path):
    settings = slack_settings(tmp_path, "")
    with pytest.raises(SettingsError, match="set SLACK_BOT_TOKEN .* in the environment"):
        SlackConfig.from_settings(settings, {"SLACK_SIGNING_SECRET": "s"})
    with pytest.raises(SettingsError, match="set SLACK_SIGNING_SECRET"):
        SlackConfig.from_settings(settings, {"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(SettingsError, match="starts with xoxb-"):
        SlackConfig.from_settings(settings, TOKENS | {"SLACK_BOT_TOKEN": "xapp-1"})
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN must be"):
        SlackConfig.from_settings(settings, TOKENS | {"SLACK_APP_TOKEN": "xoxb-2"})


def test_settings_read_admins_channels_and_the_api_url(tmp_path):
    settings = slack_settings(
        tmp_path, 'admins = ["U1"]\nchannels = ["C1", "C2"]\napi_url = "http://127.0.0.1:9/api/"'
    )
    config = SlackConfig.from_settings(settings, TOKENS)
    assert (config.admins, config.channels) == ({"U1"}, {"C1", "C2"})
    assert config.api_url == "http://127.0.0.1:9/api/"
    assert config.app_token is None
    env = TOKENS | {"CITEBOT_SLACK_API_URL": "http://127.0.0.1:8/api/", "SLACK_APP_TOKEN": "xapp-1"}
    config = SlackConfig.from_settings(slack_settings(tmp_path, "", env), env)
    assert (config.api_url, config.app_token) == ("http://127.0.0.1:8/api/", "xapp-1")
    # Socket Mode needs no signing secret.
    assert SlackConfig.from_settings(
        settings, {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    )


def test_settings_reject_a_malformed_slack_table(tmp_path):
    with pytest.raises(SettingsError, match="slack.admins must be a list of Slack ids"):
        SlackConfig.from_settings(slack_settings(tmp_path, 'admins = "U1"'), TOKENS)
    with pytest.raises(SettingsError, match="slack.api_url"):
        SlackConfig.from_settings(slack_settings(tmp_path, 'api_url = "slack.com"'), TOKENS)


def test_settings_read_the_torch_threads_for_serving(tmp_path):
    def threads(table: str, env: dict[str, str] = TOKENS) -> int:
        return SlackConfig.from_settings(slack_settings(tmp_path, table, env), env).torch_threads

    assert threads("") == 1
    assert threads("torch_threads = 0") == 0
    assert threads("torch_threads = 2", TOKENS | {"CITEBOT_TORCH_THREADS": "3"}) == 3
    for bad in ("-1", "1.5", "true", '"many"'):
        with pytest.raises(SettingsError, match="slack.torch_threads .*whole number"):
            threads(f"torch_threads = {bad}")
    with pytest.raises(SettingsError, match="CITEBOT_TORCH_THREADS"):
        threads("", TOKENS | {"CITEBOT_TORCH_THREADS": "two"})


def test_the_shipped_settings_file_has_a_valid_slack_table():
    config = SlackConfig.from_settings(load_settings({}), TOKENS)
    assert config.api_url == "https://slack.com/api/"
    assert config.admins == frozenset() and config.channels == frozenset()
    assert config.torch_threads == 1


# --- the production server ---

SERVER_SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import time
    from pathlib import Path

    from bot.answering.answers import Answer, Citation
    from bot.slack import SlackConfig, create_app, middleware, serve
    from bot.slack.backend import Asked, Overview
    from bot.slack.middleware import answer_unfinished, keep_answering_unfinished
    from bot.slack.state import SlackState
    from index.settings import load_settings

    port, state_dir, quote = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    # A file whose presence makes every answer wait: the server is killed meanwhile.
    hold = Path(sys.argv[4]) if len(sys.argv) > 4 else None


    class Backend:
        def ask(self, question, context=None):
            while hold is not None and hold.exists():
                time.sleep(0.05)
            citation = Citation(quote, "Title", "a.txt", None, None, 1.0, "a.txt", 0, len(quote))
            return Asked(Answer(question, answered=True, citations=[citation]))

        def overview(self):
            return Overview(generation="gen-1", articles=1)

        def private_sources(self):
            return []

        def warm_up(self):
            pass


    def load_backend():
        # Loading the index and the models, played by a pause (LOAD_SECONDS).
        time.sleep(float(os.environ.get("LOAD_SECONDS", "0")))
        return Backend()


    config = SlackConfig.from_settings(load_settings())
    middleware.SWEEP_SECONDS = float(os.environ.get("SWEEP_SECONDS", "60"))


    def make_app(backend):  # as `citebot serve` does (bot/cli.py)
        state = SlackState(state_dir, config.answers_kept, config.state_store)
        app = create_app(config, backend, state_dir, state=state)
        answer_unfinished(app, state)
        keep_answering_unfinished(app, state)
        return app


    serve(config, make_app, load_backend, port, host="127.0.0.1")
    """
)


def server_env(fake: FakeSlack, **more: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CITEBOT_SLACK_API_URL": fake.api_url,
    } | more


def test_serve_runs_the_app_behind_gunicorn(fake, tmp_path):
    env = server_env(fake)
    with ServerProcess(SERVER_SCRIPT, str(tmp_path / "state"), QUOTE, env=env) as server:
        fake.wait_for("auth.test")  # the token is checked at start-up
        assert server.send_first_event(fake, mention("who denied it?"), "Ev1") == (200, "")
        assert fake.post(server.url, "{}", "application/json", signature="v0=bad")[0] == 401
        [answer] = fake.wait_for("chat.postMessage")
    assert QUOTE in answer.text
    assert "Using worker: BufferingWorker" in server.log
    assert "will be unused" not in server.log


def test_the_first_event_is_acknowledged_at_once_while_the_index_loads(fake, tmp_path):
    env = server_env(fake, LOAD_SECONDS="6", LOG_FORMAT="json")
    with ServerProcess(SERVER_SCRIPT, str(tmp_path / "state"), QUOTE, env=env) as server:
        # Posted as soon as the port accepts, while the (6 s) loading has just begun.
        assert server.send_first_event(fake, mention("who denied it?"), "Ev1") == (200, "")
        assert server.first_ack_s < 3
        assert server.get("/healthz") == (503, {"status": "loading"})
        assert server.get("/livez") == (200, {"status": "alive"})
        assert fake.calls_to("chat.postMessage") == []
        [answer] = fake.wait_for("chat.postMessage", timeout=60)
        ready = server.get("/healthz")
    assert QUOTE in answer.text
    assert ready == (200, {"status": "ok", "generation": "gen-1", "articles": 1})
    logged = [json.loads(line) for line in server.log.splitlines()]  # each line is JSON
    assert any(
        entry["message"].startswith("the index and the models are loaded") for entry in logged
    )
    [request] = [entry for entry in logged if entry.get("name") == "app_mention"]
    assert request["status"] == 200 and "question" not in request


def crash_while_answering(fake: FakeSlack, tmp_path: Path, event: dict) -> tuple[str, dict]:
    """Serves until `event` is acknowledged and its answer under way, then SIGKILLs the
    server; returns the state directory and the environment to restart it with."""
    hold = tmp_path / "hold"
    hold.touch()
    state, env = str(tmp_path / "state"), server_env(fake)
    with ServerProcess(SERVER_SCRIPT, state, QUOTE, str(hold), env=env) as server:
        assert server.send_first_event(fake, event, "Ev1") == (200, "")
        fake.wait_for("reactions.add")  # the answer is under way...
        server.kill()  # ...when the server dies
    assert fake.calls_to("chat.postMessage") == []
    hold.unlink()
    return state, env


def test_a_question_acknowledged_before_a_crash_is_answered_once_after_restart(fake, tmp_path):
    """Issue 29 #3: Slack does not deliver an acknowledged event again; the restarted
    server answers it unasked, once (a later re-delivery, or the message's twin event,
    changes nothing)."""
    event = mention("who denied it?")
    state, env = crash_while_answering(fake, tmp_path, event)
    with ServerProcess(SERVER_SCRIPT, state, QUOTE, env=env) as server:
        [answer] = fake.wait_for("chat.postMessage", timeout=60)  # nothing was sent to it
        assert server.send_first_event(fake, event, "Ev1") == (200, "")
        assert fake.send_event(server.url, event | {"type": "message"}, "Ev2") == (200, "")
        fake.wait_for("reactions.remove")
    assert QUOTE in answer.text and answer.body["thread_ts"] == event["ts"]
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_a_question_acknowledged_long_before_a_restart_is_told_to_ask_again(fake, tmp_path):
    event = mention("who denied it?")
    state, env = crash_while_answering(fake, tmp_path, event)
    with sqlite3.connect(Path(state) / "slack.sqlite3") as db:  # the crash was an hour ago
        db.execute("UPDATE claims SET claimed = claimed - 3600")
    with ServerProcess(SERVER_SCRIPT, state, QUOTE, env=env):
        [told] = fake.wait_for("chat.postMessage", timeout=60)
    assert told.text == messages.ANSWER_LOST and told.body["thread_ts"] == event["ts"]
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_two_servers_sharing_a_state_store_answer_a_delivery_once_and_know_the_threads(
    fake, tmp_path
):
    """Behind a load balancer, Slack's retry of an event may reach another process, and
    so may a follow-up in a thread the first one answered in."""
    env = server_env(fake, CITEBOT_STATE_STORE=f"sqlite:///{tmp_path / 'shared.sqlite3'}")
    first = mention("who denied it?")
    with (
        ServerProcess(SERVER_SCRIPT, str(tmp_path / "a"), QUOTE, env=env) as one,
        ServerProcess(SERVER_SCRIPT, str(tmp_path / "b"), QUOTE, env=env) as other,
    ):
        assert one.send_first_event(fake, first, "Ev1") == (200, "")
        fake.wait_for("reactions.remove")  # answered
        assert other.send_first_event(fake, first, "Ev1") == (200, "")  # Slack's retry
        time.sleep(0.5)  # a second answer would come now
        assert len(fake.calls_to("chat.postMessage")) == 1
        follow_up = message("and when was that?", thread_ts=first["ts"])
        assert fake.send_event(other.url, follow_up, "Ev2") == (200, "")
        answers = fake.wait_for("chat.postMessage", count=2)
        time.sleep(0.5)  # a third post would come now
    assert [a.body["thread_ts"] for a in fake.calls_to("chat.postMessage")] == [first["ts"]] * 2
    assert all(QUOTE in a.text for a in answers)
    assert not (tmp_path / "a" / "slack.sqlite3").exists()


def test_a_question_a_crashed_server_left_is_answered_by_another_without_a_restart(fake, tmp_path):
    hold = tmp_path / "hold"
    hold.touch()
    store = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    env = server_env(fake, CITEBOT_STATE_STORE=store, SWEEP_SECONDS="0.5")
    event = mention("who denied it?")
    with ServerProcess(SERVER_SCRIPT, str(tmp_path / "b"), QUOTE, env=env) as other:
        with ServerProcess(SERVER_SCRIPT, str(tmp_path / "a"), QUOTE, str(hold), env=env) as one:
            assert one.send_first_event(fake, event, "Ev1") == (200, "")
            fake.wait_for("reactions.add")  # the answer is under way...
            time.sleep(1.5)  # (the other process's sweeps leave a live process's question)
            assert other.send_first_event(fake, mention("warm-up"), "Ev0") == (200, "")
            fake.wait_for("chat.postMessage")
            one.kill()  # ...when its server dies
        hold.unlink()
        answers = fake.wait_for("chat.postMessage", count=2, timeout=60)
        time.sleep(1.5)  # more sweeps: still answered once
    assert [a.body["thread_ts"] for a in answers[1:]] == [event["ts"]]
    assert len(fake.calls_to("chat.postMessage")) == 2
    assert "acknowledged by a process that stopped" in other.log


def test_a_kept_question_is_unfinished_for_the_next_process_in_an_upgraded_state_file(
    tmp_path,
):
    with sqlite3.connect(tmp_path / "slack.sqlite3") as db:  # as citebot 0.2 left it
        db.execute(
            "CREATE TABLE claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
            "pid INTEGER NOT NULL, claimed REAL NOT NULL, done INTEGER NOT NULL DEFAULT 0)"
        )
    body = event_callback(mention("who denied it?"), "Ev1")
    before = SlackState(tmp_path)
    for key in ("event:Ev1", "event:Ev2", "event:Ev3"):
        assert before.claim(key)
    before.keep("event:Ev1", body)
    before.keep("event:Ev2", body)
    before.finish("event:Ev2")  # answered; Ev3 was never kept (not a question)
    assert before.unfinished() == []  # its own, still under way
    [lost] = SlackState(tmp_path).unfinished()  # a process that started after it
    assert (lost.key, lost.body) == ("event:Ev1", body)


def test_a_10_mb_unsigned_body_is_refused_with_one_short_log_line(fake, tmp_path):
    with ServerProcess(
        SERVER_SCRIPT, str(tmp_path / "state"), QUOTE, env=server_env(fake)
    ) as server:
        assert server.send_first_event(fake, mention("warm?"), "Ev1")[0] == 200
        huge = '{"type": "event_callback", "junk": "' + "x" * (10 * 2**20) + '"}'
        status, _ = fake.post(server.url, huge, "application/json", signature="v0=forged")
        assert status in (401, 413)
        assert fake.post(server.url, "{oops", "application/json", signature="v0=forged")[0] == 401
    refused = [line for line in server.log.splitlines() if "refused a request" in line]
    assert len(refused) == 2
    assert max(len(line) for line in server.log.splitlines()) < 500
    assert "Traceback" not in server.log


def test_a_client_waiting_for_100_continue_is_told_to_send_or_refused_at_once(fake, tmp_path):
    """curl asks `Expect: 100-continue` before a body over 1 KB: the worker answers 100
    and reads it, and refuses an announced oversized body before a byte of it is sent."""

    def head(length: int, signed: dict[str, str]) -> bytes:
        lines = [
            "POST /slack/events HTTP/1.1",
            "Host: citebot",
            "Content-Type: application/json",
            f"Content-Length: {length}",
            "Expect: 100-continue",
            *(f"{name}: {value}" for name, value in signed.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    body = json.dumps(event_callback(mention("who denied it? " + "x" * 2000), "Ev2"))
    with ServerProcess(
        SERVER_SCRIPT, str(tmp_path / "state"), QUOTE, env=server_env(fake)
    ) as server:
        assert server.send_first_event(fake, mention("warm?"), "Ev1")[0] == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(head(len(body.encode()), fake.sign(body)))
            assert client.recv(1024).startswith(b"HTTP/1.1 100 ")
            client.sendall(body.encode())
            assert client.recv(1024).startswith(b"HTTP/1.1 200 ")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(head(10 * 2**20, fake.sign("")))
            assert client.recv(1024).startswith(b"HTTP/1.1 413 ")
    assert "refused a request from 127.0.0.1: body too large (10485760 bytes)" in server.log
    assert "Traceback" not in server.log


def test_slow_and_idle_clients_hold_no_request_thread(fake, tmp_path):
    """Issue 29 #2: 24 clients that connect and send nothing, half their headers or half
    their body (more than the 8 request threads) don't stall Slack's events or /healthz,
    and the server closes them once their time to send a request is up."""
    halves = [
        b"",
        b"POST /slack/events HTTP/1.1\r\nHost: citebot\r\n",
        b"POST /slack/events HTTP/1.1\r\nHost: citebot\r\nContent-Length: 900\r\n\r\n{",
    ]
    with ServerProcess(
        SERVER_SCRIPT, str(tmp_path / "state"), QUOTE, env=server_env(fake)
    ) as server:
        assert server.send_first_event(fake, mention("warm?"), "Ev1")[0] == 200
        stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(24)]
        for number, client in enumerate(stalled):
            client.sendall(halves[number % 3])
        time.sleep(1)  # each of them has had time to take a thread
        sent = time.monotonic()
        assert server.get("/healthz")[0] == 200
        assert fake.send_event(server.url, mention("who denied it?"), "Ev2") == (200, "")
        assert time.monotonic() - sent < 3  # Slack's deadline for an acknowledgement
        fake.wait_for("chat.postMessage", count=2)
        for client in stalled:
            client.settimeout(REQUEST_SECONDS + 10)
            assert client.recv(1024) == b""  # closed, not answered
            client.close()
    assert "Traceback" not in server.log


def test_serve_connects_over_socket_mode_with_an_app_token(fake, tmp_path):
    websocket = pytest.importorskip("websockets.sync.server")
    event = mention("who denied it?")
    acknowledged = []

    def slack_side(connection) -> None:
        connection.send(json.dumps({"type": "hello", "num_connections": 1}))
        envelope = {"envelope_id": "E1", "type": "events_api", "accepts_response_payload": False}
        connection.send(json.dumps(envelope | {"payload": event_callback(event, "Ev1")}))
        for frame in connection:
            acknowledged.append(json.loads(frame))

    with websocket.serve(slack_side, "127.0.0.1", 0) as sockets:
        threading.Thread(target=sockets.serve_forever, daemon=True).start()
        ws_url = f"ws://127.0.0.1:{sockets.socket.getsockname()[1]}/"
        fake.script("apps.connections.open", body={"ok": True, "url": ws_url}, times=100)
        env = server_env(fake, SLACK_APP_TOKEN="xapp-test", SLACK_SIGNING_SECRET="")
        with ServerProcess(SERVER_SCRIPT, str(tmp_path / "state"), QUOTE, env=env):
            [answer] = fake.wait_for("chat.postMessage")
        sockets.shutdown()
    assert answer.body["thread_ts"] == event["ts"] and QUOTE in answer.text
    assert {"envelope_id": "E1"} in acknowledged
    [connect] = fake.calls_to("apps.connections.open")[:1]
    assert connect.headers["Authorization"] == "Bearer xapp-test"


def test_the_manifest_asks_for_what_the_app_uses():
    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load((PROJECT_ROOT / "config" / "slack-manifest.yml").read_text())
    features, settings = manifest["features"], manifest["settings"]
    assert {c["command"] for c in features["slash_commands"]} == {"/ask", "/citebot"}
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_home_opened",
        "app_mention",
        "app_uninstalled",
        "assistant_thread_context_changed",
        "assistant_thread_started",
        "message.channels",
        "message.groups",
        "message.im",
        "message.mpim",
        "tokens_revoked",
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "assistant:write",
        "channels:history",
        "chat:write",
        "commands",
        "files:read",
        "groups:history",
        "im:history",
        "mpim:history",
        "reactions:write",
    }
    assert features["assistant_view"]["assistant_description"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    urls = [c["url"] for c in features["slash_commands"]]
    urls += [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert all(url == "https://YOUR-HOST/slack/events" for url in urls)
    assert features["app_home"]["messages_tab_enabled"] is True


# --- the assistant view ---


def test_a_new_assistant_thread_gets_prompts_from_the_latest_headlines(fake, tmp_path):
    with running(make_app(fake, tmp_path)) as url:
        started = assistant_thread_started()
        assert fake.send_event(url, started, "Ev1") == (200, "")
        [prompts] = fake.wait_for("assistant.threads.setSuggestedPrompts")
    thread = started["assistant_thread"]
    assert (prompts.body["channel_id"], prompts.body["thread_ts"]) == (
        thread["channel_id"],
        thread["thread_ts"],
    )
    assert [p["message"] for p in prompts.body["prompts"]] == [
        "What happened with Syria denies the claim?",
        "What happened with Vardo lighthouse relit?",
    ]


def test_suggested_prompts_may_be_fixed_by_a_setting(fake, tmp_path):
    app = make_app(fake, tmp_path, suggested_prompts=("Who won Super Bowl 50?",))
    with running(app) as url:
        fake.send_event(url, assistant_thread_started(), "Ev1")
        [prompts] = fake.wait_for("assistant.threads.setSuggestedPrompts")
    assert prompts.body["prompts"] == [
        {"title": "Who won Super Bowl 50?", "message": "Who won Super Bowl 50?"}
    ]


def test_an_assistant_question_gets_a_title_a_status_then_the_answer(fake, tmp_path):
    backend = CannedBackend()
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        thread_ts = new_ts()
        question = direct_message("who denied the claim?", thread_ts=thread_ts)
        assert fake.send_event(url, question, "Ev1") == (200, "")
        [answer] = fake.wait_for("chat.postMessage")
        statuses = fake.wait_for("assistant.threads.setStatus", count=2)
    [title] = fake.calls_to("assistant.threads.setTitle")
    assert (title.body["title"], title.body["thread_ts"]) == ("who denied the claim?", thread_ts)
    assert [s.body["status"] for s in statuses] == ["Searching 2,031 articles…", ""]
    assert statuses[0].time < answer.time < statuses[1].time
    assert (answer.body["channel"], answer.body["thread_ts"]) == (DM_CHANNEL, thread_ts)
    assert QUOTE in answer.text
    [feedback] = [b for b in answer.body["blocks"] if b["type"] == "context_actions"]
    buttons = feedback["elements"][0]
    assert buttons["type"] == "feedback_buttons"
    assert buttons["negative_button"]["value"].startswith("down:")


def test_feedback_buttons_element_clicks_are_recorded(fake, tmp_path):
    state = SlackState(tmp_path / "state")
    answer_id = state.save_answer(canned_answer("who denied it?"))
    with running(make_app(fake, tmp_path)) as url:
        assert fake.send_click(url, "feedback", f"down:{answer_id}", BOB)[0] == 200
        fake.wait_for("response")
    [vote] = state.feedback()
    assert (vote.user, vote.vote, vote.question) == (BOB, "down", "who denied it?")


def test_a_follow_up_is_asked_with_the_threads_earlier_question_and_articles(fake, tmp_path):
    backend = CannedBackend()
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        first = mention("who denied the claim?")
        fake.send_event(url, first, "Ev1")
        fake.wait_for("chat.postMessage")
        fake.send_event(url, message("and when was that?", thread_ts=first["ts"]), "Ev2")
        fake.wait_for("chat.postMessage", count=2)
    assert backend.contexts[0].earlier_questions == ()
    assert backend.contexts[1].earlier_questions == ("who denied the claim?",)
    assert backend.contexts[1].cited_articles == {"/articles/syria.txt"}


# --- the Home tab ---


def home_of(fake: FakeSlack, user: str) -> dict:
    [published] = [c for c in fake.calls_to("views.publish") if c.body["user_id"] == user][-1:]
    return published.body["view"]


def action_ids(view: dict) -> set[str]:
    found = set()
    for block in view["blocks"]:
        elements = block.get("elements", []) + [block.get("accessory") or {}]
        found |= {e["action_id"] for e in elements if "action_id" in e}
    return found


def test_the_home_tab_shows_admin_controls_to_admins_only(fake, tmp_path):
    state = SlackState(tmp_path / "state")
    answer_id = state.save_answer(canned_answer("who denied it?"))
    state.record_feedback(BOB, answer_id, "down")
    with running(make_app(fake, tmp_path)) as url:
        fake.send_event(url, app_home_opened(ALICE), "Ev1")
        fake.send_event(url, app_home_opened(BOB), "Ev2")
        fake.wait_for("views.publish", count=2)
    admin, everyone = home_of(fake, ALICE), home_of(fake, BOB)
    assert admin["type"] == everyone["type"] == "home"
    assert action_ids(admin) == {"home_add_source", "home_remove_source"}
    assert action_ids(everyone) == set()
    assert "2,031 articles from 2 sources" in json.dumps(everyone)
    assert "who denied it?" in json.dumps(admin) and "who denied it?" not in json.dumps(everyone)
    # A configured source is removed in the settings file, an added one by its button.
    [remove] = [b["accessory"] for b in admin["blocks"] if b.get("accessory")]
    assert remove["value"] == "https://example.com/x"


def test_an_admins_remove_button_removes_the_source_and_updates_the_home_tab(fake, tmp_path):
    backend = CannedBackend()
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        assert (
            fake.send_home_click(url, "home_remove_source", "https://example.com/x", BOB)[0] == 200
        )
        assert (
            fake.send_home_click(url, "home_remove_source", "https://example.com/x", ALICE)[0]
            == 200
        )
        fake.wait_for("views.publish")
    assert backend.removed == [(["https://example.com/x"], ALICE)]
    assert "Removed `https://example.com/x`: 0 added" in json.dumps(home_of(fake, ALICE))


def test_the_home_tab_shows_each_sources_last_error_and_the_latest_refresh(fake, tmp_path):
    backend = CannedBackend()
    backend.overview_result = dataclasses.replace(
        backend.overview_result,
        sources=(
            IndexedSource("https://example.com/rss", 3, False, "feed", ALICE, "HTTP 503 <!here>"),
        ),
        last_report=LibraryReport("refresh", "2026-12-01T09:30:00+00:00", ("1 failed", PINGING)),
    )
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        fake.send_event(url, app_home_opened(ALICE), "Ev1")
        fake.wait_for("views.publish")
    texts = json.dumps([b.get("text") for b in home_of(fake, ALICE)["blocks"]])
    assert f"`https://example.com/rss` (feed): 3 article(s); added by <@{ALICE}>" in texts
    assert "Last read failed: HTTP 503 &lt;!here&gt;" in texts
    assert "*Latest refresh* (2026-12-01 09:30)" in texts
    for markup in ("<!here>", "<!channel>", "<@U0BOSS>"):
        assert markup not in texts


def test_citebot_sources_lists_the_library_escaped_for_admins_only(fake, tmp_path):
    backend = CannedBackend()
    backend.library = [
        SourceStatus(LibrarySource("https://example.com/<!channel>", "url", added_by=ALICE), 1)
    ]
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        assert fake.send_command(url, "/citebot", "sources", BOB) == (200, messages.NOT_ADMIN)
        assert fake.send_command(url, "/citebot", "sources", ALICE) == (200, "")
        [listed] = fake.wait_for("response")
        fake.send_command(url, "/citebot", "remove", ALICE)
    text = listed.body["text"]
    assert text.startswith("*The source library*\n```url     https://example.com/&lt;!channel&gt;")
    assert "<!channel>" not in text
    assert backend.removed == []


def test_citebot_remove_passes_the_admin_and_reports_what_left(fake, tmp_path):
    backend = CannedBackend()
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        reply = fake.send_command(url, "/citebot", "remove <https://example.com/x>", ALICE)
        [report] = fake.wait_for("response")
        usage = fake.send_command(url, "/citebot", "remove", ALICE)
    assert reply == (200, messages.REMOVING.format(count=1))
    assert backend.removed == [(["https://example.com/x"], ALICE)]
    assert report.body["text"].startswith("Removed `https://example.com/x`: 0 added")
    assert "removed: https://example.com/x" in report.body["text"]
    assert usage == (200, messages.REMOVE_USAGE)


def test_the_add_modal_opens_and_refuses_what_is_not_a_url(fake, tmp_path):
    with running(make_app(fake, tmp_path)) as url:
        fake.send_home_click(url, "home_add_source", "", ALICE)
        [opened] = fake.wait_for("views.open")
        status, text = fake.send_view_submission(
            url, opened.body["view"]["callback_id"], {"urls": {"urls": "/etc/passwd"}}, ALICE
        )
    assert status == 200
    assert json.loads(text) == {
        "response_action": "errors",
        "errors": {"urls": messages.NOT_A_URL.format(text="/etc/passwd")},
    }


# --- what reaches Slack is escaped and bounded ---

PINGING = "Everyone <!channel> look: <@U0BOSS> said <https://evil.example|click> & left."


def test_markup_in_a_quote_or_title_reaches_slack_escaped(fake, tmp_path):
    def pinging(question: str) -> Answer:
        answer = canned_answer(question)
        citation = dataclasses.replace(answer.citations[0], text=PINGING, title="<!here> news")
        return dataclasses.replace(answer, citations=[citation])

    with running(make_app(fake, tmp_path, ask=pinging)) as url:
        fake.send_event(url, mention("who?"), "Ev1")
        [answer] = fake.wait_for("chat.postMessage")
    posted = json.dumps([answer.body["text"], answer.body["blocks"]])
    for markup in ("<!channel>", "<@U0BOSS>", "<https://evil", "<!here>"):
        assert markup not in posted
    assert "&lt;!channel&gt;" in answer.body["text"]
    assert "&lt;!channel&gt;" in json.dumps(answer.body["blocks"])


def test_an_answer_with_60_long_citations_stays_within_slacks_limits(fake, tmp_path):
    def long_answer(question: str) -> Answer:
        answer = canned_answer(question)
        quotes = [
            dataclasses.replace(answer.citations[0], text=f"Quote {n} " + "word " * 500)
            for n in range(60)
        ]
        return dataclasses.replace(answer, citations=quotes)

    with running(make_app(fake, tmp_path, ask=long_answer)) as url:
        fake.send_event(url, mention("who?"), "Ev1")
        [answer] = fake.wait_for("chat.postMessage")
    blocks = answer.body["blocks"]
    assert len(blocks) <= 50
    assert sum(block_text_length(b) for b in blocks) <= 12_000
    assert len(answer.body["text"]) <= 4000
    kept = sum(1 for b in blocks if b["type"] == "section" and b["text"]["text"].startswith("> "))
    assert 0 < kept < 60
    more = messages.MORE_QUOTES.format(count=60 - kept)
    assert more in json.dumps(blocks, ensure_ascii=False)
    in_text = sum(1 for line in answer.body["text"].splitlines() if line.startswith("“"))
    assert answer.body["text"].endswith(messages.MORE_QUOTES.format(count=60 - in_text))


def test_an_add_report_escapes_the_remote_servers_reason(fake, tmp_path):
    backend = CannedBackend()
    backend.add_sources = lambda urls, added_by, visible_in="", team="": IndexReport(
        failed=[Failure(urls[0], "HTTP 404 <!channel> gotcha")]
    )
    with running(make_app(fake, tmp_path, backend=backend)) as url:
        fake.send_command(url, "/citebot", "add https://example.com/gone", ALICE)
        [report] = fake.wait_for("response")
    assert "<!channel>" not in report.body["text"]
    assert "HTTP 404 &lt;!channel&gt; gotcha" in report.body["text"]


# --- group DMs ---


def test_a_group_dm_gets_answers_to_mentions_and_follow_ups(fake, tmp_path):
    app = make_app(fake, tmp_path, channels=frozenset({"C0ALLOWED"}))
    with running(app) as url:
        first = mention("who denied it?", channel="G0GROUP", channel_type="mpim")
        fake.send_event(url, first, "Ev1")
        fake.wait_for("chat.postMessage")
        follow_up = message(
            "and why?", channel="G0GROUP", channel_type="mpim", thread_ts=first["ts"]
        )
        fake.send_event(url, follow_up, "Ev2")
        fake.send_event(url, message("chatter", channel="G0GROUP", channel_type="mpim"), "Ev3")
        answers = fake.wait_for("chat.postMessage", count=2)
    assert [a.body["thread_ts"] for a in answers] == [first["ts"], first["ts"]]
    assert fake.calls_to("chat.postEphemeral") == []


# --- the HTTP front: refusals, health ---


def test_malformed_or_unsigned_requests_get_4xx_never_500(fake, tmp_path, caplog):
    with running(make_app(fake, tmp_path)) as url:
        assert fake.post(url, "{not json", "application/json")[0] == 400
        assert fake.post(url, "[1, 2]", "application/json")[0] == 400
        assert fake.post(url, "payload=%7Bnot", "application/x-www-form-urlencoded")[0] == 400
        assert fake.post(url, "{not json", "application/json", signature="v0=bad")[0] == 401
        unsigned = {"X-Slack-Request-Timestamp": "soon"}
        assert fake.post(url, "{not json", "application/json", headers=unsigned)[0] == 401
        latin1 = '{"type": "caf\udce9"}'  # the byte 0xE9, not UTF-8 (issue 29 #10)
        assert fake.post(url, latin1, "application/json", signature="v0=forged")[0] == 400
    assert fake.calls == []
    [refused] = [r for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert refused.exc_info is None and len(refused.getMessage()) < 200


def test_healthz_reports_the_index_generation_and_503_while_the_store_is_down(fake, tmp_path):
    backend = CannedBackend()
    with running(make_app(fake, tmp_path, backend=backend), backend) as url:
        health = url.replace("/slack/events", "/healthz")
        with urllib.request.urlopen(health, timeout=10) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {
                "status": "ok",
                "generation": "gen-1",
                "articles": 2031,
            }
        backend.overview_result = ConnectionError("chroma at 10.0.0.9:8000 refused")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(health, timeout=10)
    assert refused.value.code == 503
    assert json.loads(refused.value.read())["status"] == "unavailable"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics of the app at `url`, parsed by prometheus-client: (name, labels) -> value."""
    with urllib.request.urlopen(url.replace("/slack/events", "/metrics"), timeout=10) as r:
        text = r.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_acks_slack_errors_and_rate_limits_and_show_the_index(fake, tmp_path):
    backend = CannedBackend()
    backend.overview_result = dataclasses.replace(backend.overview_result, passages=9000)
    fake.script("reactions.add", status=429, headers={"Retry-After": "0"})
    fake.script("reactions.remove", body={"ok": False, "error": "no_reaction"})
    with running(make_app(fake, tmp_path, backend=backend), backend) as url:
        before = scrape(url)
        fake.send_event(url, mention("who denied it?"), "Ev1")
        fake.wait_for("chat.postMessage")
        fake.wait_for("reactions.remove")
        fake.wait_for("reactions.add", count=2)  # the 429, then its retry
        after = scrape(url)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("citebot_questions_total", surface="thread", outcome="answered") == 1
    assert moved("citebot_answer_seconds_count", surface="thread") == 1
    assert moved("citebot_ack_seconds_count") == 1
    assert moved("citebot_ack_seconds_bucket", le="3.0") == 1
    assert moved("citebot_slack_api_rate_limited_total", method="reactions.add") == 1
    assert moved("citebot_slack_api_errors_total", method="reactions.remove", error="no_reaction")
    assert after[("citebot_index_articles", ())] == 2031
    assert after[("citebot_index_passages", ())] == 9000
    assert after[("citebot_ready", ())] == 1


def test_a_request_is_one_log_line_without_its_question_unless_asked(fake, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="citebot.slack")
    app = make_app(fake, tmp_path)
    with running(app) as url:
        fake.send_event(url, mention("who denied the secret claim?"), "Ev1")
        fake.wait_for("chat.postMessage")
    [line] = [r for r in caplog.records if getattr(r, "fields", {}).get("kind")]
    assert line.fields["name"] == "app_mention" and line.fields["status"] == 200
    assert line.fields["channel"] == CHANNEL and line.fields["user"] == ALICE
    logged = json.loads(JsonFormatter().format(line))
    assert logged["message"].startswith("slack event_callback app_mention 200 in")
    assert "secret" not in json.dumps(logged)
    assert request_fields(b"command=%2Fask&text=why%3F", "", True)["question"] == "why?"
    assert "question" not in request_fields(b"command=%2Fask&text=why%3F", "", False)


def test_answers_kept_for_buttons_are_bounded(tmp_path):
    state = SlackState(tmp_path / "state", answers_kept=3)
    ids = [state.save_answer(canned_answer(f"question {n}")) for n in range(5)]
    assert state.answer_count() == 3
    assert state.load_answer(ids[0]) is None and state.load_answer(ids[-1]) is not None
