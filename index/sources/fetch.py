"""Fetching a URL safely: a timeout, a size cap, a redirect limit, a content-type check,
conditional requests, and (for URLs an admin gave in Slack) public addresses only.

The address check is made on the socket each request actually connects to, so neither a
redirect nor a DNS answer that changes between a check and the connection can reach a
loopback, private, link-local or metadata address.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.request import (
    HTTPHandler,
    HTTPRedirectHandler,
    HTTPSHandler,
    OpenerDirector,
    Request,
    build_opener,
)

from index.errors import SourceError

USER_AGENT = "citebot/0.1 (+https://github.com/citebot)"
DEFAULT_TIMEOUT = 20.0
DEFAULT_MAX_BYTES = 50_000_000
DEFAULT_MAX_REDIRECTS = 5
# What citebot can read from the web: pages, documents, exports, feeds and sitemaps.
READABLE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "application/pdf",
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
        "text/markdown",
        "text/x-markdown",
        "text/plain",
        "application/octet-stream",
        "binary/octet-stream",
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
    }
)


@dataclass(frozen=True)
class FetchPolicy:
    """How a fetch may go. `public_only` refuses every address that is not public
    unless its host name is in `allowed_hosts` (for intranet feeds)."""

    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    public_only: bool = False
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)


CLI_POLICY = FetchPolicy()


def public_policy(allowed_hosts: Iterable[str] = ()) -> FetchPolicy:
    """The policy of URLs added from Slack (and of their refreshes): public addresses
    only, but for `allowed_hosts` (`sources.allowed_hosts`)."""
    return FetchPolicy(public_only=True, allowed_hosts=frozenset(h.lower() for h in allowed_hosts))


@dataclass(frozen=True)
class Fetched:
    """A response. `not_modified` (HTTP 304): the server says the page is as it was when
    `etag` / `last_modified` were sent, and `data` is empty."""

    url: str
    content_type: str
    data: bytes
    etag: str = ""
    last_modified: str = ""
    not_modified: bool = False


def fetch(
    url: str, policy: FetchPolicy = CLI_POLICY, etag: str = "", last_modified: str = ""
) -> Fetched:
    """GETs `url` (with If-None-Match / If-Modified-Since when validators are given).
    Raises SourceError naming the URL and what went wrong."""
    check_url(url, policy)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    opener = _opener(url, policy)
    try:
        with opener.open(Request(url, headers=headers), timeout=policy.timeout) as response:
            content_type = response.headers.get_content_type()
            if content_type not in READABLE_TYPES:
                raise SourceError(url, f"unsupported content type {content_type}")
            data = response.read(policy.max_bytes + 1)
            final_url = response.geturl()
            validators = (
                response.headers.get("ETag", ""),
                response.headers.get("Last-Modified", ""),
            )
    except _Refused as exc:
        raise SourceError(url, str(exc)) from None
    except HTTPError as exc:
        if exc.code == 304:
            return Fetched(url, "", b"", etag, last_modified, not_modified=True)
        raise SourceError(url, f"HTTP {exc.code} {exc.reason}") from None
    except URLError as exc:
        reason = exc.reason
        if isinstance(reason, SourceError):
            raise reason from None
        if isinstance(reason, TimeoutError | socket.timeout):
            reason = f"no answer within {policy.timeout:g} s"
        raise SourceError(url, f"could not fetch: {reason}") from None
    except TimeoutError:
        raise SourceError(url, f"could not fetch: no answer within {policy.timeout:g} s") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise SourceError(url, f"could not fetch: {exc}") from None
    if len(data) > policy.max_bytes:
        raise SourceError(url, f"larger than {policy.max_bytes // 1_000_000} MB")
    return Fetched(final_url, content_type, data, *validators)


def is_url(location: str) -> bool:
    """Whether a source is a web address (else a local path or an upload)."""
    return location.lower().startswith(("http://", "https://"))


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuses what is not http(s), and under `public_only` a URL naming a non-public
    address literally (names are checked when connecting)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SourceError(url, "not an http(s) URL")
    if policy.public_only and not _host_allowed(parts.hostname, policy):
        try:
            address = ipaddress.ip_address(parts.hostname)
        except ValueError:
            return
        if not address.is_global:
            raise SourceError(url, refused_reason(parts.hostname, str(address)))


def refused_reason(host: str, address: str) -> str:
    return (
        f"{host} is not a public address ({address}): only public http(s) URLs can be added "
        "from Slack (an admin can allow it in sources.allowed_hosts)"
    )


def _host_allowed(host: str, policy: FetchPolicy) -> bool:
    return host.lower().rstrip(".") in policy.allowed_hosts


def _opener(url: str, policy: FetchPolicy) -> OpenerDirector:
    return build_opener(
        _Redirects(policy),
        _GuardedHTTP(policy),
        _GuardedHTTPS(policy),
    )


class _Redirects(HTTPRedirectHandler):
    """At most `max_redirects`, each to an http(s) URL the policy allows."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self.max_redirections = policy.max_redirects
        self.max_repeats = policy.max_redirects

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        target = urljoin(req.full_url, newurl)
        hops = getattr(req, "redirect_dict", {})
        if sum(hops.values()) >= self.policy.max_redirects:
            raise SourceError(target, f"more than {self.policy.max_redirects} redirects")
        try:
            check_url(target, self.policy)
        except SourceError as exc:
            raise SourceError(req.full_url, f"redirected to {target}: {exc.reason}") from None
        return super().redirect_request(req, fp, code, msg, headers, target)


class _Refused(Exception):
    """The connection reached an address the policy refuses (not an OSError, so that
    urllib does not wrap it)."""


def _guarded(base: type[http.client.HTTPConnection], policy: FetchPolicy) -> type:
    class Guarded(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            if policy.public_only and not _host_allowed(self.host, policy):
                peer = self.sock.getpeername()[0]
                if not ipaddress.ip_address(peer.split("%")[0]).is_global:
                    self.sock.close()
                    raise _Refused(refused_reason(self.host, peer))

    return Guarded


class _GuardedHTTP(HTTPHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.connection = _guarded(http.client.HTTPConnection, policy)

    def http_open(self, req: Request):  # noqa: ANN201
        return self.do_open(self.connection, req)


class _GuardedHTTPS(HTTPSHandler):
    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.connection = _guarded(http.client.HTTPSConnection, policy)

    def https_open(self, req: Request):  # noqa: ANN201
        return self.do_open(self.connection, req, context=self._context)
