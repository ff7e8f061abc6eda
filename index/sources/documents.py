"""One article per document: plain text, Markdown (front matter, first heading) and HTML
(main text only), and what every format shares: the title, the text's blank lines and line
ends, the date, the length cap."""

from __future__ import annotations

import email.utils
import re
from datetime import date

from index.articles import Article
from index.errors import SourceError

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.S | re.M)
_ATX_HEADING = re.compile(r"^#{1,6}\s+(.*?)(?:\s+#+)?\s*$")


def capped(article: Article, max_chars: int | None, where: str = "") -> Article:
    if max_chars is not None and len(article.text) > max_chars:
        raise SourceError(article.source, where + too_long(f"{len(article.text):,}", max_chars))
    return article


def too_long(size: str, max_chars: int) -> str:
    return (
        f"the article is {size} characters, more than index.max_article_chars "
        f"({max_chars:,}): split it, or raise that setting"
    )


def unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def trim_blank_lines(text: str) -> str:
    """Drops blank lines at both ends but keeps the first line's indentation."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def clean_title(value: object, fallback: str) -> str:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return fallback


def split_title(text: str, fallback: str) -> tuple[str, str]:
    """The first non-empty line is the title, the rest the text; a lone line is all text."""
    head, _, rest = text.lstrip().partition("\n")
    body = trim_blank_lines(rest)
    if not body:
        return fallback, trim_blank_lines(text)
    return clean_title(head, fallback), body


def drop_title_line(text: str, title: str) -> str:
    """Extractors often repeat the title as the first line of the text."""
    head, _, rest = trim_blank_lines(text).partition("\n")
    if " ".join(head.split()) == title and rest.strip():
        return trim_blank_lines(rest)
    return trim_blank_lines(text)


def iso_date(value: object) -> str | None:
    """`YYYY-MM-DD` from a date, an ISO date(time) string or an RFC 2822 date; else None."""
    if isinstance(value, date):  # a datetime is a date too
        return value.strftime("%Y-%m-%d")
    if not isinstance(value, str):
        return None
    match = re.match(r"\s*(\d{4}-\d{2}-\d{2})", value)
    try:
        if match:
            return date.fromisoformat(match.group(1)).isoformat()
        return email.utils.parsedate_to_datetime(value.strip()).strftime("%Y-%m-%d")
    except (TypeError, ValueError):
        return None


def markdown_article(text: str, source: str, url: str | None, stem: str) -> Article:
    meta, body = _front_matter(text)
    heading, without_heading = _first_heading(body)
    title = clean_title(meta.get("title"), "") or heading
    if heading and heading == title:
        body = without_heading
    if not title:
        title, body = split_title(body, stem)
        title = _ATX_HEADING.sub(r"\1", title) or stem
    return Article(
        id=source,
        title=title,
        text=trim_blank_lines(body),
        source=source,
        url=meta.get("url") or url,
        published=iso_date(meta.get("published") or meta.get("date")),
    )


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """Simple `key: value` lines between `---` lines at the top; no YAML needed."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta = {}
    for line in match.group(1).splitlines():
        key, colon, value = line.partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if colon and key.strip() and value:
            meta[key.strip().lower()] = value
    return meta, text[match.end() :]


def _first_heading(body: str) -> tuple[str, str]:
    """The text of the first `# Heading` and the body without that line ("" if none)."""
    lines = body.split("\n")
    for number, line in enumerate(lines):
        if line.startswith("# "):
            title = clean_title(_ATX_HEADING.sub(r"\1", line), "")
            before, after = "\n".join(lines[:number]), "\n".join(lines[number + 1 :])
            return title, "\n\n".join(p for p in (before.strip("\n"), after.strip("\n")) if p)
    return "", body


def html_article(data: bytes, source: str, url: str | None, stem: str) -> Article:
    # The HTML stack (trafilatura, lxml, jusText) loads on the first page read: a rebuild
    # of text files neither waits for it nor depends on it.
    import trafilatura

    document = trafilatura.bare_extraction(
        data,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
        # When no article is found, trafilatura's fallback would return the menu text.
        prune_xpath=["//nav", "//footer", "//aside"],
        # Dates only from the page's metadata and markup, not guessed from its prose.
        date_extraction_params={"original_date": True, "extensive_search": False},
    )
    if document is None or not (document.text or "").strip():
        raise SourceError(source, "no article text found in the HTML")
    title = clean_title(document.title, stem)
    return Article(
        id=source,
        title=title,
        text=drop_title_line(document.text, title),
        source=source,
        url=document.url or url,
        published=iso_date(document.date),
    )
