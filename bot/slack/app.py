"""The bolt App: which Slack request goes to which handler, and the middleware before them."""

from __future__ import annotations

import re
from pathlib import Path

from slack_bolt import Ack, App
from slack_bolt.middleware.assistant import Assistant
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.slack.backend import Backend
from bot.slack.config import SlackConfig
from bot.slack.handlers import Citebot
from bot.slack.home import ADD_SOURCE_MODAL
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
) -> App:
    """The Slack app answering from `backend` (and letting admins change its sources).

    Remembered deliveries, threads, answers and votes live in `state_dir`; `client` gives
    the token, the Web API's URL and the retry handlers. Nothing is started and nothing is
    loaded here (`load_index_backend` loads what `citebot serve` answers from).
    """
    state = SlackState(state_dir, answers_kept=config.answers_kept)
    citebot = Citebot(config, state, backend)
    client = client or web_client(config)
    pool = AnswerPool(config.answer_workers, config.answer_queue)
    app = App(
        name="citebot",
        # The token, not a client: bolt reads SLACK_BOT_TOKEN from the environment anyway,
        # and given a client too it logs at every start that the token "will be unused".
        token=client.token,
        # auth.test then runs on the first request; serve() checks the token at start-up.
        token_verification_enabled=False,
        signing_secret=config.signing_secret,
        # Acknowledgements run in the request thread, inside Slack's 3 seconds; the slow part
        # of every listener is a lazy function, run on this bounded pool afterwards.
        process_before_response=True,
        listener_executor=pool,
    )
    # Before any request: bolt's client (and the per-request copies it makes of it) goes to
    # the configured Web API, counts its failures and rate limits (/metrics), and waits out
    # rate limits.
    app.client.base_url = client.base_url
    app.client.retry_handlers = [SlackCallCounter(), *client.retry_handlers]
    app.use(ignore_bot_messages)
    app.use(once_per_event(state))
    app.assistant(assistant_view(citebot, pool))

    # A question is answered when the pool admits it (its last matcher), else told to ask
    # again by the next listener.
    app.event("app_mention", matchers=[pool.admit])(
        ack=_acknowledge, lazy=[citebot.answer_in_thread]
    )
    app.event("app_mention")(ack=_acknowledge, lazy=[citebot.say_busy])
    app.event({"type": "message", "subtype": "file_share"}, matchers=[_is_direct])(
        ack=_acknowledge, lazy=[citebot.add_uploaded_files]
    )
    question = {"type": "message", "subtype": [None, "thread_broadcast"]}
    app.event(question, matchers=[citebot.is_question_for_me, pool.admit])(
        ack=_acknowledge, lazy=[citebot.answer_in_thread]
    )
    app.event(question, matchers=[citebot.is_question_for_me])(
        ack=_acknowledge, lazy=[citebot.say_busy]
    )
    # Every other message (edits, joins, chatter): acknowledged, so Slack doesn't re-deliver it.
    app.event("message")(_acknowledge)
    app.event("app_home_opened")(ack=_acknowledge, lazy=[citebot.publish_home])

    app.command("/ask", matchers=[pool.admit])(
        ack=citebot.check_question, lazy=[citebot.answer_privately]
    )
    app.command("/ask")(citebot.refuse_busy)
    app.command("/citebot")(ack=citebot.check_citebot_command, lazy=[citebot.run_citebot_command])
    app.action(re.compile(r"^feedback(_up|_down)?$"))(
        ack=citebot.record_vote, lazy=[citebot.thank_for_vote]
    )
    app.action("share_answer")(ack=_acknowledge, lazy=[citebot.share_answer])
    app.action("home_remove_source")(ack=_acknowledge, lazy=[citebot.remove_source])
    app.action("home_add_source")(ack=_acknowledge, lazy=[citebot.open_add_source])
    app.view(ADD_SOURCE_MODAL)(ack=citebot.check_add_source, lazy=[citebot.add_from_modal])
    return app


def assistant_view(citebot: Citebot, pool: AnswerPool) -> Assistant:
    """The assistant view's events, routed by slack_bolt's Assistant middleware; a question
    is answered when `pool` admits it, else told to ask again."""
    assistant = Assistant()
    # (lazy= only works in the decorator form: given the function, bolt ignores it.)
    assistant.thread_started(lazy=[citebot.suggest_prompts])(_acknowledge)
    # The channel a person is looking at doesn't change the answer: nothing to store.
    assistant.thread_context_changed(_acknowledge)
    # A file shared in a thread of the bot's DM is an upload, handled like any other.
    assistant.user_message(
        matchers=[_not_a_file, pool.admit], lazy=[citebot.answer_in_assistant_thread]
    )(_acknowledge)
    assistant.user_message(matchers=[_not_a_file], lazy=[citebot.say_busy])(_acknowledge)
    return assistant


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


def _acknowledge(ack: Ack) -> None:
    ack()


def _is_direct(event: dict) -> bool:
    return event.get("channel_type") == "im"


def _not_a_file(event: dict) -> bool:
    return event.get("subtype") != "file_share"
