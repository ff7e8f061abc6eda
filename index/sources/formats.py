"""File formats: the articles in local files and folders, or in bytes downloaded or uploaded,
each read by its extension (fetching URLs is index/sources/fetch.py's).

A problem with a whole source raises `SourceError`; `load_sources` turns each one into a
`Failure`, so one bad file never stops a rebuild. Supported formats: plain text, Markdown
and HTML (main text only) in documents.py, PDF (text layer) in pdf.py, JSON and JSON Lines
exports in json_exports.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from index.articles import Article
from index.errors import SourceError
from index.report import Failure
from index.settings import JsonKeys
from index.sources.documents import (
    capped,
    html_article,
    markdown_article,
    split_title,
    too_long,
    unix_newlines,
)
from index.sources.json_exports import json_articles
from index.sources.pdf import pdf_article

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
# One article per file, and its text is the file's: the file's size bounds the text's.
_TEXT_EXTENSIONS = (".txt", ".md", ".markdown")
# Servers send these for many kinds of file (and JSON Lines is usually served as JSON),
# so a supported extension in the URL's path is the better guide.
_GENERIC_CONTENT_TYPES = {
    "text/plain",
    "application/octet-stream",
    "binary/octet-stream",
    "application/json",
}
# UTF-8 takes at most 4 bytes a character: a text file larger than this many bytes per
# allowed character is over the cap, and need not be read to know it.
_MAX_BYTES_PER_CHAR = 4


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
        return LoadResult([capped(pdf_article(data, source, url, stem), max_chars)])
    if b"\0" in data:
        raise SourceError(source, "binary file, not an article")
    if extension in (".html", ".htm"):
        # trafilatura reads the page's declared charset itself, so HTML stays bytes.
        return LoadResult([capped(html_article(data, source, url, stem), max_chars)])
    text = _decode(data, source)
    if extension in (".json", ".jsonl"):
        articles, failures = json_articles(text, extension, source, json_keys, stem, max_chars)
        return LoadResult(articles, failures)
    if extension == ".txt":
        title, body = split_title(text, stem)
        article = Article(id=source, title=title, text=body, source=source, url=url)
        return LoadResult([capped(article, max_chars)])
    return LoadResult([capped(markdown_article(text, source, url, stem), max_chars)])


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
                    source, too_long(f"over {size // _MAX_BYTES_PER_CHAR:,}", max_chars)
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
    return unix_newlines(text)
