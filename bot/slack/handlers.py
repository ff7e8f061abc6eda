"""The work behind each Slack listener: answer a question, add sources, record a vote, share.

Acknowledgement functions (`check_*`, `record_vote`) run while Slack waits for its 3-second
reply; everything else runs afterwards on the app's background executor.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from logging import Logger
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.answering.answers import Answer
from bot.answering.context import QuestionContext, Scope
from bot.slack import messages
from bot.slack.backend import Backend, Overview
from bot.slack.blocks import answer_blocks, answer_text, fit
from bot.slack.config import SlackConfig
from bot.slack.files import MAX_UPLOAD_BYTES, UploadTooLarge, download
from bot.slack.home import add_source_modal, home_view
from bot.slack.messages import escape
from bot.slack.metrics import count_answer
from bot.slack.middleware import finish_delivery, message_key
from bot.slack.state import SlackState
from bot.sources_admin import sources_lines
from index.errors import CitebotError
from index.report import IndexReport

Payload = dict[str, Any]
# Conversations that are the bot's by invitation: a DM, a group DM.
DIRECT = ("im", "mpim")

WORKING_REACTION = "eyes"


class Citebot:
    """Listeners' bodies, with the callables that do the real work passed in."""

    def __init__(self, config: SlackConfig, state: SlackState, backend: Backend) -> None:
        self.config = config
        self.state = state
        self.backend = backend
        self.scopes = {c: Scope(sources) for c, sources in config.channel_sources.items()}
        # One change at a time: two admins adding at once would race on the index.
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
        """A mention, a DM or a follow-up: answered in its thread, with 👀 while working."""
        with self._once(event, context) as mine:
            if not mine:
                return
            channel, ts = event["channel"], event["ts"]
            if not self._allowed(channel, direct=event.get("channel_type") in DIRECT):
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
                self._answer(client, channel, thread_ts, question, surface="thread")

    def say_busy(
        self, event: Payload, context: BoltContext, client: WebClient, logger: Logger
    ) -> None:
        """A question the answer pool had no room for: told to ask again, once."""
        with self._once(event, context) as mine:
            if mine:
                _quietly(
                    logger,
                    client.chat_postMessage,
                    channel=event["channel"],
                    thread_ts=event.get("thread_ts") or event["ts"],
                    text=messages.BUSY,
                )

    @contextmanager
    def _once(self, event: Payload, context: BoltContext) -> Iterator[bool]:
        """Whether the message is for this listener to handle (a mention arrives twice: as
        app_mention, and as message in a DM or an answered thread); marked done after."""
        key = message_key(event)
        if not self.state.claim(key):
            yield False
            return
        try:
            yield True
        finally:
            finish_delivery(self.state, context, key)

    # --- the assistant view (slack_bolt's Assistant middleware routes its events) ---

    def suggest_prompts(
        self, set_suggested_prompts: Callable[..., Any], context: BoltContext, logger: Logger
    ) -> None:
        """A new assistant thread: questions to start from (settings, or latest headlines)."""
        try:
            prompts = list(self.config.suggested_prompts)
            overview = None if prompts else self._overview(logger)
            if overview is not None:
                prompts = [messages.HEADLINE_PROMPT.format(headline=h) for h in overview.headlines]
            prompts = prompts[: messages.MAX_SUGGESTED_PROMPTS] or [messages.EXAMPLE_QUESTION]
            _quietly(
                logger,
                set_suggested_prompts,
                prompts=[_prompt(p) for p in prompts],
                title=messages.PROMPTS_TITLE,
            )
        finally:
            finish_delivery(self.state, context)

    def answer_in_assistant_thread(
        self,
        payload: Payload,
        context: BoltContext,
        client: WebClient,
        set_status: Callable[..., Any],
        set_title: Callable[[str], Any],
        logger: Logger,
    ) -> None:
        """A question in the assistant view: a title, a status while searching, the answer."""
        key = message_key(payload)
        if not self.state.claim(key):
            return
        channel, thread_ts = payload["channel"], payload["thread_ts"]
        try:
            question = without_mention(payload.get("text", ""), context.bot_user_id)
            if not question:
                _quietly(
                    logger,
                    client.chat_postMessage,
                    channel=channel,
                    thread_ts=thread_ts,
                    text=messages.EMPTY_QUESTION,
                )
                return
            if not self.state.answered_in_thread(channel, thread_ts):
                _quietly(logger, set_title, title=_one_line(question)[: messages.MAX_TITLE])
            _quietly(logger, set_status, status=self._searching_status(logger))
            post = lambda text: client.chat_postMessage(  # noqa: E731
                channel=channel, thread_ts=thread_ts, text=text
            )
            with _apologizing(post, messages.APOLOGY, logger):
                self._answer(
                    client, channel, thread_ts, question, "assistant", feedback_element=True
                )
        finally:
            _quietly(logger, set_status, status="")
            finish_delivery(self.state, context, key)

    def _answer(
        self,
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
        turns = self.state.thread_turns(channel, thread_ts)
        scope = self.scopes.get(channel)
        context = QuestionContext(
            earlier_questions=tuple(t.question for t in turns),
            cited_articles=frozenset(a for t in turns for a in t.article_ids),
            scope=scope,
        )
        started = time.perf_counter()
        asked = self.backend.ask(question, context)
        count_answer(surface, asked.answer, time.perf_counter() - started)
        notes = []
        if asked.read_as:
            notes.append(messages.READ_AS.format(question=asked.read_as))
        if scope is not None:
            notes.append(messages.SCOPED.format(sources=", ".join(scope.patterns)))
        # Remembered before it is posted: a follow-up may come as soon as the answer shows.
        cited = tuple(dict.fromkeys(c.article_id for c in asked.answer.citations))
        self.state.remember_thread(channel, thread_ts, asked.read_as or question, cited)
        self._post_answer(
            client,
            channel,
            asked.answer,
            thread_ts=thread_ts,
            notes=tuple(notes),
            feedback_element=feedback_element,
        )

    def _searching_status(self, logger: Logger) -> str:
        overview = self._overview(logger)
        if overview is None:
            return messages.SEARCHING_SOME
        return messages.SEARCHING.format(count=f"{overview.articles:,}")

    def _overview(self, logger: Logger) -> Overview | None:
        """What is indexed, or None (logged) when the index can't be read."""
        try:
            return self.backend.overview()
        except Exception as err:  # noqa: BLE001 - Chroma raises many kinds; the cause is logged
            logger.warning("reading the index failed: %s", err)
            return None

    # --- /ask: a private answer with a share button ---

    def check_question(self, ack: Ack, command: Payload) -> None:
        ack(self._ask_refusal(command))

    def refuse_busy(self, ack: Ack, command: Payload) -> None:
        """`/ask` when the answer pool has no room: the refusal, or the busy reply."""
        ack(self._ask_refusal(command) or messages.BUSY)

    def answer_privately(self, command: Payload, respond: Respond, logger: Logger) -> None:
        if self._ask_refusal(command):
            return
        with _apologizing(_privately(respond), messages.APOLOGY, logger):
            scope = self.scopes.get(command.get("channel_id", ""))
            started = time.perf_counter()
            answer = self.backend.ask(command["text"].strip(), QuestionContext(scope=scope)).answer
            count_answer("ask", answer, time.perf_counter() - started)
            notes = (messages.SCOPED.format(sources=", ".join(scope.patterns)),) if scope else ()
            respond(
                text=answer_text(answer),
                blocks=answer_blocks(
                    answer, self.state.save_answer(answer), share=True, notes=notes
                ),
                response_type="ephemeral",
            )

    def _ask_refusal(self, command: Payload) -> str:
        """Why `/ask` won't answer this command ("" when it will)."""
        if not command.get("text", "").strip():
            return messages.ASK_USAGE
        name = command.get("channel_name", "")
        direct = name == "directmessage" or name.startswith("mpdm-")
        if not self._allowed(command.get("channel_id", ""), direct=direct):
            return messages.CHANNEL_NOT_ALLOWED
        return ""

    # --- buttons under an answer ---

    def record_vote(self, ack: Ack, body: Payload, action: Payload) -> None:
        # Recorded before acknowledging, so an acknowledged vote is a stored vote.
        vote, answer_id = _vote(action)
        self.state.record_feedback(body["user"]["id"], answer_id, vote)
        ack()

    def thank_for_vote(self, action: Payload, respond: Respond) -> None:
        vote, answer_id = _vote(action)
        if self.state.load_answer(answer_id) is None:
            text = messages.ANSWER_GONE
        else:
            up = vote == "up"
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

    # --- admins changing the source library ---

    def check_citebot_command(self, ack: Ack, command: Payload) -> None:
        ack(self._citebot_command(command)[2])

    def run_citebot_command(self, command: Payload, respond: Respond, logger: Logger) -> None:
        verb, items, _ = self._citebot_command(command)
        if not verb:
            return
        user = command["user_id"]
        what = ", ".join(f"`{escape(item)}`" for item in items)
        say = _privately(respond)
        if verb == "sources":
            with _apologizing(say, messages.SOURCES_APOLOGY, logger):
                say(self._sources_text())
        elif verb == "remove":
            with _apologizing(say, messages.REMOVE_APOLOGY.format(what=what), logger):
                say(self._change(what, lambda: self.backend.remove(items, user), "Removed"))
        else:
            with _apologizing(say, messages.ADD_APOLOGY.format(what=what), logger):
                say(self._change(what, lambda: self.backend.add_sources(items, user)))

    def _citebot_command(self, command: Payload) -> tuple[str, list[str], str]:
        """`/citebot add URL …`, `remove SOURCE_OR_ARTICLE …`, `sources`, or help: what to
        do ("" for nothing), its arguments, and the immediate reply."""
        words = command.get("text", "").split()
        verb = words[0].lower() if words else ""
        if verb not in ("add", "remove", "sources"):
            return "", [], messages.CITEBOT_HELP
        if command.get("user_id") not in self.config.admins:
            return "", [], messages.NOT_ADMIN
        items = [_unwrap_link(word) for word in words[1:]]
        if verb == "sources":
            return verb, [], ""  # the list follows at once
        if not items:
            return "", [], messages.ADD_USAGE if verb == "add" else messages.REMOVE_USAGE
        if verb == "remove":
            return verb, items, messages.REMOVING.format(count=len(items))
        for url in items:
            if not url.startswith(("http://", "https://")):
                return "", [], messages.NOT_A_URL.format(text=url)
        return verb, items, messages.ADDING.format(count=len(items))

    def _sources_text(self) -> str:
        lines = sources_lines(self.backend.sources())
        if not lines:
            return messages.NO_SOURCES
        return messages.SOURCES_LIST.format(lines=fit("\n".join(lines), 3500))

    def add_uploaded_files(
        self, event: Payload, context: BoltContext, client: WebClient, logger: Logger
    ) -> None:
        """A file sent to me in a DM: indexed when an admin sent it, refused otherwise."""
        try:
            self._add_uploaded_files(event, client, logger)
        finally:
            finish_delivery(self.state, context)

    def _add_uploaded_files(self, event: Payload, client: WebClient, logger: Logger) -> None:
        channel, ts = event["channel"], event["ts"]

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
                say(self._add_upload(client, file, event["user"], logger))

    def _add_upload(self, client: WebClient, file: Payload, user: str, logger: Logger) -> str:
        name = file.get("name") or file.get("title") or file["id"]
        try:
            data = download(client, file)
        except UploadTooLarge:
            return messages.TOO_LARGE.format(name=name, limit_mb=MAX_UPLOAD_BYTES // 2**20)
        except (OSError, SlackClientError) as err:
            logger.warning("downloading %s failed: %s", name, err)
            return messages.DOWNLOAD_FAILED.format(name=name)
        return self._change(f"`{escape(name)}`", lambda: self.backend.add_upload(name, data, user))

    def _change(self, what: str, change: Callable[[], IndexReport], verb: str = "Indexed") -> str:
        """Runs an add or a removal and returns its report, kept for the Home tab."""
        try:
            with self._index_writes:
                report = change()
        except CitebotError as err:  # its message says what to fix, and is meant to be shown
            failed = messages.REMOVE_FAILED if verb == "Removed" else messages.ADD_FAILED
            text = failed.format(what=what, reason=escape(str(err)))
        else:
            text = messages.report_text(what, report, verb)
        self.state.save_report("index", text)
        return text

    # --- the Home tab ---

    def publish_home(
        self, event: Payload, client: WebClient, logger: Logger, context: BoltContext
    ) -> None:
        try:
            if event.get("tab", "home") == "home":
                self._publish_home(client, event["user"], logger)
        finally:
            finish_delivery(self.state, context)

    def _publish_home(self, client: WebClient, user: str, logger: Logger) -> None:
        admin = user in self.config.admins
        view = home_view(
            overview=self._overview(logger),
            admin=admin,
            report=self.state.latest_report() if admin else None,
            down_votes=self.state.feedback(vote="down", limit=messages.DOWN_VOTES_SHOWN)
            if admin
            else [],
        )
        _quietly(logger, client.views_publish, user_id=user, view=view)

    def check_admin_click(self, ack: Ack, body: Payload) -> None:
        ack()

    def remove_source(
        self, body: Payload, action: Payload, client: WebClient, logger: Logger
    ) -> None:
        """An admin's Remove button on the Home tab: the source leaves the index."""
        user = body["user"]["id"]
        if user not in self.config.admins:
            return  # the button is only shown to admins; a forged click changes nothing
        source = action["value"]
        self._change(f"`{escape(source)}`", lambda: self.backend.remove([source], user), "Removed")
        self._publish_home(client, user, logger)

    def open_add_source(self, body: Payload, client: WebClient, logger: Logger) -> None:
        if body["user"]["id"] not in self.config.admins:
            return
        _quietly(logger, client.views_open, trigger_id=body["trigger_id"], view=add_source_modal())

    def check_add_source(self, ack: Ack, body: Payload, view: Payload) -> None:
        """The modal's submission: URLs checked while Slack waits; errors shown in the field."""
        if body["user"]["id"] not in self.config.admins:
            ack(response_action="errors", errors={"urls": messages.NOT_ADMIN})
            return
        urls, error = _submitted_urls(view)
        if error:
            ack(response_action="errors", errors={"urls": error})
        else:
            ack()

    def add_from_modal(
        self, body: Payload, view: Payload, client: WebClient, logger: Logger
    ) -> None:
        user = body["user"]["id"]
        urls, error = _submitted_urls(view)
        if error or user not in self.config.admins:
            return
        what = escape(", ".join(urls))
        with _apologizing(
            lambda text: self.state.save_report("index", text),
            messages.ADD_APOLOGY.format(what=what),
            logger,
        ):
            self._change(what, lambda: self.backend.add_sources(urls, user))
        self._publish_home(client, user, logger)

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
        notes: tuple[str, ...] = (),
        feedback_element: bool = False,
    ) -> None:
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


def _vote(action: Payload) -> tuple[str, str]:
    """("up" or "down", answer id) of a click on 👍 / 👎 (two buttons, or the feedback
    buttons element, whose values are "up:ID" and "down:ID")."""
    if action["action_id"] == "feedback":
        vote, _, answer_id = action.get("value", "").partition(":")
        return ("up" if vote == "up" else "down"), answer_id
    return ("up" if action["action_id"] == "feedback_up" else "down"), action["value"]


def _submitted_urls(view: Payload) -> tuple[list[str], str]:
    """The URLs typed into the "Add a URL" modal, and what is wrong with them ("" if nothing)."""
    values = view.get("state", {}).get("values", {})
    text = values.get("urls", {}).get("urls", {}).get("value") or ""
    urls = [_unwrap_link(word) for word in text.split()]
    if not urls:
        return [], messages.ADD_USAGE_MODAL
    for url in urls:
        if not url.startswith(("http://", "https://")):
            return [], messages.NOT_A_URL.format(text=url)
    return urls, ""


def _prompt(question: str) -> dict[str, str]:
    """A suggested prompt: its title cut to what Slack shows, the message whole."""
    return {"title": _one_line(question)[: messages.MAX_PROMPT_TITLE], "message": question}


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
