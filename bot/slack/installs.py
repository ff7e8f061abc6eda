"""Installing citebot into many workspaces: bolt's OAuth flow (`/slack/install`, then
`/slack/oauth_redirect`), each workspace's token kept by slack_sdk's SQLAlchemy
installation store, and uninstalls and revoked tokens deleting theirs.

SQLAlchemy rather than slack_sdk's SQLite or file stores: one URL names a database that
every process of a deployment shares (PostgreSQL, MySQL), and SQLite in the data
directory by default needs nothing more for one host.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack import messages
from bot.slack.config import SlackConfig
from index.errors import SettingsError

log = logging.getLogger("citebot.slack")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# What the install asks for: the bot scopes of config/slack-manifest.yml (a test keeps
# the two the same).
BOT_SCOPES = (
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
)
# How long an installer has between /slack/install and Slack's redirect back.
STATE_EXPIRATION_S = 600


@dataclass(frozen=True)
class Installations:
    """Where the OAuth flow keeps what it needs: the installations (tokens per
    workspace) and the one-time `state` values of installs under way."""

    store: Any  # SQLAlchemyInstallationStore
    states: Any  # SQLAlchemyOAuthStateStore


def open_installations(config: SlackConfig) -> Installations:
    """The stores at `config.installation_store`, their tables created if missing.

    Raises SettingsError naming the setting when the URL is malformed, its driver is
    not installed or the database can't be reached.
    """
    import sqlalchemy
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    try:
        engine = sqlalchemy.create_engine(config.installation_store)
        if engine.url.get_backend_name() == "sqlite" and engine.url.database:
            Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        store = SQLAlchemyInstallationStore(client_id=config.client_id, engine=engine)
        states = SQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine)
        store.create_tables()
        states.create_tables()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, OSError) as err:
        reason = " ".join(str(err).split())[:200]
        raise SettingsError(messages.BAD_INSTALLATION_STORE.format(reason=reason)) from None
    return Installations(store, states)


def oauth_app_settings(config: SlackConfig, client: WebClient) -> dict[str, Any]:
    """The arguments that make a bolt App installable in many workspaces: the OAuth flow
    and authorization by the workspace's stored token. `client` (no token of its own)
    reaches the Web API, for `oauth.v2.access` too."""
    from slack_bolt.authorization.authorize import InstallationStoreAuthorize
    from slack_bolt.oauth.oauth_settings import OAuthSettings

    installations = open_installations(config)
    return {
        "client": client,
        "installation_store": installations.store,
        "oauth_settings": OAuthSettings(
            client_id=config.client_id,
            client_secret=config.client_secret,
            scopes=list(BOT_SCOPES),
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            installation_store=installations.store,
            state_store=installations.states,
            state_expiration_seconds=STATE_EXPIRATION_S,
            installation_store_bot_only=True,
        ),
        "installation_store_bot_only": True,
        # bolt's own authorization, with two changes. Its cache on: without it every
        # request asks Slack's auth.test before it is acknowledged; a workspace uninstalled
        # or whose token was revoked is still refused at once, since the token is looked up
        # in the store first. Bot tokens only (citebot asks for no user scopes): a revoked
        # bot token leaves the workspace's installation record, and bolt's default lookup
        # would find the dead token there.
        "authorize": InstallationStoreAuthorize(
            logger=log,
            installation_store=installations.store,
            client_id=config.client_id,
            client_secret=config.client_secret,
            bot_only=True,
            cache_enabled=True,
            client=client,
        ),
        "user_facing_authorize_error_message": messages.NOT_INSTALLED,
    }


def register(app: App, config: SlackConfig) -> None:
    """Uninstalls and revoked tokens: with many workspaces, bolt's own listeners delete
    the workspace's tokens; with one, the bot token no longer works, which is logged."""
    if config.many_workspaces:
        app.enable_token_revocation_listeners()
        return

    def token_gone(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        event = body.get("event") or {}
        team = body.get("team_id")
        log.error(messages.SINGLE_TOKEN_GONE.format(event=event.get("type"), team=team))

    app.event("app_uninstalled")(token_gone)
    app.event("tokens_revoked")(token_gone)
