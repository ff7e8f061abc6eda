"""The read snapshot: all passages of the active build, in one order, with their keyword
index, brought up to date with as little reading as a change allows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.store.build_records import read_passages
from index.store.keyword import KeywordIndex
from index.store.passage_info import PassageInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPassages:
    """All passages of the active build, in one order, with their keyword index.
    `metadatas` are each passage's `PassageInfo`, decoded once when it is read."""

    collection: Any
    key: tuple[str, str]
    ids: list[str]
    texts: list[str]
    metadatas: list[PassageInfo]
    keywords: KeywordIndex
    row: dict[str, int]
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

    def similarities(
        self, ids: Sequence[str], query_embedding: Sequence[float]
    ) -> dict[str, float]:
        """Cosine similarity of the query to each of `ids` (vectors are unit length)."""
        if not ids:
            return {}
        page = self.collection.get(ids=list(ids), include=["embeddings"])
        query = np.asarray(query_embedding, dtype=np.float32)
        vectors = np.asarray(page["embeddings"], dtype=np.float32)
        return dict(zip(page["ids"], (vectors @ query).tolist(), strict=True))


def load_passages(
    collection: Any, key: tuple[str, str], previous: StoredPassages | None
) -> StoredPassages:
    """Reads the passages of `collection`, reusing what `previous` holds.

    For the same build, only the passages added since are read: within a build a
    passage id names one content (its article's content hash and its number), and
    Chroma never overwrites a stored id. Another build is read whole (an article
    renamed keeps its passage ids, not its metadata), but the keyword index still
    reuses the terms of every passage it had."""
    if previous is not None and previous.key[0] == key[0]:
        present = collection.get(include=[])["ids"]
        fresh = _decoded(read_passages(collection, [p for p in present if p not in previous.row]))
        keep = np.zeros(len(previous.ids), dtype=bool)
        keep[[previous.row[p] for p in present if p in previous.row]] = True
        rows = np.flatnonzero(keep).tolist()
        if len(rows) == len(previous.ids):  # nothing removed: the usual add
            ids, texts, metadatas = previous.ids, previous.texts, previous.metadatas
        else:
            ids = [previous.ids[i] for i in rows]
            texts = [previous.texts[i] for i in rows]
            metadatas = [previous.metadatas[i] for i in rows]
    else:
        fresh = _decoded(read_passages(collection))
        ids, texts, metadatas = [], [], []
        if previous is not None:
            keep = np.fromiter((p in fresh for p in previous.ids), bool, len(previous.ids))
            for pid in previous.ids:
                if pid in fresh:
                    text, metadata = fresh.pop(pid)
                    ids.append(pid)
                    texts.append(text)
                    metadatas.append(metadata)
    # `fresh` now holds the passages `previous` did not have, in the order read.
    new_texts = [text for text, _ in fresh.values()]
    new_titles = [metadata.title for _, metadata in fresh.values()]
    if previous is None:
        keywords = KeywordIndex(new_texts, new_titles)
    else:
        keywords = previous.keywords.updated(keep, new_texts, new_titles)
    if previous is not None and ids is previous.ids:
        row = dict(previous.row)
    else:
        row = {pid: i for i, pid in enumerate(ids)}
    row.update((pid, len(ids) + i) for i, pid in enumerate(fresh))
    # Once at the first question, then after each change of the index: never per question.
    log.info("read %d passage(s) of the index, %d in all", len(fresh), len(row))
    return StoredPassages(
        collection=collection,
        key=key,
        ids=ids + list(fresh),
        texts=texts + new_texts,
        metadatas=metadatas + [metadata for _, metadata in fresh.values()],
        keywords=keywords,
        row=row,
    )


def _decoded(
    passages: dict[str, tuple[str, dict[str, Any]]],
) -> dict[str, tuple[str, PassageInfo]]:
    """The store's edge: each passage's metadata decoded once."""
    return {pid: (text, PassageInfo.from_metadata(meta)) for pid, (text, meta) in passages.items()}
