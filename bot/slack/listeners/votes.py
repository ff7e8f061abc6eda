"""👍 / 👎 under an answer: the vote stored while Slack waits, then a private thank-you."""

from __future__ import annotations

import re

from slack_bolt import Ack, App, BoltContext, Respond

from bot.slack import messages
from bot.slack.listeners.shared import Citebot, Payload, privately
from bot.slack.state import SlackState

# Two buttons (feedback_up, feedback_down), or the feedback buttons element (feedback).
VOTE_ACTIONS = re.compile(r"^feedback(_up|_down)?$")


def register(app: App, bot: Citebot) -> None:
    def record(ack: Ack, body: Payload, action: Payload, context: BoltContext) -> None:
        # Recorded before acknowledging, so an acknowledged vote is a stored vote.
        vote, answer_id = read_vote(action)
        bot.state.record_feedback(body["user"]["id"], answer_id, vote, bot.workspace(context))
        ack()

    def thank(action: Payload, respond: Respond) -> None:
        privately(respond)(thanks(bot.state, action))

    app.action(VOTE_ACTIONS)(ack=record, lazy=[thank])


def thanks(state: SlackState, action: Payload) -> str:
    """The reply to a vote: thanks, or that the answer is no longer kept."""
    vote, answer_id = read_vote(action)
    if state.load_answer(answer_id) is None:
        return messages.ANSWER_GONE
    return messages.FEEDBACK_THANKS.format(
        vote=messages.HELPFUL if vote == "up" else messages.NOT_HELPFUL
    )


def read_vote(action: Payload) -> tuple[str, str]:
    """("up" or "down", answer id) of a click on 👍 / 👎 (two buttons, or the feedback
    buttons element, whose values are "up:ID" and "down:ID")."""
    if action["action_id"] == "feedback":
        vote, _, answer_id = action.get("value", "").partition(":")
        return ("up" if vote == "up" else "down"), answer_id
    return ("up" if action["action_id"] == "feedback_up" else "down"), action["value"]
