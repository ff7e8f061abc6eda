"""The Slack app's settings: tokens from the environment, the [slack] table of the settings file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.slack import messages
from index.errors import SettingsError
from index.settings import LogSettings, Settings, SlackSettings


@dataclass(frozen=True)
class SlackConfig:
    """Everything `create_app` and `serve` need; built once at start-up by `from_settings`.

    `channels` empty means: answer in any channel the bot is a member of.
    `app_token` set means: connect over Socket Mode instead of serving HTTP.
    `channel_sources` maps a channel id to the sources its questions are answered from
    (paths or URLs as indexed, as prefixes or shell patterns); other channels: all.
    `suggested_prompts` empty means: the assistant view suggests the latest headlines.
    `client_id` set means: installable in many workspaces with Slack's OAuth flow, each
    workspace's token kept in `installation_store` (a SQLAlchemy URL), no `bot_token`.
    """

    bot_token: str
    signing_secret: str
    app_token: str | None = None
    # The defaults are [slack]'s, in index/settings/schema.py: one place for each.
    api_url: str = SlackSettings.api_url
    admins: frozenset[str] = frozenset(SlackSettings.admins)
    channels: frozenset[str] = frozenset(SlackSettings.channels)
    # Threads answering questions in the background, and questions waiting for them;
    # beyond both, a question is told to ask again (bot/slack/pool.py).
    answer_workers: int = SlackSettings.answer_workers
    answer_queue: int = SlackSettings.answer_queue
    # PyTorch's threads per operation in the serving process; 0: torch's default (one per
    # core). One answered fastest on a shared 2-core host (docs/BENCHMARKS.md).
    torch_threads: int = SlackSettings.torch_threads
    # Answers kept for their buttons; a click on an older one says it is gone.
    answers_kept: int = SlackSettings.answers_kept
    channel_sources: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(SlackSettings.channel_sources)
    )
    suggested_prompts: tuple[str, ...] = SlackSettings.suggested_prompts
    # "text" or "json" (one object a line), and whether request lines carry the question.
    log_format: str = LogSettings.format
    log_questions: bool = LogSettings.questions
    client_id: str = SlackSettings.client_id
    client_secret: str = ""
    installation_store: str = SlackSettings.installation_store
    # Where deliveries, threads, answers and votes are kept (a SQLAlchemy URL); empty:
    # slack.sqlite3 in the state directory `create_app` is given.
    state_store: str = SlackSettings.state_store

    @property
    def many_workspaces(self) -> bool:
        return bool(self.client_id)

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> SlackConfig:
        """Reads tokens from `environ` (default os.environ) and the rest from `[slack]`.

        Raises SettingsError naming the missing variable. The [slack] settings were read
        (and checked) with all the others by `load_settings`. With `slack.client_id` the
        bot has a token per workspace, from the OAuth flow, and needs the client secret
        and the signing secret instead of SLACK_BOT_TOKEN.
        """
        env = os.environ if environ is None else environ
        table = settings.slack
        app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
        if app_token is not None and not app_token.startswith("xapp-"):
            raise SettingsError(messages.BAD_APP_TOKEN)
        bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
        client_secret = env.get("SLACK_CLIENT_SECRET", "").strip()
        if table.client_id:
            _check_many_workspaces(bot_token, app_token, client_secret)
        elif not bot_token:
            raise SettingsError(messages.MISSING_BOT_TOKEN)
        elif not bot_token.startswith("xoxb-"):
            raise SettingsError(messages.BAD_BOT_TOKEN)
        signing_secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        # Socket Mode requests arrive over an authenticated websocket and carry no signature.
        if not signing_secret and app_token is None:
            raise SettingsError(messages.MISSING_SIGNING_SECRET)
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            api_url=table.api_url,
            admins=frozenset(table.admins),
            channels=frozenset(table.channels),
            torch_threads=table.torch_threads,
            answer_workers=table.answer_workers,
            answer_queue=table.answer_queue,
            answers_kept=table.answers_kept,
            channel_sources=dict(table.channel_sources),
            suggested_prompts=table.suggested_prompts,
            log_format=settings.log.format,
            log_questions=settings.log.questions,
            client_id=table.client_id,
            client_secret=client_secret,
            installation_store=table.installation_store
            or f"sqlite:///{settings.home / 'slack' / 'installations.sqlite3'}",
            state_store=table.state_store,
        )


def _check_many_workspaces(bot_token: str, app_token: str | None, client_secret: str) -> None:
    """The OAuth flow needs its client secret, and HTTP (Slack redirects installers to
    it); a single bot token beside it would be a second, conflicting way to authorize."""
    if not client_secret:
        raise SettingsError(messages.MISSING_CLIENT_SECRET)
    if bot_token:
        raise SettingsError(messages.BOT_TOKEN_WITH_CLIENT_ID)
    if app_token is not None:
        raise SettingsError(messages.SOCKET_MODE_WITH_CLIENT_ID)
