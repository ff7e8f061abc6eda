"""What `citebot status` and `citebot sources` show: the index, and each library source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from index.sources.library import LibrarySource


@dataclass(frozen=True)
class IndexStatus:
    articles: int
    passages: int
    model: str
    backend: str
    home: str
    chroma: str
    collection: str | None
    rebuilt_at: str | None
    updated_at: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class SourceStatus:
    """A library source and how many articles the index holds from it now."""

    source: LibrarySource
    indexed: int

    def to_json(self) -> dict[str, Any]:
        data = self.source.to_json()
        del data["articles"]
        return data | {"articles": self.indexed}
