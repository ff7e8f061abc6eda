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
    """All passages of the active build, in one order (the order they were added), with
    their keyword index. `metadatas` say where each passage comes from (its
    `PassageInfo` without sentences: `read` gives those), read from the keyword file."""

    collection: Any
    key: tuple[str, str]
    ids: list[str]
    metadatas: list[PassageInfo]
    keywords: KeywordIndex
    row: dict[str, int]
    # Each passage's row in the keyword file, which names one passage within a build.
    file_rows: np.ndarray = field(compare=False, repr=False)
    # What `column` worked out, per function: it lives and goes with the snapshot.
    columns: dict[Callable[[PassageInfo], Any], np.ndarray] = field(
        default_factory=dict, compare=False, repr=False
    )

    def column(self, of: Callable[[PassageInfo], Any], dtype: Any) -> np.ndarray:
        """`of` each passage's PassageInfo, in the snapshot's order (a passage's row), as
        an array of `dtype`; worked out once per snapshot for each `of` (a function, or a
        hashable callable such as a SourceScope)."""
        found = self.columns.get(of)
        if found is None:
            found = np.fromiter((of(m) for m in self.metadatas), dtype, len(self.metadatas))
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
        if len(kept) == len(previous.ids):  # nothing removed: the usual add
            ids, metadatas, rows = previous.ids, previous.metadatas, previous.file_rows
        else:
            ids = [previous.ids[i] for i in kept]
            metadatas = [previous.metadatas[i] for i in kept]
            rows = previous.file_rows[kept]
    else:
        after, ids, metadatas, rows = 0, [], [], np.zeros(0, np.int64)
    fresh_rows, fresh_ids, fresh = [], [], []
    for file_row, pid, info in keywords.catalogue(after):
        fresh_rows.append(file_row)
        fresh_ids.append(pid)
        fresh.append(info)
    if previous is not None and ids is previous.ids:
        row = dict(previous.row)
    else:
        row = {pid: i for i, pid in enumerate(ids)}
    row.update((pid, len(ids) + i) for i, pid in enumerate(fresh_ids))
    every = ids + fresh_ids
    file_rows = np.concatenate([rows, np.asarray(fresh_rows, dtype=np.int64)])
    # Once at the first question, then after each change of the index: never per question.
    log.info("read %d passage(s) of the index, %d in all", len(fresh), len(row))
    return StoredPassages(
        collection=collection,
        key=key,
        ids=every,
        metadatas=metadatas + fresh,
        keywords=KeywordIndex(keywords, file_rows),
        row=row,
        file_rows=file_rows,
    )
