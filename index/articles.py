"""The records that flow through the index: articles, their sentences and passages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """One source document, as read from a file, a JSON record or a URL.

    `id` is stable across runs (the absolute path, the URL, or for a JSON record
    `export#url` or `export#number`), so the index can tell added, changed and unchanged
    articles apart. It always names the source that produced the article: what an export
    says of itself (a record's url) can never take the id of another source's article.
    """

    id: str
    title: str
    text: str
    source: str
    url: str | None = None
    published: str | None = None

    @property
    def former_id(self) -> str | None:
        """A JSON record's id before ids named their export: its bare url. An index built
        then is re-keyed by the next read of the export, and an article removed then
        stays removed."""
        if self.url and self.id == record_id(self.source, self.url):
            return self.url
        return None

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.title, self.text, self.url or "", self.published or ""):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()


def record_id(export: str, key: str) -> str:
    """The id of a JSON record of `export`: its url, else its number, after the export's."""
    return f"{export}#{key}"


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
