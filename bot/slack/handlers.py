"""The work behind each Slack listener: answer a question, add sources, record a vote, share.

Acknowledgement functions (`check_*`, `record_vote`) run while Slack waits for its 3-second
reply; everything else runs afterwards on the app's background executor.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.answers import Answer
from bot.slack import messages
from bot.slack.blocks import answer_blocks, answer_text
from bot.slack.config import SlackConfig
from bot.slack.files import MAX_UPLOAD_BYTES, UploadTooLarge, download
from bot.slack.state import SlackState
from index.errors import CitebotError
from index.report import IndexReport

Ask = Callable[[str], Answer]
AddSources = Callable[[list[str]], IndexReport]
AddUpload = Callable[[str, bytes], IndexReport]
Payload = dict[str, Any]

WORKING_REACTION = "eyes"


class Citebot:
    """Listeners' bodies, with the callables that do the real work passed in."""

    def __init__(
        self,
        config: SlackConfig,
        state: SlackState,
        ask: Ask,
        add_sources: AddSources,
        add_upload: AddUpload,
    ) -> None:
        self.config = config
        self.state = state
        self.ask = ask
        self.add_sources = add_sources
        self.add_upload = add_upload
        # One add at a time: two admins adding at once would race on the index.
        self._index_writes = threading.Lock()

    # --- questions answered in a thread: mentions, DMs, follow-ups ---

    def is_question_for_me(self, event: Payload) -> bool:
        """A direct message, or a reply in a thread I answered in (no mention needed)."""
        if event.get("channel_type") == "im":
            return True
        thread_ts = event.get("thread_ts")
        return bool(thread_ts) and self.state.answered_in_thread(event["channel"], thread_ts)

    def answer_in_thread(
        self, event: Payload, context: BoltContext, client: WebClient, logger: Logger
    ) -> None:
        channel, ts = event["channel"], event["ts"]
        # A mention arrives twice (app_mention, and message in a DM or answered thread).
        if not self.state.first_delivery(f"message:{channel}:{ts}"):
            return
        if not self._allowed(channel, direct=event.get("channel_type") == "im"):
            _quietly(
                logger,
                client.chat_postEphemeral,
                channel=channel,
                user=event.get("user"),
                text=messages.CHANNEL_NOT_ALLOWED,
            )
            return
        thread_ts = event.get("thread_ts") or ts
        question = without_mention(event.get("text", ""), context.bot_user_id)
        with self._working(client, channel, ts, thread_ts, logger, messages.APOLOGY):
            if not question:
                client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=messages.EMPTY_QUESTION
                )
                return
            self._post_answer(client, channel, self.ask(question), thread_ts=thread_ts)
            self.state.remember_thread(channel, thread_ts)

    # --- /ask: a private answer with a share button ---

    def check_question(self, ack: Ack, command: Payload) -> None:
        ack(self._ask_refusal(command))

    def answer_privately(self, command: Payload, respond: Respond, logger: Logger) -> None:
        if self._ask_refusal(command):
            return
        with _apologizing(_privately(respond), messages.APOLOGY, logger):
            answer = self.ask(command["text"].strip())
            respond(
                text=answer_text(answer),
                blocks=answer_blocks(answer, self.state.save_answer(answer), share=True),
                response_type="ephemeral",
            )

    def _ask_refusal(self, command: Payload) -> str:
        """Why `/ask` won't answer this command ("" when it will)."""
        if not command.get("text", "").strip():
            return messages.ASK_USAGE
        direct = command.get("channel_name") == "directmessage"
        if not self._allowed(command.get("channel_id", ""), direct=direct):
            return messages.CHANNEL_NOT_ALLOWED
        return ""

    # --- buttons under an answer ---

    def record_vote(self, ack: Ack, body: Payload, action: Payload) -> None:
        # Recorded before acknowledging, so an acknowledged vote is a stored vote.
        vote = "up" if action["action_id"] == "feedback_up" else "down"
        self.state.record_feedback(body["user"]["id"], action["value"], vote)
        ack()

    def thank_for_vote(self, action: Payload, respond: Respond) -> None:
        if self.state.load_answer(action["value"]) is None:
            text = messages.ANSWER_GONE
        else:
            up = action["action_id"] == "feedback_up"
            text = messages.FEEDBACK_THANKS.format(
                vote=messages.HELPFUL if up else messages.NOT_HELPFUL
            )
        _privately(respond)(text)

    def share_answer(
        self, body: Payload, action: Payload, client: WebClient, respond: Respond, logger: Logger
    ) -> None:
        """Posts a private `/ask` answer to the channel, then removes the private copy."""
        answer_id = action["value"]
        answer = self.state.load_answer(answer_id)
        if answer is None:
            _privately(respond)(messages.ANSWER_GONE)
            return
        with _apologizing(_privately(respond), messages.APOLOGY, logger):
            try:
                self._post_answer(
                    client, body["channel"]["id"], answer, answer_id, asked_by=body["user"]["id"]
                )
            except SlackApiError as err:
                if err.response.get("error") not in ("not_in_channel", "channel_not_found"):
                    raise
                _privately(respond)(messages.SHARE_NOT_IN_CHANNEL)
                return
            respond(delete_original=True)

    # --- admins adding sources ---

    def check_citebot_command(self, ack: Ack, command: Payload) -> None:
        ack(self._citebot_command(command)[1])

    def run_citebot_command(self, command: Payload, respond: Respond, logger: Logger) -> None:
        urls, _ = self._citebot_command(command)
        if not urls:
            return
        what = ", ".join(urls)
        say = _privately(respond)
        with _apologizing(say, messages.ADD_APOLOGY.format(what=what), logger):
            say(self._add(what, lambda: self.add_sources(urls)))

    def _citebot_command(self, command: Payload) -> tuple[list[str], str]:
        """`/citebot add URL …` or help: the URLs to add (maybe none), and the immediate reply."""
        words = command.get("text", "").split()
        if not words or words[0].lower() != "add":
            return [], messages.CITEBOT_HELP
        if command.get("user_id") not in self.config.admins:
            return [], messages.NOT_ADMIN
        urls = [_unwrap_link(word) for word in words[1:]]
        if not urls:
            return [], messages.ADD_USAGE
        for url in urls:
            if not url.startswith(("http://", "https://")):
                return [], messages.NOT_A_URL.format(text=url)
        return urls, messages.ADDING.format(count=len(urls))

    def add_uploaded_files(self, event: Payload, client: WebClient, logger: Logger) -> None:
        """A file sent to me in a DM: indexed when an admin sent it, refused otherwise."""
        channel, ts = event["channel"], event["ts"]
        if not self.state.first_delivery(f"message:{channel}:{ts}"):
            return

        def say(text: str) -> None:
            client.chat_postMessage(channel=channel, thread_ts=ts, text=text)

        if event.get("user") not in self.config.admins:
            _quietly(logger, say, text=messages.NOT_ADMIN)
            return
        files = [file for file in event.get("files") or [] if file.get("id")]
        if not files:
            _quietly(logger, say, text=messages.NO_FILE)
            return
        apology = messages.ADD_APOLOGY.format(what="your file")
        with self._working(client, channel, ts, ts, logger, apology):
            for file in files:
                say(self._add_upload(client, file, logger))

    def _add_upload(self, client: WebClient, file: Payload, logger: Logger) -> str:
        name = file.get("name") or file.get("title") or file["id"]
        try:
            data = download(client, file)
        except UploadTooLarge:
            return messages.TOO_LARGE.format(name=name, limit_mb=MAX_UPLOAD_BYTES // 2**20)
        except (OSError, SlackClientError) as err:
            logger.warning("downloading %s failed: %s", name, err)
            return messages.DOWNLOAD_FAILED.format(name=name)
        return self._add(f"`{name}`", lambda: self.add_upload(name, data))

    def _add(self, what: str, add: Callable[[], IndexReport]) -> str:
        try:
            with self._index_writes:
                report = add()
        except CitebotError as err:  # its message says what to fix, and is meant to be shown
            return messages.ADD_FAILED.format(what=what, reason=err)
        return messages.report_text(what, report)

    # --- helpers ---

    def _allowed(self, channel: str, direct: bool) -> bool:
        return direct or not self.config.channels or channel in self.config.channels

    def _post_answer(
        self,
        client: WebClient,
        channel: str,
        answer: Answer,
        answer_id: str | None = None,
        thread_ts: str | None = None,
        asked_by: str | None = None,
    ) -> None:
        answer_id = answer_id or self.state.save_answer(answer)
        client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=answer_text(answer),
            blocks=answer_blocks(answer, answer_id, asked_by=asked_by),
            unfurl_links=False,
            unfurl_media=False,
        )

    @contextmanager
    def _working(
        self,
        client: WebClient,
        channel: str,
        ts: str,
        thread_ts: str,
        logger: Logger,
        apology: str,
    ) -> Iterator[None]:
        """👀 on the message while the block runs; an apology in the thread if it fails."""

        def post(text: str) -> None:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

        reaction = {"channel": channel, "timestamp": ts, "name": WORKING_REACTION}
        _quietly(logger, client.reactions_add, **reaction)
        try:
            with _apologizing(post, apology, logger):
                yield
        finally:
            _quietly(logger, client.reactions_remove, **reaction)


