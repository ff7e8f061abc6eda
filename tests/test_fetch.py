"""Fetching safely, against a real HTTP server on loopback: timeouts, size caps, redirect
limits, content types, conditional requests, and the Slack policy's address check."""

from __future__ import annotations

import pytest
from fake_site import LAST_MODIFIED, etag, fake_site

from index.errors import SourceError
from index.sources.feeds import feed_entries, feed_kind, sitemap_entries
from index.sources.fetch import FetchPolicy, fetch

SLACK = FetchPolicy(public_only=True)


def test_conditional_request_of_an_unchanged_page_downloads_nothing() -> None:
    with fake_site() as site:
        url = site.put("/story.txt", "Title\n\nBody.")
        first = fetch(url)
        again = fetch(url, etag=first.etag, last_modified=first.last_modified)

    assert first.data == b"Title\n\nBody." and first.etag == etag(first.data)
    assert first.last_modified == LAST_MODIFIED
    assert again.not_modified and again.data == b""
    headers = site.requested("/story.txt")[1]
    assert headers["If-None-Match"] == first.etag
    assert headers["If-Modified-Since"] == LAST_MODIFIED


def test_server_error_names_the_status() -> None:
    with fake_site() as site:
        url = site.put("/down.txt", "oops", status=503)
        with pytest.raises(SourceError, match="HTTP 503"):
            fetch(url)


def test_slow_answer_times_out() -> None:
    with fake_site() as site:
        url = site.put("/slow.txt", "late", delay=2.0)
        with pytest.raises(SourceError, match="no answer within 0.3 s"):
            fetch(url, FetchPolicy(timeout=0.3))


def test_size_cap() -> None:
    with fake_site() as site:
        url = site.put("/big.txt", "x" * 5000)
        with pytest.raises(SourceError, match="larger than"):
            fetch(url, FetchPolicy(max_bytes=1000))


def test_unsupported_content_type_is_refused() -> None:
    with fake_site() as site:
        url = site.put("/photo.png", b"\x89PNG", content_type="image/png")
        with pytest.raises(SourceError, match="unsupported content type image/png"):
            fetch(url)


def test_redirect_limit() -> None:
    with fake_site() as site:
        for hop in range(4):
            site.put(f"/hop{hop}", "", status=302, location=f"{site.base}/hop{hop + 1}")
        site.put("/hop4", "arrived")
        assert fetch(site.base + "/hop0", FetchPolicy(max_redirects=4)).data == b"arrived"
        with pytest.raises(SourceError, match="more than 3 redirects"):
            fetch(site.base + "/hop0", FetchPolicy(max_redirects=3))


def test_redirect_to_another_scheme_is_refused_even_for_the_cli() -> None:
    with fake_site() as site:
        url = site.put("/away", "", status=302, location="ftp://127.0.0.1/secret.txt")
        with pytest.raises(SourceError, match="redirected to ftp://127.0.0.1/secret.txt"):
            fetch(url)


def test_slack_policy_refuses_loopback_and_private_addresses() -> None:
    with fake_site() as site:
        url = site.put("/internal.txt", "secret")
        for refused in (url, "http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/"):
            with pytest.raises(SourceError, match="not a public address"):
                fetch(refused, SLACK)
        # The same URL by a name resolving to loopback: refused when connecting.
        by_name = url.replace("127.0.0.1", "localhost")
        with pytest.raises(SourceError, match="not a public address"):
            fetch(by_name, SLACK)
        assert fetch(url).data == b"secret", "the CLI may fetch it"
    assert site.requested("/internal.txt") == [site.requested("/internal.txt")[0]]


def test_slack_policy_checks_the_redirect_target_too() -> None:
    with fake_site() as site:
        secret = site.put("/secret.txt", "secret")
        hop = site.put("/go", "", status=302, location=secret)
        allowed = FetchPolicy(public_only=True, allowed_hosts=frozenset({"localhost"}))
        via_allowed_host = hop.replace("127.0.0.1", "localhost")
        with pytest.raises(
            SourceError, match="redirected to .*secret.txt: 127.0.0.1 is not a public"
        ):
            fetch(via_allowed_host, allowed)
        assert fetch(secret.replace("127.0.0.1", "localhost"), allowed).data == b"secret"
    assert len(site.requested("/secret.txt")) == 1


def test_feeds_and_sitemaps_are_told_apart_and_read() -> None:
    rss = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>'
        b"<item><title>One</title><link>https://example.com/1</link>"
        b"<pubDate>Mon, 30 Nov 2026 09:00:00 GMT</pubDate></item></channel></rss>"
    )
    sitemap = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
        b"<loc>https://example.com/2</loc><news:news><news:publication_date>2026-11-29"
        b"</news:publication_date><news:title>Two</news:title></news:news></url></urlset>"
    )

    assert feed_kind(rss, "application/rss+xml") == "feed"
    assert feed_kind(sitemap, "application/xml") == "sitemap"
    assert feed_kind(b"<html></html>", "text/html") is None
    (one,) = feed_entries(rss, "feed")
    assert (one.link, one.title, one.published) == ("https://example.com/1", "One", "2026-11-30")
    (two,) = sitemap_entries(sitemap, "sitemap")
    assert (two.link, two.title, two.published) == ("https://example.com/2", "Two", "2026-11-29")
