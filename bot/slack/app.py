"""The bolt App: the middleware before every listener, and each job's listeners registered
(bot/slack/listeners/)."""

from __future__ import annotations

import logging
from pathlib import Path

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.slack import installs
from bot.slack.backend import Backend
from bot.slack.config import SlackConfig
from bot.slack.installs import oauth_app_settings
from bot.slack.listeners import admin, ask, assistant, home, questions, votes
from bot.slack.listeners.shared import Citebot, acknowledge
from bot.slack.metrics import READER, SlackCallCounter
from bot.slack.middleware import ignore_bot_messages, once_per_event
from bot.slack.pool import AnswerPool
from bot.slack.state import SlackState
from index.settings import Settings

# A rate-limited call is retried this many times, each after Slack's Retry-After.
RATE_LIMIT_RETRIES = 3


def create_app(
    config: SlackConfig,
    backend: Backend,
    state_dir: Path,
    client: WebClient | None = None,
    state: SlackState | None = None,
) -> App:
    """The Slack app answering from `backend` (and letting admins change its sources).

    Remembered deliveries, threads, answers and votes live in `state`, or else in
    `config.state_store`, or in `state_dir` when that is unset; `client` gives
    the token, the Web API's URL and the retry handlers. With `config.client_id` the app
    is installable in many workspaces, and the installation store is opened (its tables
    created if missing). Nothing is started and nothing is loaded here
    (`load_index_backend` loads what `citebot serve` answers from).
    """
    state = state or SlackState(state_dir, config.answers_kept, config.state_store)
    bot = Citebot(config, state, backend)
    client = client or web_client(config)
    pool = AnswerPool(config.answer_workers, config.answer_queue)
    if config.many_workspaces:  # a token per workspace, from the OAuth flow
        authorization = oauth_app_settings(config, client)
    else:
        authorization = {
            # The token, not a client: bolt reads SLACK_BOT_TOKEN from the environment
            # anyway, and given a client too it logs at every start that the token "will be
            # unused". auth.test then runs on the first request; serve() checks the token
            # at start-up.
            "token": client.token,
            "token_verification_enabled": False,
        }
    app = App(
        name="citebot",
        signing_secret=config.signing_secret,
        # Acknowledgements run in the request thread, inside Slack's 3 seconds; the slow part
        # of every listener is a lazy function, run on this bounded pool afterwards.
        process_before_response=True,
        listener_executor=pool,
        **authorization,
    )
    # Before any request: bolt's client (and the per-request copies it makes of it) goes to
    # the configured Web API, counts its failures and rate limits (/metrics), and waits out
    # rate limits.
    app.client.base_url = client.base_url
    app.client.retry_handlers = [SlackCallCounter(), *client.retry_handlers]
    app.use(ignore_bot_messages)
    app.use(once_per_event(state))
    # The assistant view first: its middleware takes the assistant thread's messages.
    assistant.register(app, bot, pool)
    questions.register(app, bot, pool)
    admin.register(app, bot)
    ask.register(app, bot, pool)
    votes.register(app, bot)
    home.register(app, bot)
    installs.register(app, bot)
    # Every other message (edits, joins, chatter): acknowledged, so Slack doesn't re-deliver it.
    app.event("message")(acknowledge)
    return app


def web_client(config: SlackConfig, logger: logging.Logger | None = None) -> WebClient:
    """A Web API client for `config.api_url` that waits out rate limits (HTTP 429) and
    tries a failed connection once more; `logger` takes slack_sdk's lines about each try."""
    return WebClient(
        token=config.bot_token or None,  # none with many workspaces: bolt sets each request's
        base_url=config.api_url,
        logger=logger,
        retry_handlers=[
            ConnectionErrorRetryHandler(),
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )


def load_index_backend(settings: Settings) -> Backend:
    """The backend `citebot serve` answers from, the index of `settings`: the model, the
    reader and the passages loaded, so that the first question is answered as fast as the
    next ones. Call it in the process that serves."""
    from bot.slack.backend import IndexBackend

    backend = IndexBackend.from_settings(settings)
    backend.warm_up()
    reader = backend.answerer.reader
    if reader is None:
        READER.info({"model": "none", "precision": "none"})
    else:  # the precision it resolved to once loaded ("auto" is bf16 or fp32 by then)
        READER.info({"model": reader.name_or_path, "precision": reader.precision})
    return backend
