"""Global middleware: concerns every request shares, applied before any listener runs; and
the questions a process acknowledged but died before answering, answered by the next."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.slack import messages
from bot.slack.state import SlackState

log = logging.getLogger("citebot.slack")

Middleware = Callable[..., BoltResponse]

# A question acknowledged this long ago and never answered (the process died) is not
# answered by the next process but told to ask again: the thread has moved on.
LATE_ANSWER_SECONDS = 30 * 60

# How often a serving process looks for questions that another process (on any host)
# acknowledged and died before answering: a little more than a dead process's lease.
SWEEP_SECONDS = 60

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


def keep_until_answered(state: SlackState) -> Callable[..., None]:
    """The acknowledgement of a question: its event is kept in the state file until the
    answer is posted (`finish_delivery`), so that a crash in between loses nothing."""

    def acknowledge_question(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        if context.get(DELIVERY):
            state.keep(context[DELIVERY], body)
        ack()

    return acknowledge_question


def answer_unfinished(app: App, state: SlackState, now: float | None = None) -> int:
    """Answers the questions a process that died acknowledged and left unanswered (run at
    start-up, then every SWEEP_SECONDS): each is dispatched to `app` again, as Slack
    delivered it (the app's claim on it makes sure one process answers it); one older than
    LATE_ANSWER_SECONDS is told to ask again instead. Returns how many were found."""
    now = time.time() if now is None else now
    unfinished = state.unfinished()
    for delivery in unfinished:
        event = delivery.body.get("event") or {}
        if now - delivery.claimed < LATE_ANSWER_SECONDS:
            log.info("answering %s, acknowledged by a process that stopped", delivery.key)
            # From the state store, not the network: Socket Mode's requests are not signed
            # either, and the event was checked when Slack delivered it.
            app.dispatch(BoltRequest(body=json.dumps(delivery.body), mode="socket_mode"))
            continue
        if not state.claim(delivery.key):  # another process is telling them
            continue
        log.info("telling %s to ask again: acknowledged by a process that stopped", delivery.key)
        try:
            _bot_client(app, delivery.body).chat_postMessage(
                channel=event["channel"],
                thread_ts=event.get("thread_ts") or event["ts"],
                text=messages.ANSWER_LOST,
            )
        except (SlackClientError, OSError) as err:  # a failed apology must not stop the start
            log.warning("could not tell %s to ask again: %s", delivery.key, err)
        state.finish(delivery.key)
    return len(unfinished)


def keep_answering_unfinished(app: App, state: SlackState) -> threading.Thread:
    """Runs `answer_unfinished` every SWEEP_SECONDS on a thread of its own: where several
    processes serve one state store, the questions one of them leaves behind when it
    dies are answered by another, without waiting for a restart."""

    def sweep() -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            try:
                answer_unfinished(app, state)
            except Exception:  # a database down for a moment must not end the sweeps
                log.exception("could not look for questions left unanswered")

    thread = threading.Thread(target=sweep, name="citebot-unfinished", daemon=True)
    thread.start()
    return thread


def _bot_client(app: App, body: dict[str, Any]) -> WebClient:
    """The bot's client in the workspace `body` came from: installed in many workspaces,
    `app.client` has no token, and each workspace's is its installation's."""
    store = app.installation_store
    if store is None:
        return app.client
    installed = store.find_bot(
        enterprise_id=body.get("enterprise_id"),
        team_id=body.get("team_id"),
        is_enterprise_install=bool(body.get("is_enterprise_install")),
    )
    if installed is None:
        return app.client  # uninstalled since: the post fails, and is logged as such
    return WebClient(
        token=installed.bot_token,
        base_url=app.client.base_url,
        retry_handlers=app.client.retry_handlers,
    )