@contextmanager
def _apologizing(say: Callable[[str], Any], apology: str, logger: Logger) -> Iterator[None]:
    """Runs the block; if it fails, logs the cause and tells the person `apology`, never it."""
    try:
        yield
    except Exception:
        logger.exception("citebot failed to handle a Slack request")
        _quietly(logger, say, text=apology)


def _quietly(logger: Logger, call: Callable[..., Any], **kwargs: Any) -> None:
    """Makes a Slack call whose failure must not stop the work around it (logged instead)."""
    try:
        call(**kwargs)
    except (SlackClientError, OSError) as err:
        logger.warning("Slack call %s failed: %s", getattr(call, "__name__", call), err)


def _privately(respond: Respond) -> Callable[[str], Any]:
    """Replies to the person who clicked or typed, only to them, keeping the original message."""

    def say(text: str) -> Any:
        return respond(text=text, response_type="ephemeral", replace_original=False)

    return say


def without_mention(text: str, bot_user_id: str | None) -> str:
    """The question in a message: the text without mentions of the bot."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return " ".join(text.split())


def _unwrap_link(word: str) -> str:
    """Slack may send a URL as <https://…> or <https://…|label>."""
    if word.startswith("<") and word.endswith(">"):
        return word[1:-1].split("|", 1)[0]
    return word
