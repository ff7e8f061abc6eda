"""A web site on loopback for the library's tests: pages with ETag and Last-Modified
that answer 304 to matching conditional requests, redirects, errors and slow answers,
and a record of every request with its headers."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from loopback import QuietHandler, serving

LAST_MODIFIED = "Tue, 01 Dec 2026 08:00:00 GMT"


@dataclass
class Page:
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    status: int = 200
    location: str = ""
    delay: float = 0.0


@dataclass
class Site:
    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, body: str | bytes, **kwargs: object) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.pages[path] = Page(data, **kwargs)  # type: ignore[arg-type]
        return self.base + path

    def requested(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for p, headers in self.requests if p == path]


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


@contextmanager
def fake_site() -> Iterator[Site]:
    site = Site()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            with site.lock:
                site.requests.append((self.path, dict(self.headers.items())))
            page = site.pages.get(self.path)
            if page is None:
                self.respond(404, b"not found", "text/plain")
                return
            if page.delay:
                time.sleep(page.delay)
            if page.location:
                self.send_response(page.status)
                self.send_header("Location", page.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            tag = etag(page.body)
            if page.status == 200 and self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.end_headers()
                return
            self.send_response(page.status)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(page.body)))
            self.send_header("ETag", tag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.end_headers()
            try:
                self.wfile.write(page.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    with serving(Handler) as base:
        site.base = base
        yield site


def rss(site: Site, entries: list[tuple[str, str]]) -> str:
    """An RSS 2.0 feed of (path, title) entries on `site`."""
    items = "".join(
        f"<item><title>{title}</title><link>{site.base}{path}</link>"
        f"<pubDate>Mon, 30 Nov 2026 09:00:00 GMT</pubDate><guid>{site.base}{path}</guid></item>"
        for path, title in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Wire</title><link>{site.base}/</link><description>news</description>"
        f"{items}</channel></rss>"
    )
