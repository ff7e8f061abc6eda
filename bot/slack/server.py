"""Runs the Slack app: over Socket Mode, or over HTTP behind gunicorn on `/slack/events`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.error import URLError

from gunicorn.app.base import BaseApplication
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.slack import messages
from bot.slack.app import web_client
from bot.slack.backend import Backend
from bot.slack.config import SlackConfig
from bot.slack.front import SlackFront
from bot.slack.installs import open_installations
from bot.slack.loading import LoadingBackend
from bot.slack.logs import configure_logging, gunicorn_logging
from bot.slack.state_tables import open_state_store
from bot.slack.worker import BufferingWorker
from index.errors import CitebotError

# Request threads in the one worker process; answering happens on the app's own executor.
HTTP_THREADS = 8
# Connections open at once: idle ones cost a socket, not a thread (bot/slack/worker.py),
# and 500 stay well inside the usual 1,024 open files.
HTTP_CONNECTIONS = 500


def serve(
    config: SlackConfig,
    make_app: Callable[[Backend], App],
    load_backend: Callable[[], Backend],
    port: int,
    host: str = "0.0.0.0",
) -> None:
    """Serves until interrupted: over Socket Mode when `config.app_token` is set, else HTTP
    (`/slack/events`, `/healthz` for load balancers and `/livez` for orchestrators).

    `load_backend` loads what the app answers from (the index, the models: seconds), and
    `make_app` builds the App around a backend (at once). Both run in the process that
    serves, which over HTTP is gunicorn's worker after the fork: an open Chroma store or
    a used torch does not survive a fork, so open neither before `serve`.

    Over HTTP the worker accepts as soon as the App is built and loads on a thread of its
    own (`LoadingBackend`): Slack's events are acknowledged within its 3 seconds from the
    first, answered once loaded, and `/healthz` says 503 `loading` meanwhile. Over Socket
    Mode the backend is loaded before connecting: Slack holds the events until then.
    Raises CitebotError when Slack can't be reached or refuses the bot token.
    """
    configure_logging(config.log_format)
    if config.state_store:  # checked here, in one line, rather than in the worker's traceback
        open_state_store(config.state_store).dispose()
    if config.many_workspaces:
        # Each workspace's token is checked as its requests come; the store is checked
        # here, in one line, rather than in the worker's traceback.
        open_installations(config)
    else:
        check_bot_token(config)
    if config.app_token:
        app = make_app(load_backend())
        SocketModeHandler(app, config.app_token, web_client=app.client).start()
    else:

        def load() -> SlackFront:
            backend = LoadingBackend(load_backend)
            app = make_app(backend)
            backend.start()
            return SlackFront(app, config.signing_secret, backend, config.log_questions)

        GunicornServer(load, bind=f"{host}:{port}", log_format=config.log_format).run()


def check_bot_token(config: SlackConfig) -> None:
    """Asks Slack (auth.test) whether the bot token works, to fail at start-up, not later.
    What went wrong is the one line of the CitebotError it raises: slack_sdk's own lines
    about each try (an ERROR, then its retry's) are not logged."""
    quiet = logging.Logger("citebot.slack.token_check", level=logging.CRITICAL + 1)
    try:
        web_client(config, quiet).auth_test()
    except SlackApiError as err:
        error = err.response.get("error", "unknown")
        raise CitebotError(messages.TOKEN_REFUSED.format(error=error)) from None
    except (URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CitebotError(
            messages.SLACK_UNREACHABLE.format(url=config.api_url, reason=reason)
        ) from None


class GunicornServer(BaseApplication):
    """gunicorn with one worker process, whose `load` builds the WSGI app: a
    `BufferingWorker`, which gives a request thread only to a request read whole."""

    def __init__(
        self,
        load: Callable[[], Any],
        bind: str,
        threads: int = HTTP_THREADS,
        log_format: str = "text",
    ) -> None:
        self._load = load
        self.options = {
            "bind": bind,
            # One process: the index and the model are loaded once, and its threads share
            # them; the metrics are that process's too (more workers would need
            # prometheus-client's multiprocess mode, docs/DEPLOYMENT.md).
            "workers": 1,
            "worker_class": BufferingWorker,
            "threads": threads,
            "worker_connections": HTTP_CONNECTIONS,
            # Answers are worked out in the background, so requests are short.
            "timeout": 60,
            "errorlog": "-",
            "loglevel": "info",
            "logconfig_dict": gunicorn_logging(log_format),
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._load()
