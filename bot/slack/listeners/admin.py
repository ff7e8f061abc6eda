"""Admins changing the source library: `/citebot add|remove|share|sources`, and files sent
in a DM. What is added in a conversation that is not public answers only there."""

from __future__ import annotations

from logging import Logger

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.slack import messages
from bot.slack.blocks import fit
from bot.slack.files import MAX_UPLOAD_BYTES, UploadTooLarge, download
from bot.slack.listeners.shared import (
    Citebot,
    Payload,
    acknowledge,
    apologizing,
    privately,
    quietly,
    unwrap_link,
    url_error,
    working,
)
from bot.slack.messages import escape
from bot.slack.middleware import finish_delivery
from bot.sources_admin import sources_lines

FILE_SHARE = {"type": "message", "subtype": "file_share"}


def register(app: App, bot: Citebot) -> None:
    def check_command(ack: Ack, command: Payload) -> None:
        ack(parse_command(bot, command)[2])

    def run_command(command: Payload, respond: Respond, logger: Logger) -> None:
        verb, items, _ = parse_command(bot, command)
        if verb:
            user, private = command["user_id"], private_conversation(command)
            run_citebot_command(bot, verb, items, user, respond, logger, private)

    def add_files(event: Payload, context: BoltContext, client: WebClient, logger: Logger) -> None:
        try:
            add_uploaded_files(bot, event, client, logger)
        finally:
            finish_delivery(bot.state, context)

    app.command("/citebot")(ack=check_command, lazy=[run_command])
    app.event(FILE_SHARE, matchers=[_is_direct])(ack=acknowledge, lazy=[add_files])


def parse_command(bot: Citebot, command: Payload) -> tuple[str, list[str], str]:
    """`/citebot add URL …`, `remove SOURCE_OR_ARTICLE …`, `sources`, or help: what to
    do ("" for nothing), its arguments, and the immediate reply."""
    words = command.get("text", "").split()
    verb = words[0].lower() if words else ""
    if verb not in ("add", "remove", "share", "sources"):
        return "", [], messages.CITEBOT_HELP
    if not bot.is_admin(command.get("user_id")):
        return "", [], messages.NOT_ADMIN
    items = [unwrap_link(word) for word in words[1:]]
    if verb == "sources":
        return verb, [], ""  # the list follows at once
    if not items:
        usage = {"add": messages.ADD_USAGE, "share": messages.SHARE_USAGE}
        return "", [], usage.get(verb, messages.REMOVE_USAGE)
    if verb == "remove":
        return verb, items, messages.REMOVING.format(count=len(items))
    if verb == "share":
        return verb, items, messages.SHARING.format(count=len(items))
    if error := url_error(items):
        return "", [], error
    return verb, items, messages.ADDING.format(count=len(items))


def run_citebot_command(
    bot: Citebot,
    verb: str,
    items: list[str],
    user: str,
    respond: Respond,
    logger: Logger,
    private: str = "",
) -> None:
    """Lists the sources, or adds, removes or shares `items`; the outcome told privately.
    What is added in the `private` conversation (its id) answers only there."""
    what = ", ".join(f"`{escape(item)}`" for item in items)
    say = privately(respond)
    if verb == "sources":
        with apologizing(say, messages.SOURCES_APOLOGY, logger):
            say(_sources_text(bot))
    elif verb == "remove":
        with apologizing(say, messages.REMOVE_APOLOGY.format(what=what), logger):
            say(bot.change(what, lambda: bot.backend.remove(items, user), "Removed"))
    elif verb == "share":
        with apologizing(say, messages.SHARE_APOLOGY.format(what=what), logger):
            say(bot.share(items, user))
    else:
        with apologizing(say, messages.ADD_APOLOGY.format(what=what), logger):
            note = messages.PRIVATE_HERE if private else ""
            say(bot.change(what, lambda: bot.backend.add_sources(items, user, private), note=note))


def private_conversation(command: Payload) -> str:
    """The id of the conversation a command was typed in when it is not public (a DM, a
    group DM, a private channel), else ""."""
    name = command.get("channel_name", "")
    if name in ("directmessage", "privategroup") or name.startswith("mpdm-"):
        return command.get("channel_id", "")
    return ""


def _sources_text(bot: Citebot) -> str:
    lines = sources_lines(bot.backend.sources())
    if not lines:
        return messages.NO_SOURCES
    return messages.SOURCES_LIST.format(lines=fit("\n".join(lines), 3500))


def add_uploaded_files(bot: Citebot, event: Payload, client: WebClient, logger: Logger) -> None:
    """A file sent to me in a DM: indexed when an admin sent it, refused otherwise."""
    channel, ts = event["channel"], event["ts"]

    def say(text: str) -> None:
        client.chat_postMessage(channel=channel, thread_ts=ts, text=text)

    if not bot.is_admin(event.get("user")):
        quietly(logger, say, text=messages.NOT_ADMIN)
        return
    files = [file for file in event.get("files") or [] if file.get("id")]
    if not files:
        quietly(logger, say, text=messages.NO_FILE)
        return
    apology = messages.ADD_APOLOGY.format(what="your file")
    with working(client, channel, ts, ts, logger, apology):
        for file in files:
            say(_add_upload(bot, client, file, event["user"], logger, channel))


def _add_upload(
    bot: Citebot, client: WebClient, file: Payload, user: str, logger: Logger, channel: str
) -> str:
    """Adds one uploaded file, answering only in the DM it was sent in."""
    name = file.get("name") or file.get("title") or file["id"]
    try:
        data = download(client, file)
    except UploadTooLarge:
        return messages.TOO_LARGE.format(name=name, limit_mb=MAX_UPLOAD_BYTES // 2**20)
    except (OSError, SlackClientError) as err:
        logger.warning("downloading %s failed: %s", name, err)
        return messages.DOWNLOAD_FAILED.format(name=name)
    return bot.change(
        f"`{escape(name)}`",
        lambda: bot.backend.add_upload(name, data, user, channel),
        note=messages.PRIVATE_HERE,
    )


def _is_direct(event: Payload) -> bool:
    return event.get("channel_type") == "im"
