"""The records that flow through the index: articles, their sentences and passages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """One source document, as read from a file, a JSON record or a URL.

    `id` is stable across runs (the absolute path, `path#record`, or the URL), so the
    index can tell added, changed and unchanged articles apart.
    """

    id: str
    title: str
    text: str
    source: str
    url: str | None = None
    published: str | None = None

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.title, self.text, self.url or "", self.published or ""):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()


@dataclass(frozen=True)
class Passage:
    """A run of whole sentences of one article, the unit that is embedded and retrieved.

    `start` and `end` are character offsets of `text` in the article's text;
    `sentences` are (start, end) offsets of each sentence within `text`.
    """

    id: str
    article: Article
    number: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...] = field(default_factory=tuple)
