"""The HTTP front of the Slack app: what reaches bolt, and `GET /healthz`.

A request to the events path is refused before anything parses it when it is too large
(413), unsigned, stale or badly signed (401), or not the JSON or form body Slack sends
(400): one bounded log line each, never a traceback. With many workspaces, bolt's OAuth
flow answers `/slack/install` and `/slack/oauth_redirect` too. Load balancers ask `/healthz`
(ready: 503 while the index and the models load), orchestrators `/livez` (alive),
Prometheus `/metrics`. Every Slack request is timed and logged in one line (its question
only with `log.questions`).
"""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

from bot.slack.backend import Backend
from bot.slack.installs import INSTALL_PATH, REDIRECT_PATH
from bot.slack.loading import StillLoading
from bot.slack.logs import FIELDS
from bot.slack.metrics import ACK_SECONDS, exposition

log = logging.getLogger("citebot.slack")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
LIVENESS_PATH = "/livez"
METRICS_PATH = "/metrics"
# Slack's requests are a few kilobytes (a view submission, the largest, tens of them).
MAX_BODY_BYTES = 1024 * 1024
# What is read (and dropped) of a larger body so the client gets its answer, not a reset.
MAX_DRAINED_BYTES = 64 * 1024 * 1024
# Characters of a refused request's path or remote address that reach the log.
LOGGED_CHARS = 100

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SlackFront:
    """The WSGI app `citebot serve` runs: checks, then bolt's handler; and the health."""

    def __init__(
        self, app: App, signing_secret: str, backend: Backend, log_questions: bool = False
    ) -> None:
        self.bolt = SlackRequestHandler(app, path=EVENTS_PATH)
        self.verifier = SignatureVerifier(signing_secret)
        self.backend = backend
        self.log_questions = log_questions

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return self._health(start_response)
        if path == LIVENESS_PATH and method in ("GET", "HEAD"):
            # The worker answers: alive, whatever the index's state (restarting the bot
            # would not bring a Chroma server back, nor load the models sooner).
            return _reply(start_response, 200, {"status": "alive"})
        if path == METRICS_PATH and method in ("GET", "HEAD"):
            data, content_type = exposition(self.backend)
            start_response(
                "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data)))]
            )
            return [data]
        if path in (INSTALL_PATH, REDIRECT_PATH) and self.bolt.app.oauth_flow is not None:
            return self._installing(path, method, environ, start_response)
        if path != EVENTS_PATH:
            return _reply(start_response, 404, {"error": "not found"})
        if method != "POST":
            return _reply(start_response, 405, {"error": "POST Slack's requests here"})
        body, status, reason = self._checked_body(environ)
        if status:
            log.warning(
                "refused a request to %s from %s: %s",
                path[:LOGGED_CHARS],
                str(environ.get("REMOTE_ADDR", "?"))[:LOGGED_CHARS],
                reason,
            )
            return _reply(start_response, status, {"error": reason.split(" (")[0]})
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        started = time.perf_counter()
        statuses: list[str] = []

        def remember_status(status: str, *args: Any) -> Any:
            statuses.append(status)
            return start_response(status, *args)

        # bolt returns once the request is acknowledged (the work goes on in the background).
        reply = self.bolt(environ, remember_status)
        seconds = time.perf_counter() - started
        ACK_SECONDS.observe(seconds)
        fields = request_fields(body, environ.get("CONTENT_TYPE", ""), self.log_questions)
        fields |= {"status": int((statuses or ["0"])[0].split()[0]), "ack_ms": round(seconds * 1e3)}
        fields["retry"] = int(environ.get("HTTP_X_SLACK_RETRY_NUM") or 0)
        log.info(
            "slack %s %s %d in %d ms",
            fields.get("kind", "?"),
            fields.get("name", ""),
            fields["status"],
            fields["ack_ms"],
            extra={FIELDS: fields},
        )
        return reply

    def _installing(
        self, path: str, method: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The OAuth flow's pages, bolt's: the install page, then Slack's redirect back
        (its one-time `state` checks it, not a signature). Logged without the query,
        which carries the installer's code."""
        if method != "GET":
            return _reply(start_response, 405, {"error": "open this page in a browser"})
        statuses: list[str] = []

        def remember_status(status: str, *args: Any) -> Any:
            statuses.append(status)
            return start_response(status, *args)

        reply = self.bolt(environ, remember_status)
        log.info("slack install %s %s", path, (statuses or ["0"])[0].split()[0])
        return reply

    def _checked_body(self, environ: dict[str, Any]) -> tuple[bytes, int, str]:
        """The body, or the status and reason to refuse it with."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return b"", 400, "malformed Content-Length"
        stream = environ["wsgi.input"]
        if length > MAX_BODY_BYTES:
            _drain(stream, min(length, MAX_DRAINED_BYTES))
            return b"", 413, f"body too large ({length} bytes)"
        body = stream.read(length) if length > 0 else b""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not timestamp.isdigit() or not signature:
            return b"", 401, f"unsigned ({len(body)} bytes)"
        if not _utf8(body):  # Slack sends UTF-8; slack_sdk's check would fail decoding it
            return b"", 400, f"body not UTF-8 ({len(body)} bytes)"
        if not self.verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return b"", 401, f"bad or stale signature ({len(body)} bytes)"
        if not _well_formed(body, environ.get("CONTENT_TYPE", "")):
            return b"", 400, f"malformed body ({len(body)} bytes)"
        return body, 0, ""

    def _health(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            overview = self.backend.overview()
        except StillLoading:
            return _reply(start_response, 503, {"status": "loading"})
        except Exception as err:  # noqa: BLE001 - any failure to read the store is "unavailable"
            log.warning("health check: the index can't be read: %s", str(err)[:200])
            return _reply(
                start_response, 503, {"status": "unavailable", "reason": type(err).__name__}
            )
        return _reply(
            start_response,
            200,
            {"status": "ok", "generation": overview.generation, "articles": overview.articles},
        )


def request_fields(body: bytes, content_type: str, with_question: bool) -> dict[str, Any]:
    """What a Slack request's log line says of it: its kind and name (the event's type,
    the command, the action), team, channel and user; its text only `with_question`."""
    if content_type.startswith("application/json"):
        payload = json.loads(body)
        event = payload.get("event") or {}
        fields = {
            "kind": payload.get("type", ""),
            "name": event.get("type", ""),
            "team": payload.get("team_id", ""),
            "channel": event.get("channel", ""),
            "user": event.get("user", ""),
        }
        text = event.get("text")
    else:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        if "payload" in form:
            payload = json.loads(form["payload"])
            actions = payload.get("actions") or [{}]
            fields = {
                "kind": payload.get("type", ""),
                "name": actions[0].get("action_id", payload.get("view", {}).get("callback_id", "")),
                "team": (payload.get("team") or {}).get("id", ""),
                "channel": (payload.get("channel") or {}).get("id", ""),
                "user": (payload.get("user") or {}).get("id", ""),
            }
            text = None
        else:
            fields = {
                "kind": "command",
                "name": form.get("command", ""),
                "team": form.get("team_id", ""),
                "channel": form.get("channel_id", ""),
                "user": form.get("user_id", ""),
            }
            text = form.get("text")
    if with_question and text:
        fields["question"] = text
    return fields


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _well_formed(body: bytes, content_type: str) -> bool:
    """Whether `body` is what Slack sends: a JSON object (events), or a form whose
    `payload`, if any, is a JSON object (interactions; slash commands have none)."""
    try:
        text = body.decode("utf-8")
        if content_type.startswith("application/json"):
            return isinstance(json.loads(text), dict)
        form = urllib.parse.parse_qs(text, strict_parsing=bool(text))
        payload = form.get("payload")
        return payload is None or isinstance(json.loads(payload[0]), dict)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False


def _drain(stream: Any, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 1024 * 1024))
        if not chunk:
            return
        length -= len(chunk)


def _reply(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        405: "Method Not Allowed",
        413: "Payload Too Large",
        503: "Service Unavailable",
    }
    start_response(
        f"{status} {reason[status]}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
