"""Global middleware: concerns every request shares, applied before any listener runs."""

from __future__ import annotations

from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import BoltContext, BoltResponse

from bot.slack.state import SlackState

Middleware = Callable[..., BoltResponse]

# Where a claimed delivery's key is kept in the context, for `finished` to mark it done.
DELIVERY = "citebot_delivery"


def ignore_bot_messages(body: dict[str, Any], next: Callable[[], BoltResponse]) -> BoltResponse:
    """Acknowledges and drops events posted by any bot (bolt already drops our own)."""
    event = body.get("event") or {}
    if event.get("bot_id") or event.get("subtype") == "bot_message":
        return BoltResponse(status=200, body="")
    return next()


def once_per_event(state: SlackState) -> Middleware:
    """Drops events handled already, or being handled by a live process: acknowledged, unrun.

    The listener marks its event finished when it is done (`finish_delivery`); a claim
    whose process died before that is taken over by Slack's next delivery of the event.
    (A message that arrives twice, as `app_mention` and as `message`, is two events: the
    listener that answers claims the message itself, `message_key`.)
    """

    def answer_each_event_once(
        body: dict[str, Any],
        context: BoltContext,
        next: Callable[[], BoltResponse],
        logger: Logger,
    ) -> BoltResponse:
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and event_id:
            key = f"event:{event_id}"
            if not state.claim(key):
                logger.info("skipping event %s: already handled", event_id)
                return BoltResponse(status=200, body="")
            context[DELIVERY] = key
        return next()

    return answer_each_event_once


def message_key(event: dict[str, Any]) -> str:
    return f"message:{event['channel']}:{event['ts']}"


def finish_delivery(state: SlackState, context: BoltContext, *keys: str | None) -> None:
    """Marks the event the listener handled, and `keys` it claimed, as done."""
    for key in (context.get(DELIVERY), *keys):
        if key:
            state.finish(key)
