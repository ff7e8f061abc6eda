"""The Slack app's settings: tokens from the environment, the [slack] table of the settings file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.slack import messages
from index.errors import SettingsError
from index.settings import Settings

SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class SlackConfig:
    """Everything `create_app` and `serve` need; built once at start-up by `from_settings`.

    `channels` empty means: answer in any channel the bot is a member of.
    `app_token` set means: connect over Socket Mode instead of serving HTTP.
    `channel_sources` maps a channel id to the sources its questions are answered from
    (paths or URLs as indexed, as prefixes or shell patterns); other channels: all.
    `suggested_prompts` empty means: the assistant view suggests the latest headlines.
    """

    bot_token: str
    signing_secret: str
    app_token: str | None = None
    api_url: str = SLACK_API_URL
    admins: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    # Threads answering questions and adding sources in the background.
    workers: int = 4
    # PyTorch's threads per operation in the serving process; 0: torch's default (one per
    # core). One answered fastest on a shared 2-core host (docs/BENCHMARKS.md).
    torch_threads: int = 1
    # Answers kept for their buttons; a click on an older one says it is gone.
    answers_kept: int = 10_000
    channel_sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    suggested_prompts: tuple[str, ...] = ()

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> SlackConfig:
        """Reads tokens from `environ` (default os.environ) and the rest from `[slack]`.

        Raises SettingsError naming the missing variable or the invalid setting.
        """
        env = os.environ if environ is None else environ
        table = settings.extra.get("slack", {})
        if not isinstance(table, Mapping):
            raise SettingsError("[slack] in the settings file must be a table")
        app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
        if app_token is not None and not app_token.startswith("xapp-"):
            raise SettingsError(messages.BAD_APP_TOKEN)
        bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
        if not bot_token:
            raise SettingsError(messages.MISSING_BOT_TOKEN)
        if not bot_token.startswith("xoxb-"):
            raise SettingsError(messages.BAD_BOT_TOKEN)
        signing_secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        # Socket Mode requests arrive over an authenticated websocket and carry no signature.
        if not signing_secret and app_token is None:
            raise SettingsError(messages.MISSING_SIGNING_SECRET)
        api_url = env.get("CITEBOT_SLACK_API_URL", "").strip() or _text(table, "api_url")
        if api_url and not api_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"slack.api_url (CITEBOT_SLACK_API_URL) is {api_url!r}: "
                f"use a URL like {SLACK_API_URL!r}"
            )
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            api_url=api_url or SLACK_API_URL,
            admins=frozenset(_ids(table, "admins", "U012ABCDEF")),
            channels=frozenset(_ids(table, "channels", "C012ABCDEF")),
            torch_threads=_torch_threads(env, table),
            answers_kept=_count(table, "answers_kept", 10_000),
            channel_sources=_channel_sources(table),
            suggested_prompts=tuple(_prompts(table)),
        )


def _count(table: Mapping[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"slack.{key} must be a whole number of at least 1, got {value!r}")
    return value


def _channel_sources(table: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    value = table.get("channel_sources", {})
    example = '[slack.channel_sources] C012ABCDEF = ["https://example.com/news/"]'
    if not isinstance(value, Mapping):
        raise SettingsError(f"slack.channel_sources must be a table like {example}")
    scopes = {}
    for channel, sources in value.items():
        if not (
            isinstance(sources, list)
            and sources
            and all(isinstance(s, str) and s.strip() for s in sources)
        ):
            raise SettingsError(
                f"slack.channel_sources.{channel} must be a non-empty list of sources "
                f"(paths or URLs as indexed), like {example}; got {sources!r}"
            )
        scopes[channel.strip()] = tuple(s.strip() for s in sources)
    return scopes


def _prompts(table: Mapping[str, Any]) -> list[str]:
    value = table.get("suggested_prompts", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SettingsError(
            "slack.suggested_prompts must be a list of questions like "
            f'["Who denied the crematorium claim?"], got {value!r}'
        )
    return [v.strip() for v in value]


def _torch_threads(env: Mapping[str, str], table: Mapping[str, Any]) -> int:
    value: Any = env.get("CITEBOT_TORCH_THREADS", "").strip() or table.get("torch_threads", 1)
    try:
        threads = int(value) if not isinstance(value, bool | float) else -1
    except (TypeError, ValueError):
        threads = -1
    if threads < 0:
        raise SettingsError(
            f"slack.torch_threads (CITEBOT_TORCH_THREADS) is {value!r}: use a whole number "
            "of threads like 1, or 0 for PyTorch's default"
        )
    return threads


def _text(table: Mapping[str, Any], key: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise SettingsError(f"slack.{key} must be a string, got {value!r}")
    return value.strip()


def _ids(table: Mapping[str, Any], key: str, example: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SettingsError(
            f"slack.{key} must be a list of Slack ids like [{example!r}], got {value!r}"
        )
    return [v.strip() for v in value]
