"""The read snapshot: all passages of the active build, in one order, with their keyword
index (on disk: index/store/keyword.py), brought up to date with as little reading as a
change allows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.store.build_records import read_passages
from index.store.keyword import KeywordFile, KeywordIndex
from index.store.passage_info import PassageInfo


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
    collection: Any,
    key: tuple[str, str],
    previous: StoredPassages | None,
    keywords: KeywordFile,
) -> StoredPassages:
    """Reads the passages of `collection`, reusing what `previous` holds; `keywords` is
    the build's keyword index, already up to date.

    For the same build, only the passages added since are read: within a build a
    passage id names one content (its article's content hash and its number), and
    Chroma never overwrites a stored id. Another build is read whole (an article
    renamed keeps its passage ids, not its metadata)."""
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
            for pid in previous.ids:
                if pid in fresh:
                    text, metadata = fresh.pop(pid)
                    ids.append(pid)
                    texts.append(text)
                    metadatas.append(metadata)
    # `fresh` now holds the passages `previous` did not have, in the order read.
    new_texts = [text for text, _ in fresh.values()]
    if previous is not None and ids is previous.ids:
        row = dict(previous.row)
    else:
        row = {pid: i for i, pid in enumerate(ids)}
    row.update((pid, len(ids) + i) for i, pid in enumerate(fresh))
    every = ids + list(fresh)
    return StoredPassages(
        collection=collection,
        key=key,
        ids=every,
        texts=texts + new_texts,
        metadatas=metadatas + [metadata for _, metadata in fresh.values()],
        keywords=KeywordIndex(keywords, every),
        row=row,
    )


def _decoded(
    passages: dict[str, tuple[str, dict[str, Any]]],
) -> dict[str, tuple[str, PassageInfo]]:
    """The store's edge: each passage's metadata decoded once."""
    return {pid: (text, PassageInfo.from_metadata(meta)) for pid, (text, meta) in passages.items()}
