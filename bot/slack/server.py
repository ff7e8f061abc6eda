"""Runs the Slack app: over Socket Mode, or over HTTP behind gunicorn on `/slack/events`."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.errors import SlackApiError

from bot.slack import messages
from index.errors import CitebotError

EVENTS_PATH = "/slack/events"
# Request threads in the one worker process; answering happens on the app's own executor.
HTTP_THREADS = 8
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(app: App, port: int, app_token: str | None = None, host: str = "0.0.0.0") -> None:
    """Serves `app` until interrupted: Socket Mode when `app_token` is given, else HTTP.

    Over HTTP, events, slash commands and interactivity all arrive on `/slack/events`.
    Raises CitebotError when Slack refuses the bot token.
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    check_bot_token(app)
    if app_token:
        SocketModeHandler(app, app_token, web_client=app.client).start()
    else:
        GunicornServer(SlackRequestHandler(app, path=EVENTS_PATH), bind=f"{host}:{port}").run()


def check_bot_token(app: App) -> None:
    """Asks Slack (auth.test) whether the bot token works, to fail at start-up, not later."""
    try:
        app.client.auth_test()
    except SlackApiError as err:
        raise CitebotError(
            messages.TOKEN_REFUSED.format(error=err.response.get("error", "unknown"))
        ) from None


class GunicornServer(BaseApplication):
    """gunicorn with one gthread worker process: the App (and the index) live in-process."""

    def __init__(self, application: Any, bind: str, threads: int = HTTP_THREADS) -> None:
        self.application = application
        self.options = {
            "bind": bind,
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            # Answering runs in the background, so a request needs well under Slack's 3 s.
            "timeout": 60,
            "errorlog": "-",
            "loglevel": "info",
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application
