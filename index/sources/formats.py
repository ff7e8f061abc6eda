"""File formats: the articles in local files and folders, or in bytes downloaded or uploaded
(fetching URLs is index/sources/fetch.py's).

A problem with a whole source raises `SourceError`; `load_sources` turns each one into a
`Failure`, so one bad file never stops a rebuild. Supported formats: plain text, Markdown,
HTML (main text only), PDF (text layer), JSON and JSON Lines exports.
"""

from __future__ import annotations

import email.utils
import io
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from pypdf import DocumentInformation, PdfReader
from pypdf.errors import PyPdfError

from index.articles import Article, record_id
from index.errors import SourceError
from index.report import Failure
from index.settings import JsonKeys

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".txt",
    ".md",
    ".markdown",
    ".html",
    ".htm",
    ".pdf",
    ".json",
    ".jsonl",
)


DEFAULT_JSON_KEYS = JsonKeys()

_CONTENT_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "application/pdf": ".pdf",
    "application/json": ".json",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/plain": ".txt",
}
# Servers send these for many kinds of file (and JSON Lines is usually served as JSON),
# so a supported extension in the URL's path is the better guide.
# One article per file, and its text is the file's: the file's size bounds the text's.
_TEXT_EXTENSIONS = (".txt", ".md", ".markdown")
_GENERIC_CONTENT_TYPES = {
    "text/plain",
    "application/octet-stream",
    "binary/octet-stream",
    "application/json",
}
_JSON_RECORD_LISTS = ("articles", "records", "items")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.S | re.M)
_ATX_HEADING = re.compile(r"^#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
# UTF-8 takes at most 4 bytes a character: a text file larger than this many bytes per
# allowed character is over the cap, and need not be read to know it.
_MAX_BYTES_PER_CHAR = 4

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def load_sources(
    sources: Iterable[str],
    json_keys: JsonKeys = DEFAULT_JSON_KEYS,
    max_chars: int | None = None,
) -> LoadResult:
    """Reads every local source: a file, or a folder (walked recursively).

    Folders are walked in sorted order, skipping hidden entries and files of unsupported
    types; a file named explicitly with an unsupported type is a failure. An article
    reached twice (say, through a folder and by name) is kept once. An article longer
    than `max_chars` characters is a failure (`index.max_article_chars`).
    """
    result = LoadResult()
    for item in sources:
        if not is_utf8(item):
            result.failures.append(Failure(escaped(item), NOT_UTF8_NAME))
            continue
        try:
            path = _resolved(item)
        except SourceError as exc:
            result.failures.append(Failure(exc.source, exc.reason))
            continue
        if path.is_dir():
            for file in _walk(path, result.failures):
                _add(result, _read_file, file, json_keys, max_chars)
        else:
            _add(result, _read_file, path, json_keys, max_chars)
    unique: dict[str, Article] = {}
    for article in result.articles:
        unique.setdefault(article.id, article)
    result.articles = list(unique.values())
    return result


def read_bytes(
    name: str,
    data: bytes,
    source: str,
    json_keys: JsonKeys = DEFAULT_JSON_KEYS,
    url: str | None = None,
    max_chars: int | None = None,
) -> LoadResult:
    """The articles in `data`, read by the extension of `name` (a file, a download, an
    upload), and the JSON records that could not be read.

    Articles get `source` as their id (JSON records: `source#url`, else `source#n`).
    """
    extension = _extension(name, source)
    stem = Path(name).stem
    if not data.strip():
        raise SourceError(source, "empty file")
    if extension == ".pdf":
        return LoadResult([_capped(_pdf_article(data, source, url, stem), max_chars)])
    if b"\0" in data:
        raise SourceError(source, "binary file, not an article")
    if extension in (".html", ".htm"):
        # trafilatura reads the page's declared charset itself, so HTML stays bytes.
        return LoadResult([_capped(_html_article(data, source, url, stem), max_chars)])
    text = _decode(data, source)
    if extension in (".json", ".jsonl"):
        records, failures = _json_records(text, extension, source)
        result = _json_result(records, source, json_keys, stem, max_chars)
        result.failures[:0] = failures
        return result
    if extension == ".txt":
        title, body = _split_title(text, stem)
        article = Article(id=source, title=title, text=body, source=source, url=url)
        return LoadResult([_capped(article, max_chars)])
    return LoadResult([_capped(_markdown_article(text, source, url, stem), max_chars)])


def _capped(article: Article, max_chars: int | None, where: str = "") -> Article:
    if max_chars is not None and len(article.text) > max_chars:
        raise SourceError(article.source, where + _too_long(f"{len(article.text):,}", max_chars))
    return article


def _too_long(size: str, max_chars: int) -> str:
    return (
        f"the article is {size} characters, more than index.max_article_chars "
        f"({max_chars:,}): split it, or raise that setting"
    )


def _add(result: LoadResult, read: Callable[..., LoadResult], *args: object) -> None:
    try:
        one = read(*args)
    except SourceError as exc:
        result.failures.append(Failure(exc.source, exc.reason))
        return
    result.articles.extend(one.articles)
    result.failures.extend(one.failures)


def is_utf8(name: str) -> bool:
    """Whether a path is UTF-8 (the store keeps ids as UTF-8; a name with other bytes
    comes from the OS with those bytes as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escaped(name: str) -> str:
    """A path fit to show and store: bytes that are not UTF-8 as `\\xNN`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


NOT_UTF8_NAME = "the name is not UTF-8 (its other bytes shown as \\xNN): rename it"


def _walk(folder: Path, failures: list[Failure]) -> Iterator[Path]:
    def unreadable(exc: OSError) -> None:
        failures.append(Failure(escaped(str(exc.filename)), f"cannot read folder: {exc.strerror}"))

    def named(root: str, names: Iterable[str]) -> list[str]:
        """The names to read: not hidden, and UTF-8 (the others are failures)."""
        wanted = sorted(n for n in names if not n.startswith("."))
        for name in wanted:
            if not is_utf8(name):
                failures.append(Failure(escaped(os.path.join(root, name)), NOT_UTF8_NAME))
        return [n for n in wanted if is_utf8(n)]

    for root, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = named(root, dirs)
        articles = (n for n in files if Path(n).suffix.lower() in SUPPORTED_EXTENSIONS)
        for name in named(root, articles):
            yield Path(root) / name


def _extension(name: str, source: str) -> str:
    extension = Path(name).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        found = extension or "no extension"
        raise SourceError(
            source, f"unsupported file type ({found}): use one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return extension


def _resolved(item: str | Path) -> Path:
    """The absolute path, symlinks followed; a symlink loop is the source's failure."""
    try:
        return Path(item).expanduser().resolve()
    except (OSError, RuntimeError) as exc:
        raise SourceError(str(item), f"cannot follow the path: {exc}") from None


def _read_file(path: Path, json_keys: JsonKeys, max_chars: int | None = None) -> LoadResult:
    path = _resolved(path)
    source = str(path)
    if not path.exists():
        raise SourceError(source, "no such file or folder")
    if path.is_dir():
        raise SourceError(source, "a folder, not a file")
    extension = _extension(path.name, source)  # fail before reading a large file of the wrong type
    try:
        size = path.stat().st_size
        if max_chars is not None and extension in _TEXT_EXTENSIONS:
            if size > max_chars * _MAX_BYTES_PER_CHAR:
                raise SourceError(
                    source, _too_long(f"over {size // _MAX_BYTES_PER_CHAR:,}", max_chars)
                )
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(source, f"cannot read: {exc.strerror}") from exc
    return read_bytes(path.name, data, source, json_keys, max_chars=max_chars)


def download_name(url: str, content_type: str) -> str:
    """A file name for the download whose extension picks the reader."""
    parts = urlsplit(url)
    name = PurePosixPath(unquote(parts.path)).name or parts.hostname or "download"
    path_extension = PurePosixPath(name).suffix.lower()
    if path_extension in SUPPORTED_EXTENSIONS and content_type in _GENERIC_CONTENT_TYPES:
        return name
    extension = _CONTENT_TYPES.get(content_type)
    if extension is None:
        if path_extension in SUPPORTED_EXTENSIONS:
            return name
        raise SourceError(url, f"unsupported content type {content_type}")
    return name if path_extension == extension else name + extension


def _decode(data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise SourceError(source, f"not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    if not text.strip():
        raise SourceError(source, "empty file")
    return _unix_newlines(text)


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _trim_blank_lines(text: str) -> str:
    """Drops blank lines at both ends but keeps the first line's indentation."""
    return re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()


def _clean_title(value: object, fallback: str) -> str:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return fallback


def _split_title(text: str, fallback: str) -> tuple[str, str]:
    """The first non-empty line is the title, the rest the text; a lone line is all text."""
    head, _, rest = text.lstrip().partition("\n")
    body = _trim_blank_lines(rest)
    if not body:
        return fallback, _trim_blank_lines(text)
    return _clean_title(head, fallback), body


def _drop_title_line(text: str, title: str) -> str:
    """Extractors often repeat the title as the first line of the text."""
    head, _, rest = _trim_blank_lines(text).partition("\n")
    if " ".join(head.split()) == title and rest.strip():
        return _trim_blank_lines(rest)
    return _trim_blank_lines(text)


def _iso_date(value: object) -> str | None:
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


def _markdown_article(text: str, source: str, url: str | None, stem: str) -> Article:
    meta, body = _front_matter(text)
    heading, without_heading = _first_heading(body)
    title = _clean_title(meta.get("title"), "") or heading
    if heading and heading == title:
        body = without_heading
    if not title:
        title, body = _split_title(body, stem)
        title = _ATX_HEADING.sub(r"\1", title) or stem
    return Article(
        id=source,
        title=title,
        text=_trim_blank_lines(body),
        source=source,
        url=meta.get("url") or url,
        published=_iso_date(meta.get("published") or meta.get("date")),
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
            title = _clean_title(_ATX_HEADING.sub(r"\1", line), "")
            before, after = "\n".join(lines[:number]), "\n".join(lines[number + 1 :])
            return title, "\n\n".join(p for p in (before.strip("\n"), after.strip("\n")) if p)
    return "", body


def _html_article(data: bytes, source: str, url: str | None, stem: str) -> Article:
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
    title = _clean_title(document.title, stem)
    return Article(
        id=source,
        title=title,
        text=_drop_title_line(document.text, title),
        source=source,
        url=document.url or url,
        published=_iso_date(document.date),
    )


def _pdf_article(data: bytes, source: str, url: str | None, stem: str) -> Article:
    with _pdf_warnings() as warnings:
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise SourceError(source, "the PDF is password-protected")
            text = "\n".join(page.extract_text() or "" for page in reader.pages)
            info = reader.metadata
        except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
            raise SourceError(source, f"not a readable PDF: {exc}{_noted(warnings)}") from exc
    if not text.strip():
        raise SourceError(source, f"the PDF has no text layer (scanned?){_noted(warnings)}")
    for warning in warnings:
        log.info("%s: pypdf: %s", source, warning)
    text = _unix_newlines(text)
    title = _clean_title(info.title if info else None, "")
    if title:
        text = _drop_title_line(text, title)
    else:
        title, text = _split_title(text, stem)
    return Article(
        id=source, title=title, text=text, source=source, url=url, published=_pdf_date(info)
    )


class _PdfWarningHandler(logging.Handler):
    """Collects pypdf's warnings for the PDF this thread is reading, so that they become
    part of its failure reason (or an INFO line of citebot's log) instead of lines on
    stderr beside citebot's own report."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        collected = getattr(self.local, "warnings", None)
        if collected is not None:
            collected.append(record.getMessage())
        else:
            log.info("pypdf: %s", record.getMessage())


_pdf_handler = _PdfWarningHandler()
_pdf_handler_lock = threading.Lock()


@contextmanager
def _pdf_warnings() -> Iterator[list[str]]:
    with _pdf_handler_lock:
        pypdf_log = logging.getLogger("pypdf")
        if _pdf_handler not in pypdf_log.handlers:
            pypdf_log.addHandler(_pdf_handler)
            pypdf_log.propagate = False
    _pdf_handler.local.warnings = collected = []
    try:
        yield collected
    finally:
        _pdf_handler.local.warnings = None


def _noted(warnings: list[str]) -> str:
    return f" (pypdf: {'; '.join(dict.fromkeys(warnings))})" if warnings else ""


def _pdf_date(info: DocumentInformation | None) -> str | None:
    try:
        return _iso_date(info.creation_date) if info else None
    except ValueError:  # pypdf parses the date lazily and rejects malformed ones
        return None


def _json_records(
    text: str, extension: str, source: str
) -> tuple[list[tuple[int, str, object]], list[Failure]]:
    """(number, where, record) of each record, and a failure for each broken JSON Lines
    line: the other lines are read all the same. `number` counts records and broken
    lines alike, so a record keeps its number (and id) when a line before it breaks."""
    if extension == ".jsonl":
        records, failures = [], []
        lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        for number, (line_number, line) in enumerate(lines, 1):
            try:
                records.append((number, f"line {line_number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                reason = f"line {line_number}: not valid JSON (column {exc.colno}): {exc.msg}"
                failures.append(Failure(source, reason))
        if not records and failures:
            first = failures[0]
            more = f" (and {len(failures) - 1} more broken lines)" if len(failures) > 1 else ""
            raise SourceError(source, first.reason + more)
        return records, failures
    data = _parse_json(text, source)
    if isinstance(data, dict):
        data = next((data[k] for k in _JSON_RECORD_LISTS if isinstance(data.get(k), list)), [data])
    if not isinstance(data, list):
        raise SourceError(source, "JSON must be a list of records or an object")
    return [(n, f"record {n}", record) for n, record in enumerate(data, 1)], []


def _parse_json(text: str, source: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise SourceError(source, f"not valid JSON ({where}): {exc.msg}") from None


def _json_result(
    records: list[tuple[int, str, object]],
    source: str,
    keys: JsonKeys,
    stem: str,
    max_chars: int | None = None,
) -> LoadResult:
    if not records:
        raise SourceError(source, "no records in the JSON")
    result = LoadResult()
    for number, where, record in records:
        try:
            article = _record_article(record, number, where, source, keys, stem)
            result.articles.append(_capped(article, max_chars, f"{where}: "))
        except SourceError as exc:
            result.failures.append(Failure(exc.source, exc.reason))
    return result


def _record_article(
    record: object, number: int, where: str, source: str, keys: JsonKeys, stem: str
) -> Article:
    def fail(reason: str) -> SourceError:
        return SourceError(source, f"{where}: {reason}")

    if not isinstance(record, dict):
        raise fail("not a JSON object")
    text = record.get(keys.text)
    if text is None:
        raise fail(f"no '{keys.text}' field (set sources.json.text_key)")
    if not isinstance(text, str):
        raise fail(f"'{keys.text}' is not a string")
    if not text.strip():
        raise fail(f"empty '{keys.text}' field")
    url = record.get(keys.url)
    url = url.strip() if isinstance(url, str) and url.strip() else None
    return Article(
        id=record_id(source, url or str(number)),
        title=_clean_title(record.get(keys.title), f"{stem} #{number}"),
        text=_trim_blank_lines(_unix_newlines(text)),
        source=source,
        url=url,
        published=_iso_date(record.get(keys.published)),
    )
