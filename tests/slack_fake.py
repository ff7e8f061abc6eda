"""A loopback stand-in for Slack: its Web API, file downloads and response_url, plus the
signed requests Slack sends to the app (events, slash commands, button clicks).

Every call the app makes is recorded with its parsed body, so a test can assert what was
posted. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_sdk.signature import SignatureVerifier

from bot.slack.front import SlackFront

BOT_USER_ID = "UCITEBOT"
BOT_ID = "BCITEBOT"
TEAM_ID = "T0TEAM"
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"


@dataclass
class Call:
    """One request the app made to the fake."""

    api: str  # "chat.postMessage", "response", or "file"
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    time: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        """The message text plus every text in its blocks, for "was X posted" assertions."""
        return "\n".join([str(self.body.get("text", ""))] + list(_texts(self.body.get("blocks"))))


@dataclass(frozen=True)
class Workspace:
    """A workspace that installs the app: Slack gives `code` to the installer's browser,
    and oauth.v2.access trades it for the workspace's bot token."""

    team_id: str
    code: str
    bot_token: str
    bot_user_id: str
    bot_id: str
    installer: str


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


class FakeSlack:
    """Plays Slack for one test: start() binds 127.0.0.1 on a free port, stop() closes it."""

    def __init__(self, signing_secret: str = SIGNING_SECRET) -> None:
        self.signing_secret = signing_secret
        self.calls: list[Call] = []
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._scripts: dict[str, list[Scripted]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self.workspaces: dict[str, Workspace] = {}  # by code

    # --- lifecycle ---

    def start(self) -> FakeSlack:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/response/{name}"

    # --- scripting ---

    def script(
        self,
        api: str,
        status: int = 200,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `api` get this answer instead of the default one."""
        with self._lock:
            self._scripts.setdefault(api, []).append(
                Scripted(
                    status, body or {"ok": False, "error": "ratelimited"}, headers or {}, times
                )
            )

    def add_file(self, name: str, data: bytes, file_id: str = "F0001") -> dict[str, Any]:
        """A Slack file object whose url_private_download this fake serves."""
        url = f"{self.base_url}/files/{file_id}/{urllib.parse.quote(name)}"
        file = {
            "id": file_id,
            "name": name,
            "title": name,
            "size": len(data),
            "url_private": url,
            "url_private_download": url + "?download=1",
        }
        self.files[file_id] = (file, data)
        return file

    def add_workspace(self, team_id: str, installer: str = "U0INSTALLER") -> Workspace:
        """A workspace whose install oauth.v2.access completes (with its `code`)."""
        suffix = team_id.lower()
        workspace = Workspace(
            team_id,
            code=f"code-{suffix}",
            bot_token=f"xoxb-{suffix}-token",
            bot_user_id=f"UBOT{team_id}",
            bot_id=f"BBOT{team_id}",
            installer=installer,
        )
        self.workspaces[workspace.code] = workspace
        return workspace

    # --- assertions ---

    def calls_to(self, api: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.api == api]

    def wait_for(
        self,
        api: str,
        where: Callable[[Call], bool] = lambda c: True,
        count: int = 1,
        timeout: float = 30.0,
    ) -> list[Call]:
        """Polls until `count` calls of `api` match `where`; returns them (fails on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(api) if where(c)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} {api} call(s), got {len(found)}; all calls: "
                    + ", ".join(c.api for c in self.calls)
                )
            time.sleep(0.02)

    # --- Slack's side: signed requests to the app ---

    def sign(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.signing_secret).generate_signature(
            timestamp=stamp, body=body
        )
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    def send_event(
        self,
        app_url: str,
        event: dict[str, Any],
        event_id: str,
        retry: int = 0,
        team: str = TEAM_ID,
    ) -> tuple[int, str]:
        """Delivers an Events API event (from workspace `team`); `retry` > 0 marks it as
        Slack's re-delivery."""
        envelope = event_callback(event, event_id, team)
        retry_headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(
            app_url,
            json.dumps(envelope),
            "application/json",
            headers=retry_headers if retry else {},
        )

    def send_command(
        self,
        app_url: str,
        command: str,
        text: str,
        user: str,
        channel: str = "C0GENERAL",
        response_url: str | None = None,
    ) -> tuple[int, str]:
        form = {
            "token": "legacy",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "channel_name": _channel_name(channel),
            "user_id": user,
            "command": command,
            "text": text,
            "response_url": response_url or self.response_url(),
            "trigger_id": "1.2.3",
            "api_app_id": "A0CITEBOT",
        }
        body = urllib.parse.urlencode(form)
        return self.post(app_url, body, "application/x-www-form-urlencoded")

    def post_payload(self, app_url: str, payload: dict[str, Any]) -> tuple[int, str]:
        """An interactive payload (a click, a submitted modal), form-encoded as Slack sends it."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post(app_url, body, "application/x-www-form-urlencoded")

    def send_click(
        self,
        app_url: str,
        action_id: str,
        value: str,
        user: str,
        channel: str = "C0GENERAL",
        response_url: str | None = None,
    ) -> tuple[int, str]:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "api_app_id": "A0CITEBOT",
            "channel": {"id": channel, "name": "general"},
            "container": {"type": "message", "channel_id": channel},
            "trigger_id": "1.2.3",
            "response_url": response_url or self.response_url("click"),
            "actions": [_button(action_id, "citebot_answer", value)],
        }
        return self.post_payload(app_url, payload)

    def send_home_click(
        self, app_url: str, action_id: str, value: str, user: str
    ) -> tuple[int, str]:
        """A click on a button of the Home tab (no channel, no response_url)."""
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "api_app_id": "A0CITEBOT",
            "container": {"type": "view", "view_id": "V0HOME"},
            "view": {"id": "V0HOME", "type": "home"},
            "trigger_id": "1.2.3",
            "actions": [_button(action_id, "home", value)],
        }
        return self.post_payload(app_url, payload)

    def send_view_submission(
        self, app_url: str, callback_id: str, values: dict[str, Any], user: str
    ) -> tuple[int, str]:
        """A modal submitted with its inputs' `values` (block id -> action id -> value)."""
        state = {
            block: {action: {"type": "plain_text_input", "value": value}}
            for block, actions in values.items()
            for action, value in actions.items()
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "api_app_id": "A0CITEBOT",
            "trigger_id": "1.2.3",
            "view": {
                "id": "V0MODAL",
                "type": "modal",
                "callback_id": callback_id,
                "state": {"values": state},
            },
        }
        return self.post_payload(app_url, payload)

    def post(
        self,
        url: str,
        body: str,
        content_type: str,
        signature: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """POSTs `body` signed with the signing secret (or with `signature`, to test refusal)."""
        if signature is None:
            signed = self.sign(body, timestamp)
        else:
            stamp = str(int(time.time()) if timestamp is None else timestamp)
            signed = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
        headers = {"Content-Type": content_type} | signed | (headers or {})
        data = body.encode("utf-8", "surrogateescape")  # surrogates: bytes that are not UTF-8
        request = urllib.request.Request(url, data, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    # --- the Web API ---

    def _answer(
        self, api: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict]:
        with self._lock:
            scripts = self._scripts.get(api) or []
            if scripts:
                scripted = scripts[0]
                scripted.times -= 1
                if scripted.times <= 0:
                    scripts.pop(0)
                return scripted.status, scripted.body, scripted.headers
        if api == "oauth.v2.access":
            return 200, self._oauth_access(body), {}
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        installed = {w.bot_token: w for w in self.workspaces.values()}
        if api == "auth.test" and token in installed:
            workspace = installed[token]
            return (
                200,
                {
                    "ok": True,
                    "team_id": workspace.team_id,
                    "user_id": workspace.bot_user_id,
                    "bot_id": workspace.bot_id,
                },
                {},
            )
        if api == "auth.test":
            return (
                200,
                {
                    "ok": True,
                    "url": "https://citebot-test.slack.com/",
                    "team": "test",
                    "user": "citebot",
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID,
                },
                {},
            )
        if api in ("chat.postMessage", "chat.postEphemeral"):
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return 200, {"ok": True, "channel": body.get("channel"), "ts": ts}, {}
        if api == "files.info":
            file, _ = self.files[body["file"]]
            return 200, {"ok": True, "file": file}, {}
        return 200, {"ok": True}, {}

    def _oauth_access(self, body: dict[str, Any]) -> dict[str, Any]:
        workspace = self.workspaces.get(body.get("code", ""))
        if workspace is None:
            return {"ok": False, "error": "invalid_code"}
        return {
            "ok": True,
            "app_id": "A0CITEBOT",
            "team": {"id": workspace.team_id, "name": f"Team {workspace.team_id}"},
            "authed_user": {"id": workspace.installer},
            "access_token": workspace.bot_token,
            "token_type": "bot",
            "scope": "app_mentions:read,chat:write,commands",
            "bot_user_id": workspace.bot_user_id,
        }

    def _record(self, api: str, path: str, headers: dict[str, str], body: dict) -> None:
        with self._lock:
            self.calls.append(Call(api, path, headers, body))


def _channel_name(channel: str) -> str:
    """What a slash command says of its channel: Slack's names for a DM and a private
    channel (the tests' private channels have ids starting with G), else its name."""
    return {"D": "directmessage", "G": "privategroup"}.get(channel[:1], "general")


def event_callback(event: dict[str, Any], event_id: str, team: str = TEAM_ID) -> dict[str, Any]:
    """The Events API body wrapping `event`, as Slack sends it over HTTP or Socket Mode."""
    return {
        "token": "legacy",
        "team_id": team,
        "api_app_id": "A0CITEBOT",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            fake._record("file", self.path, dict(self.headers), {})
            parts = path.split("/")
            if len(parts) >= 3 and parts[1] == "files" and parts[2] in fake.files:
                self._send(200, fake.files[parts[2]][1], "application/octet-stream")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            body = _parse(raw, self.headers.get("Content-Type", ""))
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/response/"):
                fake._record("response", path, dict(self.headers), body)
                self._send(200, b"ok", "text/plain")
                return
            api = path.removeprefix("/api/")
            fake._record(api, path, dict(self.headers), body)
            status, answer, headers = fake._answer(api, body, dict(self.headers))
            self._send(status, json.dumps(answer).encode(), "application/json", headers)

        def _send(self, status: int, data: bytes, content_type: str, headers: dict = {}) -> None:  # noqa: B006
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _parse(raw: str, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        return json.loads(raw)
    form = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
    for key in ("blocks", "attachments"):
        if isinstance(form.get(key), str):
            form[key] = json.loads(form[key])
    return form


def _texts(value: Any) -> Iterator[str]:
    """Every "text" string nested in blocks."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def running(app: App, backend: Any = None, signing_secret: str = SIGNING_SECRET) -> Iterator[str]:
    """Serves a bolt App over HTTP on loopback, behind the front `citebot serve` runs
    (`backend` answers its /healthz); yields its URL; waits for its background work."""
    with serving(SlackFront(app, signing_secret, backend)) as url:
        try:
            yield url
        finally:
            app.listener_runner.listener_executor.shutdown(wait=True)


@contextmanager
def serving(wsgi_app: Any) -> Iterator[str]:
    """Serves a WSGI app on 127.0.0.1 (a free port) in a thread; yields its /slack/events URL."""
    server = make_server(
        "127.0.0.1", 0, wsgi_app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    finally:
        server.shutdown()
        server.server_close()


class ServerProcess:
    """A Python script serving the app in a subprocess (as `citebot serve` would), on a free
    loopback port passed as its first argument; its stderr is kept in `log`."""

    def __init__(self, script: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.script = script
        self.args = args
        self.env = env or {}
        self.log = ""

    def __enter__(self) -> ServerProcess:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._stderr = tempfile.TemporaryFile(mode="w+")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.script, str(self.port), *self.args],
            cwd=root,
            env=os.environ | {"PYTHONPATH": root} | self.env,
            stderr=self._stderr,
            # Its own process group: kill() ends gunicorn's worker with its master.
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL to the server and its worker, as a crash or an OOM kill would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a worker stuck at shutdown: the test's own
                self.kill()  # error (if any) is the one to see
        self._stderr.seek(0)
        self.log = self._stderr.read()
        self._stderr.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET `path` of the server: the status and the JSON body."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def send_first_event(
        self, fake: FakeSlack, event: dict[str, Any], event_id: str, timeout: float = 120.0
    ) -> tuple[int, str]:
        """Delivers `event` as soon as the server accepts connections; how long the
        delivery that got through waited for its acknowledgement is kept in `first_ack_s`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sent = time.monotonic()
                reply = fake.send_event(self.url, event, event_id)
                self.first_ack_s = time.monotonic() - sent
                return reply
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self._stderr.seek(0)
                    raise AssertionError(
                        "the server didn't start:\n" + self._stderr.read()
                    ) from None
                time.sleep(0.1)


# --- what Slack delivers: events as people produce them ---

CHANNEL = "C0GENERAL"
DM_CHANNEL = "D0ALICE"
ALICE = "U0ALICE"  # an admin in the tests that need one
BOB = "U0BOB"  # never an admin

_ts = itertools.count(1)


def new_ts() -> str:
    return f"{int(time.time())}.{next(_ts):06d}"


def mention(text: str, channel: str = CHANNEL, user: str = ALICE, **extra: Any) -> dict:
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": new_ts(),
        "channel": channel,
        "event_ts": new_ts(),
    } | extra


def message(
    text: str,
    channel: str = CHANNEL,
    user: str = ALICE,
    channel_type: str = "channel",
    **extra: Any,
) -> dict:
    return {
        "type": "message",
        "user": user,
        "text": text,
        "ts": new_ts(),
        "channel": channel,
        "channel_type": channel_type,
        "event_ts": new_ts(),
    } | extra


def direct_message(text: str, user: str = ALICE, **extra: Any) -> dict:
    return message(text, channel=DM_CHANNEL, user=user, channel_type="im", **extra)


def assistant_thread_started(user: str = ALICE, channel: str = DM_CHANNEL) -> dict:
    """Someone opened a new thread in the assistant view (from a channel: CHANNEL)."""
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": {"channel_id": CHANNEL, "team_id": TEAM_ID, "enterprise_id": None},
            "channel_id": channel,
            "thread_ts": new_ts(),
        },
        "event_ts": new_ts(),
    }


def app_home_opened(user: str) -> dict:
    return {
        "type": "app_home_opened",
        "user": user,
        "channel": "D0HOME",
        "tab": "home",
        "event_ts": new_ts(),
    }


def file_upload(file: dict, user: str = ALICE) -> dict:
    return direct_message("", user=user, subtype="file_share", files=[file])


def _button(action_id: str, block_id: str, value: str) -> dict[str, str]:
    """One clicked button of a block_actions payload."""
    return {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "action_ts": str(time.time()),
    }
