"""The Home tab: what is indexed for everyone; for admins, the sources with Remove buttons
(and Make public, for private ones) and an "Add a URL" modal."""

from __future__ import annotations

from logging import Logger

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.slack import messages
from bot.slack.home import ADD_SOURCE_MODAL, add_source_modal, home_view
from bot.slack.listeners.shared import (
    Citebot,
    Payload,
    acknowledge,
    apologizing,
    quietly,
    unwrap_link,
    url_error,
)
from bot.slack.messages import escape
from bot.slack.middleware import finish_delivery


def register(app: App, bot: Citebot) -> None:
    def opened(event: Payload, client: WebClient, logger: Logger, context: BoltContext) -> None:
        try:
            if event.get("tab", "home") == "home":
                publish_home(bot, client, event["user"], logger)
        finally:
            finish_delivery(bot.state, context)

    # The buttons and the modal are only shown to admins: a forged click changes nothing.
    def remove(body: Payload, action: Payload, client: WebClient, logger: Logger) -> None:
        if bot.is_admin(body["user"]["id"]):
            remove_source(bot, action["value"], body["user"]["id"], client, logger)

    def share(body: Payload, action: Payload, client: WebClient, logger: Logger) -> None:
        if bot.is_admin(body["user"]["id"]):
            bot.share([action["value"]], body["user"]["id"])
            publish_home(bot, client, body["user"]["id"], logger)

    def open_modal(body: Payload, client: WebClient, logger: Logger) -> None:
        if bot.is_admin(body["user"]["id"]):
            view = add_source_modal()
            quietly(logger, client.views_open, trigger_id=body["trigger_id"], view=view)

    def check_modal(ack: Ack, body: Payload, view: Payload) -> None:
        """URLs checked while Slack waits; errors shown in the field."""
        if not bot.is_admin(body["user"]["id"]):
            ack(response_action="errors", errors={"urls": messages.NOT_ADMIN})
            return
        _, error = submitted_urls(view)
        if error:
            ack(response_action="errors", errors={"urls": error})
        else:
            ack()

    def add(body: Payload, view: Payload, client: WebClient, logger: Logger) -> None:
        urls, error = submitted_urls(view)
        if not error and bot.is_admin(body["user"]["id"]):
            add_sources(bot, urls, body["user"]["id"], client, logger)

    app.event("app_home_opened")(ack=acknowledge, lazy=[opened])
    app.action("home_remove_source")(ack=acknowledge, lazy=[remove])
    app.action("home_share_source")(ack=acknowledge, lazy=[share])
    app.action("home_add_source")(ack=acknowledge, lazy=[open_modal])
    app.view(ADD_SOURCE_MODAL)(ack=check_modal, lazy=[add])


def publish_home(bot: Citebot, client: WebClient, user: str, logger: Logger) -> None:
    """Publishes `user`'s Home tab (the admin's parts only to admins)."""
    admin = bot.is_admin(user)
    view = home_view(
        overview=bot.overview(logger),
        admin=admin,
        report=bot.state.latest_report() if admin else None,
        down_votes=bot.state.feedback(vote="down", limit=messages.DOWN_VOTES_SHOWN)
        if admin
        else [],
    )
    quietly(logger, client.views_publish, user_id=user, view=view)


def remove_source(bot: Citebot, source: str, user: str, client: WebClient, logger: Logger) -> None:
    """An admin's Remove button: the source leaves the index; the Home tab shows it."""
    bot.change(f"`{escape(source)}`", lambda: bot.backend.remove([source], user), "Removed")
    publish_home(bot, client, user, logger)


def add_sources(
    bot: Citebot, urls: list[str], user: str, client: WebClient, logger: Logger
) -> None:
    """The modal's URLs indexed; the report (or the apology) shown on the Home tab."""
    what = escape(", ".join(urls))
    with apologizing(
        lambda text: bot.state.save_report("index", text),
        messages.ADD_APOLOGY.format(what=what),
        logger,
    ):
        bot.change(what, lambda: bot.backend.add_sources(urls, user))
    publish_home(bot, client, user, logger)


def submitted_urls(view: Payload) -> tuple[list[str], str]:
    """The URLs typed into the "Add a URL" modal, and what is wrong with them ("" if nothing)."""
    values = view.get("state", {}).get("values", {})
    text = values.get("urls", {}).get("urls", {}).get("value") or ""
    urls = [unwrap_link(word) for word in text.split()]
    if not urls:
        return [], messages.ADD_USAGE_MODAL
    if error := url_error(urls):
        return [], error
    return urls, ""
