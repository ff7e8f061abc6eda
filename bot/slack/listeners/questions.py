"""Questions answered in a thread: a mention, a DM, or a follow-up in a thread I answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from logging import Logger

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.answering.context import QuestionContext
from bot.slack import messages
from bot.slack.listeners.shared import (
    DIRECT,
    Citebot,
    Payload,
    acknowledge,
    quietly,
    without_mention,
    working,
)
from bot.slack.metrics import count_answer
from bot.slack.middleware import finish_delivery, message_key
from bot.slack.pool import AnswerPool

QUESTION = {"type": "message", "subtype": [None, "thread_broadcast"]}


def register(app: App, bot: Citebot, pool: AnswerPool) -> None:
    """A question is answered when `pool` admits it (its last matcher), else told to ask
    again by the next listener."""

    def is_question_for_me(event: Payload) -> bool:
        return for_me(bot, event)

    def answer(event: Payload, context: BoltContext, client: WebClient, logger: Logger) -> None:
        answer_in_thread(bot, event, context, client, logger)

    def busy(event: Payload, context: BoltContext, client: WebClient, logger: Logger) -> None:
        say_busy(bot, event, context, client, logger)

    app.event("app_mention", matchers=[pool.admit])(ack=acknowledge, lazy=[answer])
    app.event("app_mention")(ack=acknowledge, lazy=[busy])
    app.event(QUESTION, matchers=[is_question_for_me, pool.admit])(ack=acknowledge, lazy=[answer])
    app.event(QUESTION, matchers=[is_question_for_me])(ack=acknowledge, lazy=[busy])


def for_me(bot: Citebot, event: Payload) -> bool:
    """A direct message, or a reply in a thread I answered in (no mention needed)."""
    if event.get("channel_type") == "im":
        return True
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and bot.state.answered_in_thread(event["channel"], thread_ts)


def answer_in_thread(
    bot: Citebot, event: Payload, context: BoltContext, client: WebClient, logger: Logger
) -> None:
    """A mention, a DM or a follow-up: answered in its thread, with 👀 while working."""
    with _once(bot, event, context) as mine:
        if not mine:
            return
        channel, ts = event["channel"], event["ts"]
        if not bot.allowed(channel, direct=event.get("channel_type") in DIRECT):
            quietly(
                logger,
                client.chat_postEphemeral,
                channel=channel,
                user=event.get("user"),
                text=messages.CHANNEL_NOT_ALLOWED,
            )
            return
        thread_ts = event.get("thread_ts") or ts
        question = without_mention(event.get("text", ""), context.bot_user_id)
        with working(client, channel, ts, thread_ts, logger, messages.APOLOGY):
            if not question:
                client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=messages.EMPTY_QUESTION
                )
                return
            answer(bot, client, channel, thread_ts, question, surface="thread")


def say_busy(
    bot: Citebot, event: Payload, context: BoltContext, client: WebClient, logger: Logger
) -> None:
    """A question the answer pool had no room for: told to ask again, once."""
    with _once(bot, event, context) as mine:
        if mine:
            quietly(
                logger,
                client.chat_postMessage,
                channel=event["channel"],
                thread_ts=event.get("thread_ts") or event["ts"],
                text=messages.BUSY,
            )


def answer(
    bot: Citebot,
    client: WebClient,
    channel: str,
    thread_ts: str,
    question: str,
    surface: str,
    feedback_element: bool = False,
) -> None:
    """Answers `question` in the thread, read with the thread's earlier questions and
    cited articles, from the channel's sources; remembers it for the next follow-up.
    `surface` ("thread", "assistant") labels its metrics."""
    turns = bot.state.thread_turns(channel, thread_ts)
    scope = bot.scope(channel)
    context = QuestionContext(
        earlier_questions=tuple(t.question for t in turns),
        cited_articles=frozenset(a for t in turns for a in t.article_ids),
        scope=scope,
    )
    started = time.perf_counter()
    asked = bot.backend.ask(question, context)
    count_answer(surface, asked.answer, time.perf_counter() - started)
    notes = []
    if asked.read_as:
        notes.append(messages.READ_AS.format(question=asked.read_as))
    if scope is not None and scope.patterns:
        notes.append(messages.SCOPED.format(sources=", ".join(scope.patterns)))
    # Remembered before it is posted: a follow-up may come as soon as the answer shows.
    cited = tuple(dict.fromkeys(c.article_id for c in asked.answer.citations))
    bot.state.remember_thread(channel, thread_ts, asked.read_as or question, cited)
    bot.post_answer(
        client,
        channel,
        asked.answer,
        thread_ts=thread_ts,
        notes=tuple(notes),
        feedback_element=feedback_element,
    )


@contextmanager
def _once(bot: Citebot, event: Payload, context: BoltContext) -> Iterator[bool]:
    """Whether the message is for this listener to handle (a mention arrives twice: as
    app_mention, and as message in a DM or an answered thread); marked done after."""
    key = message_key(event)
    if not bot.state.claim(key):
        yield False
        return
    try:
        yield True
    finally:
        finish_delivery(bot.state, context, key)
