"""A stored passage's metadata, decoded once at the store's edge into typed fields, so
that answering reads `info.sentences` and `info.sentence_vectors()` instead of Chroma's
metadata keys and encodings."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from index.embedding.vectors import SENTENCE_VECTORS, unpack

# The fields a passage shares with its article's other passages.
ARTICLE_FIELDS = ("article_id", "title", "source", "url", "published", "content_hash", "origin")


@dataclass(frozen=True, slots=True)
class PassageInfo:
    """Where a passage comes from and where its sentences are. `sentences` are (start,
    end) offsets within the passage's text; `start` and `end` the passage's offsets in
    its article's text."""

    article_id: str
    title: str
    source: str
    url: str
    published: str
    content_hash: str
    number: int
    start: int
    end: int
    sentences: tuple[tuple[int, int], ...]
    sentence_vectors_packed: str
    origin: str = ""
    passages: int = 0

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> PassageInfo:
        return cls(
            article_id=metadata["article_id"],
            title=metadata["title"],
            source=metadata["source"],
            url=metadata.get("url") or "",
            published=metadata.get("published") or "",
            content_hash=metadata.get("content_hash", ""),
            number=int(metadata.get("number", 0)),
            start=int(metadata.get("start", 0)),
            end=int(metadata.get("end", 0)),
            sentences=tuple(tuple(s) for s in json.loads(metadata.get("sentences") or "[]")),
            sentence_vectors_packed=metadata.get(SENTENCE_VECTORS, ""),
            origin=metadata.get("origin") or "",
            passages=int(metadata.get("passages", 0)),
        )

    def sentence_vectors(self) -> np.ndarray:
        """One unit vector per sentence, then one per sentence with the one before."""
        return unpack(self.sentence_vectors_packed)

    def to_metadata(self) -> dict[str, Any]:
        """The metadata dict as stored (for llama-index nodes, which want a dict)."""
        metadata = {f.name: getattr(self, f.name) for f in fields(self)}
        del metadata["sentence_vectors_packed"]
        metadata["sentences"] = json.dumps(self.sentences)
        return metadata | {SENTENCE_VECTORS: self.sentence_vectors_packed}
