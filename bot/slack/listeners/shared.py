"""What every listener uses: the bot's parts, the admin and channel checks, posting an
answer, changing the index, and the small text and Slack-call helpers."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from logging import Logger
from typing import Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.answering.answers import Answer
from bot.slack import messages
from bot.slack.backend import Backend, Overview
from bot.slack.blocks import answer_blocks, answer_text
from bot.slack.config import SlackConfig
from bot.slack.messages import escape
from bot.slack.state import SlackState
from index.errors import CitebotError
from index.report import IndexReport
from index.retrieval import SourceScope

Payload = dict[str, Any]
# Conversations that are the bot's by invitation: a DM, a group DM.
DIRECT = ("im", "mpim")

WORKING_REACTION = "eyes"


class Citebot:
    """The parts every listener works with: the Slack settings, the remembered state and the
    backend that answers and indexes."""

    def __init__(self, config: SlackConfig, state: SlackState, backend: Backend) -> None:
        self.config = config
        self.state = state
        self.backend = backend
        # One change at a time: two admins adding at once would race on the index.
        self._index_writes = threading.Lock()

    def is_admin(self, user: str | None) -> bool:
        return user in self.config.admins

    def allowed(self, channel: str, direct: bool) -> bool:
        """Whether the bot answers in `channel` (a DM always; else per `channels`)."""
        return direct or not self.config.channels or channel in self.config.channels

    def scope(self, channel: str) -> SourceScope | None:
        """What questions asked in `channel` may be answered from: its sources
        (`slack.channel_sources`), never another conversation's private sources; None:
        everything."""
        patterns = tuple(self.config.channel_sources.get(channel, ()))
        private = self.backend.private_sources()
        hidden = frozenset(key for key, there in private.items() if there != channel)
        if not patterns and not hidden:
            return None
        # Equal scopes are one column of the snapshot: every conversation without private
        # sources of its own hides the same set, so there are few distinct ones.
        return SourceScope(patterns, hidden)

    def overview(self, logger: Logger) -> Overview | None:
        """What is indexed, or None (logged) when the index can't be read."""
        try:
            return self.backend.overview()
        except Exception as err:  # noqa: BLE001 - Chroma raises many kinds; the cause is logged
            logger.warning("reading the index failed: %s", err)
            return None

    def change(
        self,
        what: str,
        change: Callable[[], IndexReport],
        verb: str = "Indexed",
        note: str = "",
    ) -> str:
        """Runs an add or a removal and returns its report (with `note` when it ran),
        kept for the Home tab."""
        try:
            with self._index_writes:
                report = change()
        except CitebotError as err:  # its message says what to fix, and is meant to be shown
            failed = messages.REMOVE_FAILED if verb == "Removed" else messages.ADD_FAILED
            text = failed.format(what=what, reason=escape(str(err)))
        else:
            text = messages.report_text(what, report, verb) + note
        self.state.save_report("index", text)
        return text

    def share(self, sources: list[str], user: str) -> str:
        """Makes private sources public: what changed, or why nothing did (kept for the
        Home tab)."""
        what = ", ".join(f"`{escape(source)}`" for source in sources)
        try:
            with self._index_writes:
                shared = self.backend.share(sources, user)
        except CitebotError as err:  # its message names the source and what to do
            text = messages.SHARE_FAILED.format(what=what, reason=escape(str(err)))
        else:
            done = ", ".join(f"`{escape(s)}`" for s in shared)
            text = (
                messages.SHARED.format(sources=done)
                if shared
                else messages.NOT_PRIVATE.format(sources=what)
            )
        self.state.save_report("index", text)
        return text

    def post_answer(
        self,
        client: WebClient,
        channel: str,
        answer: Answer,
        answer_id: str | None = None,
        thread_ts: str | None = None,
        asked_by: str | None = None,
        notes: tuple[str, ...] = (),
        feedback_element: bool = False,
    ) -> None:
        """Posts `answer` (saved for its buttons, unless `answer_id` says where it is)."""
        answer_id = answer_id or self.state.save_answer(answer)
        blocks = answer_blocks(
            answer, answer_id, asked_by=asked_by, notes=notes, feedback_element=feedback_element
        )
        client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=answer_text(answer),
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
        )


def acknowledge(ack: Ack) -> None:
    ack()


@contextmanager
def working(
    client: WebClient, channel: str, ts: str, thread_ts: str, logger: Logger, apology: str
) -> Iterator[None]:
    """👀 on the message while the block runs; an apology in the thread if it fails."""

    def post(text: str) -> None:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

    reaction = {"channel": channel, "timestamp": ts, "name": WORKING_REACTION}
    quietly(logger, client.reactions_add, **reaction)
    try:
        with apologizing(post, apology, logger):
            yield
    finally:
        quietly(logger, client.reactions_remove, **reaction)


@contextmanager
def apologizing(say: Callable[[str], Any], apology: str, logger: Logger) -> Iterator[None]:
    """Runs the block; if it fails, logs the cause and tells the person `apology`, never it."""
    try:
        yield
    except Exception:
        logger.exception("citebot failed to handle a Slack request")
        quietly(logger, say, text=apology)


def quietly(logger: Logger, call: Callable[..., Any], **kwargs: Any) -> None:
    """Makes a Slack call whose failure must not stop the work around it (logged instead)."""
    try:
        call(**kwargs)
    except (SlackClientError, OSError) as err:
        logger.warning("Slack call %s failed: %s", getattr(call, "__name__", call), err)


def privately(respond: Respond) -> Callable[[str], Any]:
    """Replies to the person who clicked or typed, only to them, keeping the original message."""

    def say(text: str) -> Any:
        return respond(text=text, response_type="ephemeral", replace_original=False)

    return say


def one_line(text: str) -> str:
    return " ".join(text.split())


def without_mention(text: str, bot_user_id: str | None) -> str:
    """The question in a message: the text without mentions of the bot."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return " ".join(text.split())


def unwrap_link(word: str) -> str:
    """Slack may send a URL as <https://…> or <https://…|label>."""
    if word.startswith("<") and word.endswith(">"):
        return word[1:-1].split("|", 1)[0]
    return word


def url_error(urls: list[str]) -> str:
    """What is wrong with URLs an admin typed ("" if nothing)."""
    for url in urls:
        if not url.startswith(("http://", "https://")):
            return messages.NOT_A_URL.format(text=url)
    return ""
