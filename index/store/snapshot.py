"""The read snapshot: every passage of the active build in one order, with where it comes
from and its keyword index (on disk: index/store/keyword.py), brought up to date with as
little reading as a change allows. Texts, sentence offsets and vectors stay in the store:
an answer reads them for its candidate passages only (`StoredPassages.read`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.store.catalogue import Catalogue, PassageIds
from index.store.keyword import KeywordFile, KeywordIndex
from index.store.passage_info import PassageInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CandidatePassage:
    """What an answer reads of a passage: its text, its metadata with the sentence
    offsets and vectors, and its cosine similarity to the question."""

    text: str
    metadata: PassageInfo
    similarity: float


@dataclass(frozen=True)
class StoredPassages:
    """All passages of the active build, in one order (the order they were added: a
    passage's position), with their keyword index. `ids` give a position's passage id
    and an id's position; `metadatas` say where each passage comes from (its
    `PassageInfo` without sentences: `read` gives those), read from the keyword file.
    Both are arrays (index/store/catalogue.py), not an object per passage."""

    collection: Any
    key: tuple[str, str]
    ids: PassageIds
    metadatas: Catalogue
    keywords: KeywordIndex
    # Each passage's row in the keyword file, which names one passage within a build.
    file_rows: np.ndarray = field(compare=False, repr=False)
    # What `column` worked out, per function: it lives and goes with the snapshot.
    columns: dict[Callable[[PassageInfo], Any], np.ndarray] = field(
        default_factory=dict, compare=False, repr=False
    )

    def column(self, of: Callable[[PassageInfo], Any], dtype: Any) -> np.ndarray:
        """`of` each passage's PassageInfo, by position, as an array of `dtype`, where
        `of` (a function, or a hashable callable such as a SourceScope) reads only the
        fields a passage shares with its article; worked out once per snapshot."""
        found = self.columns.get(of)
        if found is None:
            found = self.metadatas.column(of, dtype)
            self.columns[of] = found  # two threads may both work it out: the same array
        return found

    def dense_search(self, query_embedding: list[float], k: int) -> list[tuple[str, float]]:
        """(passage id, cosine similarity) of the `k` nearest passages."""
        if not self.ids:
            return []
        result = self.collection.query(
            query_embeddings=[query_embedding],
            n_results=min(k, len(self.ids)),
            include=["distances"],
        )
        return [
            (pid, 1.0 - float(distance))
            for pid, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]

    def read(
        self, ids: Sequence[str], query_embedding: Sequence[float]
    ) -> dict[str, CandidatePassage]:
        """The passages `ids`, read from the store in one call (one removed since this
        snapshot was taken is left out)."""
        if not ids:
            return {}
        page = self.collection.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        query = np.asarray(query_embedding, dtype=np.float32)
        similarities = np.asarray(page["embeddings"], dtype=np.float32) @ query
        return {
            pid: CandidatePassage(text, PassageInfo.from_metadata(meta), float(similarity))
            for pid, text, meta, similarity in zip(
                page["ids"], page["documents"], page["metadatas"], similarities, strict=True
            )
        }


def load_passages(
    collection: Any,
    key: tuple[str, str],
    previous: StoredPassages | None,
    keywords: KeywordFile,
) -> StoredPassages:
    """Where the passages of `collection` come from, read from its keyword index
    `keywords` (already up to date: it holds the same passages), reusing what
    `previous` holds: the store is not read, and its metadata (most of whose bytes are
    sentence vectors) never is at start.

    For the same build, only the passages added since are read: within a build a
    passage id names one content, and a file row one passage (rows only grow). Another
    build is read whole (an article renamed keeps its passage ids, not its metadata)."""
    if previous is not None and previous.key[0] == key[0]:
        # A file row names one passage: a passage is kept while its row is there.
        kept = np.flatnonzero(np.isin(previous.file_rows, keywords.rows()))
        after = int(previous.file_rows.max(initial=0))
        ids, catalogue, rows = previous.ids, previous.metadatas, previous.file_rows
        if len(kept) < len(ids):
            ids, catalogue, rows = ids.taken(kept), catalogue.taken(kept), rows[kept]
    else:
        after, ids, catalogue, rows = 0, PassageIds.of([]), Catalogue.empty(), np.zeros(0, np.int64)
    fresh_rows, fresh_ids, fresh = keywords.catalogue(after)
    file_rows = np.concatenate([rows, fresh_rows])
    # Once at the first question, then after each change of the index: never per question.
    log.info("read %d passage(s) of the index, %d in all", len(fresh), len(file_rows))
    return StoredPassages(
        collection=collection,
        key=key,
        ids=PassageIds.chained([ids, fresh_ids]),
        metadatas=Catalogue.chained(fresh.articles, [catalogue, fresh]),
        keywords=KeywordIndex(keywords, file_rows),
        file_rows=file_rows,
    )
