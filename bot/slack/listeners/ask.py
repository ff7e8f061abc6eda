"""`/ask`: a private answer with a Share button, and the button that posts it to the channel."""

from __future__ import annotations

import time
from logging import Logger

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.answering.context import QuestionContext
from bot.slack import messages
from bot.slack.blocks import answer_blocks, answer_text
from bot.slack.listeners.shared import Citebot, Payload, acknowledge, apologizing, privately
from bot.slack.metrics import count_answer
from bot.slack.pool import AnswerPool


def register(app: App, bot: Citebot, pool: AnswerPool) -> None:
    """`/ask` is answered when `pool` admits it, else refused as busy."""

    def check_question(ack: Ack, command: Payload) -> None:
        ack(refusal(bot, command))

    def refuse_busy(ack: Ack, command: Payload) -> None:
        ack(refusal(bot, command) or messages.BUSY)

    def answer(command: Payload, respond: Respond, logger: Logger) -> None:
        if not refusal(bot, command):
            answer_privately(bot, command, respond, logger)

    def share(
        body: Payload, action: Payload, client: WebClient, respond: Respond, logger: Logger
    ) -> None:
        share_answer(bot, action["value"], body, client, respond, logger)

    app.command("/ask", matchers=[pool.admit])(ack=check_question, lazy=[answer])
    app.command("/ask")(refuse_busy)
    app.action("share_answer")(ack=acknowledge, lazy=[share])


def refusal(bot: Citebot, command: Payload) -> str:
    """Why `/ask` won't answer this command ("" when it will)."""
    if not command.get("text", "").strip():
        return messages.ASK_USAGE
    name = command.get("channel_name", "")
    direct = name == "directmessage" or name.startswith("mpdm-")
    if not bot.allowed(command.get("channel_id", ""), direct=direct):
        return messages.CHANNEL_NOT_ALLOWED
    return ""


def answer_privately(bot: Citebot, command: Payload, respond: Respond, logger: Logger) -> None:
    """The answer, shown only to the person who asked, with a Share button."""
    with apologizing(privately(respond), messages.APOLOGY, logger):
        scope = bot.scope(command.get("channel_id", ""))
        started = time.perf_counter()
        answer = bot.backend.ask(command["text"].strip(), QuestionContext(scope=scope)).answer
        count_answer("ask", answer, time.perf_counter() - started)
        notes = (
            (messages.SCOPED.format(sources=", ".join(scope.patterns)),)
            if scope and scope.patterns
            else ()
        )
        respond(
            text=answer_text(answer),
            blocks=answer_blocks(answer, bot.state.save_answer(answer), share=True, notes=notes),
            response_type="ephemeral",
        )


def share_answer(
    bot: Citebot,
    answer_id: str,
    body: Payload,
    client: WebClient,
    respond: Respond,
    logger: Logger,
) -> None:
    """Posts a private `/ask` answer to the channel, then removes the private copy."""
    answer = bot.state.load_answer(answer_id)
    if answer is None:
        privately(respond)(messages.ANSWER_GONE)
        return
    with apologizing(privately(respond), messages.APOLOGY, logger):
        try:
            bot.post_answer(
                client, body["channel"]["id"], answer, answer_id, asked_by=body["user"]["id"]
            )
        except SlackApiError as err:
            if err.response.get("error") not in ("not_in_channel", "channel_not_found"):
                raise
            privately(respond)(messages.SHARE_NOT_IN_CHANNEL)
            return
        respond(delete_original=True)
