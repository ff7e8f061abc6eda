"""Installing citebot into many workspaces: bolt's OAuth flow against the loopback fake
Slack (which plays oauth.v2.access), a token per workspace, uninstalls and revocations,
each workspace's own sources, and the settings that switch it on. The single-token mode is
the rest of the Slack tests.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DEMO_ARTICLES, make_settings
from slack_bolt import App
from slack_fake import (
    ALICE,
    BOB,
    BOT_TOKEN,
    SIGNING_SECRET,
    Call,
    FakeSlack,
    Workspace,
    app_home_opened,
    event_callback,
    file_upload,
    mention,
    running,
)
from test_private_sources import RELIT_BY
from test_slack import LIGHTHOUSE, LIGHTHOUSE_QUESTION, backend_of, button_value
from test_slack_app import QUOTE, CannedBackend

from bot.cli import main
from bot.slack import SlackConfig, create_app, messages
from bot.slack.installs import BOT_SCOPES
from bot.slack.middleware import answer_unfinished
from bot.slack.state import SlackState
from bot.sources_admin import sources_lines
from index.errors import SettingsError
from index.report import IndexReport
from index.settings import PROJECT_ROOT, load_settings
from index.sources.library import LIBRARY_COLLECTION, LibrarySource, SourceLibrary
from index.store.article_index import ArticleIndex
from index.store.status import SourceStatus

CLIENT_ID = "111.222"
CLIENT_SECRET = "client-s3cret"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    slack = FakeSlack().start()
    yield slack
    slack.stop()


def oauth_config(fake: FakeSlack, tmp_path: Path, **changes: object) -> SlackConfig:
    config = SlackConfig(
        bot_token="",
        signing_secret=SIGNING_SECRET,
        api_url=fake.api_url,
        admins={ALICE},
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        installation_store=f"sqlite:///{tmp_path / 'installations.sqlite3'}",
    )
    return dataclasses.replace(config, **changes)


def oauth_app(fake: FakeSlack, tmp_path: Path) -> App:
    return create_app(oauth_config(fake, tmp_path), CannedBackend(), tmp_path / "state")


def get(url: str, cookie: str = "") -> tuple[int, str, str]:
    """GET `url` as an installer's browser would: status, body, the cookie it sets."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            set_cookie = response.headers.get("Set-Cookie", "")
            return response.status, response.read().decode(), set_cookie.split(";")[0]
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), ""


def install(events_url: str, workspace: Workspace) -> tuple[int, str]:
    """The "Add to Slack" round trip: the install page, Slack's consent (played here: its
    redirect back carries the workspace's code and the page's state), the redirect page."""
    base = events_url.removesuffix("/slack/events")
    status, page, cookie = get(base + "/slack/install")
    assert status == 200, page
    state = re.search(r"state=([\w-]+)", page)[1]
    status, done, _ = get(
        f"{base}/slack/oauth_redirect?code={workspace.code}&state={state}", cookie
    )
    return status, done


def posted_with(fake: FakeSlack, token: str) -> list:
    return [
        c
        for c in fake.calls_to("chat.postMessage")
        if c.headers.get("Authorization") == f"Bearer {token}"
    ]


def test_two_workspaces_install_and_each_is_answered_with_its_own_token(fake, tmp_path):
    first, second = fake.add_workspace("T0FIRST"), fake.add_workspace("T0SECOND")
    app = oauth_app(fake, tmp_path)
    with running(app) as url:
        base = url.removesuffix("/slack/events")
        status, page, _ = get(base + "/slack/install")
        scopes = re.search(r"scope=([^&\"]+)", page)[1]
        assert set(urllib.parse.unquote(scopes).split(",")) == set(BOT_SCOPES)
        assert install(url, first)[0] == 200
        assert install(url, second)[0] == 200
        exchanged = fake.calls_to("oauth.v2.access")
        assert [c.body["code"] for c in exchanged] == [first.code, second.code]

        fake.send_event(url, mention("who denied the claim?"), "Ev0SECOND", team="T0SECOND")
        fake.wait_for("chat.postMessage", lambda c: QUOTE in c.text)
        assert [QUOTE in c.text for c in posted_with(fake, second.bot_token)] == [True]
        assert posted_with(fake, first.bot_token) == []

        fake.send_event(url, mention("who denied the claim?"), "Ev0FIRST", team="T0FIRST")
        fake.wait_for("chat.postMessage", lambda c: QUOTE in c.text, count=2)
    assert [QUOTE in c.text for c in posted_with(fake, first.bot_token)] == [True]
    stored = app.installation_store.find_installation(enterprise_id=None, team_id="T0FIRST")
    assert (stored.bot_token, stored.user_id) == (first.bot_token, first.installer)


