"""The Slack app's plumbing with stand-in answering and indexing (fast, no model).

The end-to-end behaviour with the real index is in test_slack.py; this file covers what
needs a controllable `ask`: failures, slowness, refusals, settings and the gunicorn server.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slack_bolt import App
from slack_fake import (
    ALICE,
    BOB,
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    ServerProcess,
    direct_message,
    event_callback,
    mention,
    message,
    running,
)

from bot.answers import Answer, Citation
from bot.slack import SlackConfig, create_app, messages
from bot.slack.state import SlackState
from index.errors import SettingsError
from index.report import IndexReport
from index.settings import PROJECT_ROOT, load_settings

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
    fake: FakeSlack, tmp_path: Path, ask: Callable[[str], Answer] = canned_answer, **changes: object
) -> App:
    return create_app(config_for(fake, **changes), ask, no_adding, no_adding, tmp_path / "state")


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
    import sys
    from pathlib import Path

    from bot.answers import Answer, Citation
    from bot.slack import SlackConfig, create_app, serve
    from index.settings import load_settings

    port, state_dir, quote = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


    def ask(question):
        citation = Citation(quote, "Title", "a.txt", None, None, 1.0, "a.txt", 0, len(quote))
        return Answer(question, answered=True, citations=[citation])


    def add(*args):
        raise AssertionError("nothing should be added")


    config = SlackConfig.from_settings(load_settings())
    serve(config, lambda: create_app(config, ask, add, add, state_dir), port, host="127.0.0.1")
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
    assert "Using worker: gthread" in server.log


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
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "channels:history",
        "chat:write",
        "commands",
        "files:read",
        "groups:history",
        "im:history",
        "reactions:write",
    }
    assert settings["interactivity"]["is_enabled"] is True
    urls = [c["url"] for c in features["slash_commands"]]
    urls += [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert all(url == "https://YOUR-HOST/slack/events" for url in urls)
    assert features["app_home"]["messages_tab_enabled"] is True
