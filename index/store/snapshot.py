"""The read snapshot: every passage of the active build in one order, with where it comes
from and its keyword index (on disk: index/store/keyword.py), brought up to date with as
little reading as a change allows. Texts, sentence offsets and vectors stay in the store:
an answer reads them for its candidate passages only (`StoredPassages.read`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from index.embedding.vectors import SENTENCE_VECTORS
from index.store.build_records import PAGE, chunks, pages
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
    """All passages of the active build, in one order, with their keyword index.
    `metadatas` say where each passage comes from (its `PassageInfo` without sentences:
    `read` gives those), decoded once when it is read."""

    collection: Any
    key: tuple[str, str]
    ids: list[str]
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
    """Reads where the passages of `collection` come from, reusing what `previous` holds;
    `keywords` is the build's keyword index, already up to date.

    For the same build, only the passages added since are read: within a build a
    passage id names one content (its article's content hash and its number), and
    Chroma never overwrites a stored id. Another build is read whole (an article
    renamed keeps its passage ids, not its metadata)."""
    if previous is not None and previous.key[0] == key[0]:
        present = collection.get(include=[])["ids"]
        new = [p for p in present if p not in previous.row]
        fresh = _origins(
            collection.get(ids=list(chunk), include=["metadatas"]) for chunk in chunks(new, PAGE)
        )
        kept = [previous.row[p] for p in present if p in previous.row]
        if len(kept) == len(previous.ids):  # nothing removed: the usual add
            ids, metadatas = previous.ids, previous.metadatas
        else:
            kept.sort()
            ids = [previous.ids[i] for i in kept]
            metadatas = [previous.metadatas[i] for i in kept]
    else:
        fresh = _origins(pages(collection, include=["metadatas"]))
        ids, metadatas = [], []
        if previous is not None:
            for pid in previous.ids:
                if pid in fresh:
                    ids.append(pid)
                    metadatas.append(fresh.pop(pid))
    # `fresh` now holds the passages `previous` did not have, in the order read.
    if previous is not None and ids is previous.ids:
        row = dict(previous.row)
    else:
        row = {pid: i for i, pid in enumerate(ids)}
    row.update((pid, len(ids) + i) for i, pid in enumerate(fresh))
    every = ids + list(fresh)
    # Once at the first question, then after each change of the index: never per question.
    log.info("read %d passage(s) of the index, %d in all", len(fresh), len(row))
    return StoredPassages(
        collection=collection,
        key=key,
        ids=every,
        metadatas=metadatas + list(fresh.values()),
        keywords=KeywordIndex(keywords, every),
        row=row,
    )


def _origins(found: Iterable[dict]) -> dict[str, PassageInfo]:
    """Each passage's metadata, decoded at the store's edge without its sentences (a page
    at a time: the sentence vectors are most of a passage's bytes). Articles' fields are
    shared by their passages rather than copied."""
    shared: dict[str, str] = {}
    decoded = {}
    for page in found:
        for pid, meta in zip(page["ids"], page["metadatas"], strict=True):
            info = PassageInfo.from_metadata(meta | {"sentences": "", SENTENCE_VECTORS: ""})
            decoded[pid] = replace(info, **dict(_shared(info, shared)))
    return decoded


ARTICLE_FIELDS = ("article_id", "title", "source", "url", "published", "content_hash", "origin")


def _shared(info: PassageInfo, shared: dict[str, str]) -> Iterator[tuple[str, str]]:
    for name in ARTICLE_FIELDS:
        value = getattr(info, name)
        yield name, shared.setdefault(value, value)