def test_an_uninstalled_workspace_is_refused_politely_and_its_tokens_are_gone(fake, tmp_path):
    gone, stays = fake.add_workspace("T0GONE"), fake.add_workspace("T0STAYS")
    app = oauth_app(fake, tmp_path)
    store = app.installation_store
    with running(app) as url:
        install(url, gone)
        install(url, stays)
        status, _ = fake.send_event(url, {"type": "app_uninstalled"}, "Ev0UNINST", team="T0GONE")
        assert status == 200
        assert store.find_bot(enterprise_id=None, team_id="T0GONE") is None
        assert store.find_installation(enterprise_id=None, team_id="T0GONE") is None

        status, text = fake.send_event(url, mention("who denied?"), "Ev0AFTER", team="T0GONE")
        assert (status, text) == (200, messages.NOT_INSTALLED)
        fake.send_event(url, mention("who denied?"), "Ev0STAYS", team="T0STAYS")
        fake.wait_for("chat.postMessage", lambda c: QUOTE in c.text)

        revoked = {"type": "tokens_revoked", "tokens": {"bot": [stays.bot_user_id]}}
        fake.send_event(url, revoked, "Ev0REVOKED", team="T0STAYS")
        assert store.find_bot(enterprise_id=None, team_id="T0STAYS") is None
        status, text = fake.send_event(url, mention("who?"), "Ev0STAYS2", team="T0STAYS")
        assert text == messages.NOT_INSTALLED
    assert posted_with(fake, gone.bot_token) == []
    assert len(posted_with(fake, stays.bot_token)) == 1


def test_an_install_without_the_install_pages_state_stores_nothing(fake, tmp_path):
    workspace = fake.add_workspace("T0FORGED")
    app = oauth_app(fake, tmp_path)
    with running(app) as url:
        base = url.removesuffix("/slack/events")
        status, _, _ = get(f"{base}/slack/oauth_redirect?code={workspace.code}&state=forged")
        assert status >= 400
        status, text = fake.send_event(url, mention("who denied?"), "Ev0FORGED", team="T0FORGED")
    assert fake.calls_to("oauth.v2.access") == []
    assert app.installation_store.find_bot(enterprise_id=None, team_id="T0FORGED") is None
    assert text == messages.NOT_INSTALLED


def test_with_one_token_the_install_pages_are_absent_and_an_uninstall_is_logged(
    fake, tmp_path, caplog
):
    config = SlackConfig(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=fake.api_url)
    with running(create_app(config, CannedBackend(), tmp_path / "state")) as url:
        assert get(url.removesuffix("/slack/events") + "/slack/install")[0] == 404
        with caplog.at_level(logging.ERROR, logger="citebot.slack"):
            status, _ = fake.send_event(url, {"type": "app_uninstalled"}, "Ev0UNINSTALLED")
    assert status == 200
    assert "SLACK_BOT_TOKEN no longer works" in caplog.text


# --- settings ---

OAUTH_ENV = {"SLACK_CLIENT_SECRET": CLIENT_SECRET, "SLACK_SIGNING_SECRET": "s"}


