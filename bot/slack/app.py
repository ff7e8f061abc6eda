"""The bolt App: which Slack request goes to which handler, and the middleware before them."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.slack.config import SlackConfig
from bot.slack.handlers import AddSources, AddUpload, Ask, Citebot
from bot.slack.middleware import ignore_bot_messages, once_per_event
from bot.slack.state import SlackState

# A rate-limited call is retried this many times, each after Slack's Retry-After.
RATE_LIMIT_RETRIES = 3


def create_app(
    config: SlackConfig,
    ask: Ask,
    add_sources: AddSources,
    add_upload: AddUpload,
    state_dir: Path,
    client: WebClient | None = None,
) -> App:
    """The Slack app answering with `ask` and letting admins add sources with the `add_*`.

    `add_sources(["https://…"])` indexes URLs incrementally; `add_upload(name, data)` indexes
    an uploaded file's bytes. Remembered deliveries, threads and votes live in `state_dir`.
    Nothing is started here: hand the app to `serve`.
    """
    state = SlackState(state_dir)
    citebot = Citebot(config, state, ask, add_sources, add_upload)
    app = App(
        name="citebot",
        client=client or web_client(config),
        signing_secret=config.signing_secret,
        # auth.test then runs on the first request; serve() checks the token at start-up.
        token_verification_enabled=False,
        # Acknowledgements run in the request thread, inside Slack's 3 seconds; the slow part
        # of every listener is a lazy function, run on this bounded pool afterwards.
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(config.workers, thread_name_prefix="citebot-slack"),
    )
    app.use(ignore_bot_messages)
    app.use(once_per_event(state))

    app.event("app_mention")(ack=_acknowledge, lazy=[citebot.answer_in_thread])
    app.event({"type": "message", "subtype": "file_share"}, matchers=[_is_direct])(
        ack=_acknowledge, lazy=[citebot.add_uploaded_files]
    )
    app.event(
        {"type": "message", "subtype": [None, "thread_broadcast"]},
        matchers=[citebot.is_question_for_me],
    )(ack=_acknowledge, lazy=[citebot.answer_in_thread])
    # Every other message (edits, joins, chatter): acknowledged, so Slack doesn't re-deliver it.
    app.event("message")(_acknowledge)

    app.command("/ask")(ack=citebot.check_question, lazy=[citebot.answer_privately])
    app.command("/citebot")(ack=citebot.check_citebot_command, lazy=[citebot.run_citebot_command])
    app.action(re.compile(r"^feedback_(up|down)$"))(
        ack=citebot.record_vote, lazy=[citebot.thank_for_vote]
    )
    app.action("share_answer")(ack=_acknowledge, lazy=[citebot.share_answer])
    return app


def web_client(config: SlackConfig) -> WebClient:
    """A Web API client for `config.api_url` that waits out rate limits (HTTP 429)."""
    return WebClient(
        token=config.bot_token,
        base_url=config.api_url,
        retry_handlers=[
            ConnectionErrorRetryHandler(),
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )


def _acknowledge(ack: Ack) -> None:
    ack()


def _is_direct(event: dict) -> bool:
    return event.get("channel_type") == "im"
