"""Global middleware: concerns every request shares, applied before any listener runs."""

from __future__ import annotations

from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import BoltResponse

from bot.slack.state import SlackState

Middleware = Callable[..., BoltResponse]


def ignore_bot_messages(body: dict[str, Any], next: Callable[[], BoltResponse]) -> BoltResponse:
    """Acknowledges and drops events posted by any bot (bolt already drops our own)."""
    event = body.get("event") or {}
    if event.get("bot_id") or event.get("subtype") == "bot_message":
        return BoltResponse(status=200, body="")
    return next()


def once_per_event(state: SlackState) -> Middleware:
    """Drops events Slack delivers again (its retries, or after a restart): acknowledged, unrun."""

    def answer_each_event_once(
        body: dict[str, Any], next: Callable[[], BoltResponse], logger: Logger
    ) -> BoltResponse:
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and event_id:
            if not state.first_delivery(f"event:{event_id}"):
                logger.info("skipping event %s: already delivered", event_id)
                return BoltResponse(status=200, body="")
        return next()

    return answer_each_event_once
