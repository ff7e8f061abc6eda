"""Feeds and news sitemaps as lists of entries: RSS and Atom read by feedparser, sitemaps
(including Google News sitemaps) by lxml with entities and network access turned off."""

from __future__ import annotations

import time
from dataclasses import dataclass

from index.errors import SourceError

FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
XML_TYPES = frozenset({"application/xml", "text/xml"}) | FEED_TYPES
_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"


@dataclass(frozen=True)
class Entry:
    """One item of a feed or sitemap: the page to read, and what the feed says of it
    (used where the page lacks it). `updated` changes when the publisher changes it."""

    link: str
    title: str = ""
    published: str = ""
    author: str = ""
    updated: str = ""


def feed_kind(data: bytes, content_type: str) -> str | None:
    """ "feed", "sitemap", or None when `data` is neither (a page to read as an article)."""
    if content_type not in XML_TYPES and not data.lstrip().startswith(b"<?xml"):
        return None
    head = data[:2048].lower()
    if b"<urlset" in head or b"<sitemapindex" in head:
        return "sitemap"
    if b"<rss" in head or b"<feed" in head or b"<rdf:rdf" in head:
        return "feed"
    return None


def feed_entries(data: bytes, source: str) -> list[Entry]:
    """The entries of an RSS or Atom feed, newest first as the feed lists them."""
    import feedparser

    parsed = feedparser.parse(data)
    if parsed.bozo and not parsed.entries:
        raise SourceError(source, f"not a readable feed: {parsed.get('bozo_exception')}")
    entries = []
    for item in parsed.entries:
        link = item.get("link") or ""
        if not link.startswith(("http://", "https://")):
            continue
        entries.append(
            Entry(
                link=link,
                title=" ".join((item.get("title") or "").split()),
                published=_day(item.get("published_parsed") or item.get("updated_parsed")),
                author=item.get("author") or "",
                # dict.get: feedparser's own get maps a missing "updated" to "published"
                # with a warning.
                updated=dict.get(item, "updated") or dict.get(item, "published") or "",
            )
        )
    return entries


def sitemap_entries(data: bytes, source: str) -> list[Entry]:
    """The pages of a sitemap (`<url><loc>`, with Google News' title and date when
    present). A sitemap index's child sitemaps are not followed."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise SourceError(source, f"not a readable sitemap: {exc}") from None
    if etree.QName(root).localname == "sitemapindex":
        raise SourceError(source, "a sitemap index: add its news sitemaps themselves")
    entries = []
    for url in root:
        if not isinstance(url.tag, str) or etree.QName(url).localname != "url":
            continue
        loc = _child_text(url, "loc")
        if not loc.startswith(("http://", "https://")):
            continue
        news = next((c for c in url if isinstance(c.tag, str) and c.tag == _NEWS + "news"), None)
        published = _child_text(news, "publication_date") if news is not None else ""
        entries.append(
            Entry(
                link=loc,
                title=_child_text(news, "title") if news is not None else "",
                published=published[:10],
                updated=_child_text(url, "lastmod") or published,
            )
        )
    return entries


def _child_text(element: object, name: str) -> str:
    from lxml import etree

    for child in element:  # type: ignore[attr-defined]
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return (child.text or "").strip()
    return ""


def _day(parsed: time.struct_time | None) -> str:
    return time.strftime("%Y-%m-%d", parsed) if parsed else ""
