"""PDF: the article in a PDF's text layer, its title and date from the PDF's metadata, and
pypdf's warnings kept off stderr."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pypdf import DocumentInformation, PdfReader
from pypdf.errors import PyPdfError

from index.articles import Article
from index.errors import SourceError
from index.sources.documents import (
    clean_title,
    drop_title_line,
    iso_date,
    split_title,
    unix_newlines,
)

log = logging.getLogger(__name__)


def pdf_article(data: bytes, source: str, url: str | None, stem: str) -> Article:
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
    text = unix_newlines(text)
    title = clean_title(info.title if info else None, "")
    if title:
        text = drop_title_line(text, title)
    else:
        title, text = split_title(text, stem)
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
        return iso_date(info.creation_date) if info else None
    except ValueError:  # pypdf parses the date lazily and rejects malformed ones
        return None