def test_a_client_id_switches_to_many_workspaces_with_a_sqlite_store_by_default(tmp_path):
    settings = load_settings({"CITEBOT_HOME": str(tmp_path), "SLACK_CLIENT_ID": CLIENT_ID})
    config = SlackConfig.from_settings(settings, OAUTH_ENV)
    assert config.many_workspaces and config.bot_token == ""
    assert config.client_secret == CLIENT_SECRET
    assert config.installation_store == f"sqlite:///{tmp_path}/slack/installations.sqlite3"
    shared = load_settings(
        {"SLACK_CLIENT_ID": CLIENT_ID, "CITEBOT_INSTALLATION_STORE": "postgresql://db/citebot"}
    )
    assert SlackConfig.from_settings(shared, OAUTH_ENV).installation_store.startswith("postgres")


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"SLACK_SIGNING_SECRET": "s"}, "set SLACK_CLIENT_SECRET too"),
        (OAUTH_ENV | {"SLACK_BOT_TOKEN": "xoxb-1"}, "unset SLACK_BOT_TOKEN to install"),
        (OAUTH_ENV | {"SLACK_APP_TOKEN": "xapp-1"}, "OAuth flow installs over HTTP"),
    ],
)
def test_many_workspaces_settings_name_what_to_fix(tmp_path, environ, says):
    settings = load_settings({"CITEBOT_HOME": str(tmp_path), "SLACK_CLIENT_ID": CLIENT_ID})
    with pytest.raises(SettingsError, match=says):
        SlackConfig.from_settings(settings, environ)


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db", "postgresql+nodriver://h/db"])
def test_serve_with_an_unusable_installation_store_is_one_line(tmp_path, monkeypatch, url):
    environ = OAUTH_ENV | {"SLACK_CLIENT_ID": CLIENT_ID, "CITEBOT_INSTALLATION_STORE": url}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--host", "127.0.0.1"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: slack.installation_store (CITEBOT_INSTALLATION_STORE)")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_the_install_asks_for_the_manifests_bot_scopes_and_events():
    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load((PROJECT_ROOT / "config" / "slack-manifest.yml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(BOT_SCOPES)
    assert manifest["oauth_config"]["redirect_urls"] == ["https://YOUR-HOST/slack/oauth_redirect"]
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_uninstalled", "tokens_revoked"} <= events


def test_installing_is_logged_without_the_installers_code(fake, tmp_path, caplog):
    workspace = fake.add_workspace("T0LOGGED")
    with caplog.at_level(logging.INFO, logger="citebot.slack"):
        with running(oauth_app(fake, tmp_path)) as url:
            install(url, workspace)
    lines = [r.getMessage() for r in caplog.records if r.name == "citebot.slack"]
    assert "slack install /slack/oauth_redirect 200" in lines
    assert workspace.code not in caplog.text and json.dumps(workspace.code) not in caplog.text


def test_questions_lost_in_a_crash_are_answered_with_their_workspaces_token(fake, tmp_path):
    """Issue 29 #3, installed in many workspaces: at the next start a question acknowledged
    before a crash is answered, and one acknowledged long before is told to ask again,
    each with the token of the workspace it came from (the app's own client has none)."""
    workspace = fake.add_workspace("T0FIRST")
    with running(oauth_app(fake, tmp_path)) as url:
        assert install(url, workspace)[0] == 200
    crashed = SlackState(tmp_path / "state")
    for event_id, question in (("Ev1", "who denied the claim?"), ("Ev2", "and the late one?")):
        assert crashed.claim(f"event:{event_id}")
        body = event_callback(mention(question), event_id, team="T0FIRST")
        crashed.keep(f"event:{event_id}", body)
    with sqlite3.connect(tmp_path / "state" / "slack.sqlite3") as db:  # an hour ago
        db.execute("UPDATE claims SET claimed = claimed - 3600 WHERE key = 'event:Ev2'")
    assert answer_unfinished(oauth_app(fake, tmp_path), SlackState(tmp_path / "state")) == 2
    fake.wait_for("chat.postMessage", count=2)
    posted = posted_with(fake, workspace.bot_token)
    assert len(posted) == 2 and messages.ANSWER_LOST in [c.text for c in posted]
    assert any(QUOTE in c.text for c in posted)


# --- each workspace's own sources: the real index ---

UPLOAD = f"upload://{ALICE}/lighthouse.md"
HARBOUR = b"""---
title: Hammerfest harbour reopens
published: 2024-03-06
---

The harbour at Hammerfest reopened on Wednesday after the storm damage was repaired.
"""


def ask_in(fake: FakeSlack, url: str, team: str, event_id: str) -> Call:
    """Asks the lighthouse question in a public channel of workspace `team`; its answer."""
    event = mention(LIGHTHOUSE_QUESTION)
    fake.send_event(url, event, event_id, team=team)
    in_thread = lambda c: c.body.get("thread_ts") == event["ts"]  # noqa: E731
    return fake.wait_for("chat.postMessage", in_thread, timeout=120)[0]


def command_in(fake: FakeSlack, url: str, team: str, text: str) -> str:
    """`/citebot TEXT` typed by Alice in a public channel of workspace `team`; its reply."""
    before = len(fake.calls_to("response"))
    fake.send_command(url, "/citebot", text, ALICE, team=team)
    return fake.wait_for("response", count=before + 1, timeout=120)[-1].body["text"]


def home_of(fake: FakeSlack, url: str, team: str, event_id: str) -> str:
    """Alice's Home tab (an admin's) in workspace `team`, as JSON."""
    before = len(fake.calls_to("views.publish"))
    fake.send_event(url, app_home_opened(ALICE), event_id, team=team)
    return json.dumps(fake.wait_for("views.publish", count=before + 1, timeout=60)[-1].body)


def eventually(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_what_a_workspace_adds_answers_only_there_and_leaves_with_its_uninstall(
    fake, tmp_path, demo_index
):
    # The operator's article (added from the CLI) serves both workspaces.
    settings = make_settings(tmp_path / "home", allowed_hosts=("127.0.0.1",))
    index = ArticleIndex(settings, encoder=demo_index.encoder)
    assert index.add([str(DEMO_ARTICLES / "syria-denies-burning-prisoners-bodies-claim.txt")]).ok
    first, second = fake.add_workspace("T0FIRST"), fake.add_workspace("T0SECOND")
    app = create_app(oauth_config(fake, tmp_path), backend_of(index), tmp_path / "state")
    with running(app) as url:
        install(url, first)
        install(url, second)
        upload = file_upload(fake.add_file("lighthouse.md", LIGHTHOUSE), user=ALICE)
        fake.send_event(url, upload, "Ev0UPLOAD", team="T0SECOND")
        fake.wait_for("chat.postMessage", timeout=120)
        # Shared in the second workspace: every channel of it, and no other workspace's.
        shared = command_in(fake, url, "T0SECOND", f"share {UPLOAD}")
        in_second = ask_in(fake, url, "T0SECOND", "Ev0ASK2")
        vote = button_value(in_second.body["blocks"], "feedback_down")
        fake.send_click(url, "feedback_down", vote, BOB, team="T0SECOND")
        in_first = ask_in(fake, url, "T0FIRST", "Ev0ASK1").text
        home_in_first = home_of(fake, url, "T0FIRST", "Ev0HOME1")
        home_in_second = home_of(fake, url, "T0SECOND", "Ev0HOME2")
        listed_in_first = command_in(fake, url, "T0FIRST", "sources")
        removed_from_first = command_in(fake, url, "T0FIRST", f"remove {UPLOAD}")
        shared_from_first = command_in(fake, url, "T0FIRST", f"share {UPLOAD}")
        page = fake.add_file("harbour.md", HARBOUR, "F0HARBOUR")["url_private"]
        added_in_second = command_in(fake, url, "T0SECOND", f"add {page}")
        added_in_first = command_in(fake, url, "T0FIRST", f"add {page}")

        digest = index.library.source(UPLOAD).upload_sha256
        # Slack revokes the uninstalled app's token first: its next event is still handled.
        revoked = {"type": "tokens_revoked", "tokens": {"bot": [second.bot_user_id]}}
        fake.send_event(url, revoked, "Ev0REVOKED", team="T0SECOND")
        fake.send_event(url, {"type": "app_uninstalled"}, "Ev0UNINST", team="T0SECOND")
        eventually(lambda: index.library.source(page) is None)

    assert shared == f"Now answering in every channel from: `{UPLOAD}`."
    assert RELIT_BY in in_second.text
    assert RELIT_BY not in in_first and "lighthouse" not in in_first
    assert "syria-denies" in listed_in_first and "lighthouse" not in listed_in_first
    refused = f"{UPLOAD} is neither a source nor an indexed article of this workspace"
    assert refused in removed_from_first and refused in shared_from_first
    assert "1 added" in added_in_second
    assert added_in_first.endswith(
        f"{page} was added in another workspace, so it can't be added here too"
    )
    # The first's Home tab: neither the second's source, nor its change, nor its 👎.
    assert "lighthouse" not in home_in_first
    assert "1 articles from 1 sources" in home_in_first
    assert UPLOAD in home_in_second and LIGHTHOUSE_QUESTION in home_in_second
    assert "2 articles from 2 sources" in home_in_second
    # Gone with the uninstall: the library's record, the articles, the uploaded bytes.
    assert [s.source.key for s in index.sources()] == [
        str(DEMO_ARTICLES / "syria-denies-burning-prisoners-bodies-claim.txt")
    ]
    assert {p.origin for p in index.stored_passages().metadatas} & {UPLOAD, page} == set()
    assert index.library.get_upload(digest) is None
    refused_or_not = [
        (e.action, e.who, e.what, e.outcome.startswith("failed"))
        for e in index.audit.entries()
        if e.who in (ALICE, "T0SECOND (uninstalled)") and e.action != "upload"
    ]
    assert refused_or_not == [
        ("share", ALICE, (UPLOAD,), False),
        ("remove", ALICE, (UPLOAD,), True),
        ("share", ALICE, (UPLOAD,), True),
        ("add", ALICE, (page,), False),
        ("add", ALICE, (page,), True),
        ("remove", "T0SECOND (uninstalled)", tuple(sorted((UPLOAD, page))), False),
    ]


def test_a_library_record_without_a_workspace_serves_every_workspace(tmp_path):
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    library = SourceLibrary(client)
    # A record as the library kept it before workspaces were recorded: no `team`.
    old = {"record": "source", "key": "https://example.com/feed", "kind": "feed"}
    client.get_or_create_collection(LIBRARY_COLLECTION, embedding_function=None).upsert(
        ids=["source:https://example.com/feed"], embeddings=[[0.0]], metadatas=[old]
    )
    library.save([LibrarySource("https://example.com/x", "url", team="T0SECOND")])
    loaded = {s.key: s for s in library.sources()}
    assert loaded["https://example.com/feed"].team == ""
    assert loaded["https://example.com/feed"].answers_in("T0FIRST", "C0GENERAL")
    assert loaded["https://example.com/x"].answers_in("T0SECOND", "C0GENERAL")
    assert not loaded["https://example.com/x"].answers_in("T0FIRST", "C0GENERAL")
    lines = sources_lines([SourceStatus(loaded["https://example.com/x"], 1)])
    assert "workspace T0SECOND's: answers only there" in lines[2]


def test_with_one_token_what_is_added_in_slack_belongs_to_no_workspace(fake, tmp_path):
    added = []
    backend = CannedBackend()
    backend.add_sources = lambda urls, added_by, visible_in="", team="": (
        added.append(team) or IndexReport(added=urls)
    )
    config = SlackConfig(
        bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=fake.api_url, admins={ALICE}
    )
    with running(create_app(config, backend, tmp_path / "state")) as url:
        fake.send_command(url, "/citebot", "add https://example.com/a", ALICE, team="T0OTHER")
        fake.wait_for("response")
    assert added == [""]


def test_a_state_file_from_before_workspaces_keeps_its_votes(tmp_path):
    (tmp_path / "state").mkdir()
    with sqlite3.connect(tmp_path / "state" / "slack.sqlite3") as db:
        db.execute(
            "CREATE TABLE feedback (user TEXT NOT NULL, answer_id TEXT NOT NULL, "
            "question TEXT NOT NULL, answer_json TEXT NOT NULL, vote TEXT NOT NULL, "
            "time REAL NOT NULL, PRIMARY KEY (user, answer_id))"
        )
        db.execute("INSERT INTO feedback VALUES ('U0BOB', 'a1', 'who?', '{}', 'down', 1.0)")
    state = SlackState(tmp_path / "state")
    assert [f.question for f in state.feedback(vote="down")] == ["who?"]
    assert state.feedback(vote="down", team="T0FIRST") == []
