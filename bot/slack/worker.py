"""citebot's gunicorn worker: an event loop reads each request whole, within a deadline,
before one of the request threads runs the WSGI app on it.

gunicorn's gthread worker gives a thread to a connection as soon as it sends a byte, and
that thread then waits for the rest for as long as the client likes: eight clients that
send half a request hold all eight threads, and Slack's events and `/healthz` time out
(issue 29 #2). Here a connection costs the loop a socket until its request is complete;
one that does not complete it within `REQUEST_SECONDS` is closed.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h11
from gunicorn.workers.base import Worker

from bot.slack.front import LOGGED_CHARS, MAX_BODY_BYTES, MAX_DRAINED_BYTES

log = logging.getLogger("citebot.slack")

# Seconds a client has to send a whole request (headers and body), counted from the
# connection's opening or the previous answer: Slack sends a few kilobytes at once, and
# waits 3 seconds for the answer.
REQUEST_SECONDS = 10.0
# Seconds an answer may take to be written to a client that reads slowly.
WRITE_SECONDS = 10.0
# Bytes of a request line and headers (Slack's are under 2 KB).
MAX_HEADER_BYTES = 16 * 1024
READ_BYTES = 64 * 1024


class BufferingWorker(Worker):
    """Serves `self.wsgi` on an asyncio loop with `cfg.threads` request threads. At most
    `cfg.worker_connections` connections are open at once: one more is closed at once."""

    def run(self) -> None:
        asyncio.run(self._serve_forever())

    async def _serve_forever(self) -> None:
        self.threads = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="request")
        self.connections: set[asyncio.Task[None]] = set()
        servers = [
            await asyncio.start_server(self._accepted, sock=listener.sock, limit=READ_BYTES)
            for listener in self.sockets
        ]
        while self.alive and self.ppid == os.getppid():
            self.notify()
            await asyncio.sleep(1.0)
        for server in servers:
            server.close()
        if self.connections:
            await asyncio.wait(self.connections, timeout=self.cfg.graceful_timeout)
        self.threads.shutdown(wait=False, cancel_futures=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self.connections) >= self.cfg.worker_connections:
            writer.close()
            return
        self.connections.add(task)
        try:
            await self._connection(reader, writer)
        except (OSError, h11.ProtocolError):
            pass  # the client went away, stalled (TimeoutError) or broke HTTP: nothing to say
        finally:
            self.connections.discard(task)
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answers the connection's requests in turn until one side closes it."""
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        while self.alive:
            try:
                request = await asyncio.wait_for(_read(http, reader, writer), REQUEST_SECONDS)
            except _Refused as refused:
                log.warning(
                    "refused a request from %s: %s",
                    str((writer.get_extra_info("peername") or ("?",))[0])[:LOGGED_CHARS],
                    refused.reason,
                )
                await _write(writer, http, refused.status, [("Connection", "close")], b"")
                return
            if request is None:
                return
            head, body = request
            try:
                status, headers, data = await asyncio.get_running_loop().run_in_executor(
                    self.threads, _call, self.wsgi, self._environ(head, body, writer)
                )
            except Exception:  # noqa: BLE001 - the app's failure is logged, the client told 500
                self.log.exception("the app failed on %s", head.target[:LOGGED_CHARS])
                status, headers, data = "500 Internal Server Error", [("Connection", "close")], b""
            await _write(writer, http, status, headers, data, head.method != b"HEAD")
            if http.our_state is not h11.DONE or http.their_state is not h11.DONE:
                return
            http.start_next_cycle()

    def _environ(
        self, head: h11.Request, body: bytes, writer: asyncio.StreamWriter
    ) -> dict[str, Any]:
        path, _, query = head.target.partition(b"?")
        server = writer.get_extra_info("sockname") or ("", 0)
        peer = writer.get_extra_info("peername") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": head.method.decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": "HTTP/" + head.http_version.decode("ascii"),
            "REMOTE_ADDR": str(peer[0]),
            "REMOTE_PORT": str(peer[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in head.headers:
            key = name.decode("latin-1").upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            text = value.decode("latin-1")
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        environ["CONTENT_LENGTH"] = str(len(body))  # the body read, whatever was announced
        return environ


class _Refused(Exception):
    """A request answered without the app: its status, and why (for the log)."""

    def __init__(self, status: str, reason: str) -> None:
        self.status = status
        self.reason = reason


async def _read(
    http: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[h11.Request, bytes] | None:
    """The next request, read whole; None when the client closed the connection. A body
    over MAX_BODY_BYTES is read and dropped (up to MAX_DRAINED_BYTES, so that the client
    gets its 413, not a reset) and refused."""
    head: h11.Request | None = None
    body = bytearray()
    read = 0
    while True:
        try:
            event = http.next_event()
        except h11.RemoteProtocolError as err:
            raise _Refused("400 Bad Request", f"malformed HTTP ({err})"[:LOGGED_CHARS]) from None
        if event is h11.NEED_DATA:
            if http.they_are_waiting_for_100_continue:  # curl's habit for larger bodies
                writer.write(
                    http.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                )
            http.receive_data(await reader.read(READ_BYTES))
        elif isinstance(event, h11.Request):
            head = event
            length = dict(event.headers).get(b"content-length", b"")
            too_large = length.isdigit() and int(length) > MAX_BODY_BYTES
            if too_large and http.they_are_waiting_for_100_continue:  # told before it is sent
                raise _Refused("413 Payload Too Large", f"body too large ({int(length)} bytes)")
        elif isinstance(event, h11.Data):
            read += len(event.data)
            if read <= MAX_BODY_BYTES:
                body += event.data
            elif read > MAX_DRAINED_BYTES:
                raise _Refused("413 Payload Too Large", f"body too large (over {read} bytes)")
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            if read > MAX_BODY_BYTES:
                raise _Refused("413 Payload Too Large", f"body too large ({read} bytes)")
            return head, bytes(body)
        else:  # the client closed the connection
            return None


def _call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Runs the WSGI app on a request thread: its status, headers and whole body."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None  # the legacy write(); citebot's app returns its body

    chunks = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return started[0], started[1], data


async def _write(
    writer: asyncio.StreamWriter,
    http: h11.Connection,
    status: str,
    headers: list[tuple[str, str]],
    data: bytes,
    with_body: bool = True,
) -> None:
    code, _, reason = status.partition(" ")
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(data))))
    response = h11.Response(status_code=int(code), headers=headers, reason=reason.encode())
    writer.write(http.send(response) or b"")
    if data and with_body:  # a HEAD's answer says the length of the GET's body, sends none
        writer.write(http.send(h11.Data(data=data)) or b"")
    writer.write(http.send(h11.EndOfMessage()) or b"")
    await asyncio.wait_for(writer.drain(), WRITE_SECONDS)
