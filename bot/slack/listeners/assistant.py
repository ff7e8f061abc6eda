"""The assistant view: suggested prompts for a new thread, and questions asked in it
(routed by slack_bolt's Assistant middleware)."""

from __future__ import annotations

from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.middleware.assistant import Assistant
from slack_sdk import WebClient

from bot.slack import messages
from bot.slack.listeners.questions import answer, say_busy
from bot.slack.listeners.shared import (
    Citebot,
    Payload,
    acknowledge,
    apologizing,
    one_line,
    quietly,
    without_mention,
)
from bot.slack.messages import escape
from bot.slack.middleware import finish_delivery, keep_until_answered, message_key
from bot.slack.pool import AnswerPool


def register(app: App, bot: Citebot, pool: AnswerPool) -> None:
    """The assistant view's events; a question is answered when `pool` admits it, else told
    to ask again."""

    def suggest(
        set_suggested_prompts: Callable[..., Any], context: BoltContext, logger: Logger
    ) -> None:
        try:
            suggest_prompts(bot, set_suggested_prompts, logger)
        finally:
            finish_delivery(bot.state, context)

    def answer_question(
        payload: Payload,
        context: BoltContext,
        client: WebClient,
        set_status: Callable[..., Any],
        set_title: Callable[[str], Any],
        logger: Logger,
    ) -> None:
        answer_in_assistant_thread(bot, payload, context, client, set_status, set_title, logger)

    def busy(event: Payload, context: BoltContext, client: WebClient, logger: Logger) -> None:
        say_busy(bot, event, context, client, logger)

    assistant = Assistant()
    # (lazy= only works in the decorator form: given the function, bolt ignores it.)
    assistant.thread_started(lazy=[suggest])(acknowledge)
    # The channel a person is looking at doesn't change the answer: nothing to store.
    assistant.thread_context_changed(acknowledge)
    # A file shared in a thread of the bot's DM is an upload, handled like any other.
    keep = keep_until_answered(bot.state)
    assistant.user_message(matchers=[_not_a_file, pool.admit], lazy=[answer_question])(keep)
    assistant.user_message(matchers=[_not_a_file], lazy=[busy])(keep)
    app.assistant(assistant)


def suggest_prompts(
    bot: Citebot, set_suggested_prompts: Callable[..., Any], logger: Logger
) -> None:
    """A new assistant thread: questions to start from (settings, or latest headlines)."""
    prompts = list(bot.config.suggested_prompts)
    overview = None if prompts else bot.overview(logger)
    if overview is not None:
        prompts = [messages.HEADLINE_PROMPT.format(headline=h) for h in overview.headlines]
    prompts = prompts[: messages.MAX_SUGGESTED_PROMPTS] or [messages.EXAMPLE_QUESTION]
    quietly(
        logger,
        set_suggested_prompts,
        prompts=[_prompt(p) for p in prompts],
        title=messages.PROMPTS_TITLE,
    )


def answer_in_assistant_thread(
    bot: Citebot,
    payload: Payload,
    context: BoltContext,
    client: WebClient,
    set_status: Callable[..., Any],
    set_title: Callable[[str], Any],
    logger: Logger,
) -> None:
    """A question in the assistant view: a title, a status while searching, the answer."""
    key = message_key(payload)
    if not bot.state.claim(key):
        finish_delivery(bot.state, context)  # the message is answered through its twin
        return
    channel, thread_ts = payload["channel"], payload["thread_ts"]
    try:
        question = without_mention(payload.get("text", ""), context.bot_user_id)
        if not question:
            quietly(
                logger,
                client.chat_postMessage,
                channel=channel,
                thread_ts=thread_ts,
                text=messages.EMPTY_QUESTION,
            )
            return
        if not bot.state.answered_in_thread(channel, thread_ts):
            quietly(logger, set_title, title=one_line(question)[: messages.MAX_TITLE])
        quietly(logger, set_status, status=_searching_status(bot, logger))
        post = lambda text: client.chat_postMessage(  # noqa: E731
            channel=channel, thread_ts=thread_ts, text=text
        )
        with apologizing(post, messages.APOLOGY, logger):
            team = bot.workspace(context)
            answer(
                bot, client, channel, thread_ts, question, "assistant", team, feedback_element=True
            )
    finally:
        quietly(logger, set_status, status="")
        finish_delivery(bot.state, context, key)


def _searching_status(bot: Citebot, logger: Logger) -> str:
    overview = bot.overview(logger)
    if overview is None:
        return messages.SEARCHING_SOME
    return messages.SEARCHING.format(count=f"{overview.articles:,}")


def _prompt(question: str) -> dict[str, str]:
    """A suggested prompt: its title (plain text) cut to what Slack shows, the message
    whole and escaped: a click posts it as the person's message, as mrkdwn."""
    return {"title": one_line(question)[: messages.MAX_PROMPT_TITLE], "message": escape(question)}


def _not_a_file(event: Payload) -> bool:
    return event.get("subtype") != "file_share"
