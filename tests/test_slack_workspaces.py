"""Installing citebot into many workspaces: bolt's OAuth flow against the loopback fake
Slack (which plays oauth.v2.access), a token per workspace, uninstalls and revocations,
and the settings that switch it on. The single-token mode is the rest of the Slack tests.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from slack_bolt import App
from slack_fake import ALICE, BOT_TOKEN, SIGNING_SECRET, FakeSlack, Workspace, mention, running
from test_slack_app import QUOTE, CannedBackend

from bot.cli import main
from bot.slack import SlackConfig, create_app, messages
from bot.slack.installs import BOT_SCOPES
from index.errors import SettingsError
from index.settings import PROJECT_ROOT, load_settings

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
