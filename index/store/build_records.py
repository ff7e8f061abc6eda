"""Reading a build's records: its articles as the planner sees them, passages by id,
copies between builds, and articles rebuilt from their stored passages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from index.articles import Article
from index.store.planning import StoredArticle, StoredVersion

PAGE = 2000
# Passage metadata: the library source an article was read from.
ORIGIN = "origin"


def pages(collection: Any, include: list[str], where: dict | None = None) -> Iterator[dict]:
    offset = 0
    while True:
        page = collection.get(include=include, where=where, limit=PAGE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stored_articles(
    collection: Any | None,
    article_ids: Sequence[str] | None = None,
    where: dict[str, Any] | None = None,
) -> dict[str, StoredArticle]:
    """article id -> its stored versions (each complete or not), of every article, of
    `article_ids`, or of the passages matching `where`."""
    if collection is None:
        return {}
    if article_ids is not None:
        if not article_ids:
            return {}
        where = {"article_id": {"$in": list(article_ids)}}
    found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    expected: dict[tuple[str, str], int] = {}
    about: dict[str, tuple[str, str | None]] = {}
    for page in pages(collection, include=["metadatas"], where=where):
        for pid, meta in zip(page["ids"], page["metadatas"], strict=True):
            article_id, content_hash = meta["article_id"], meta["content_hash"]
            found[article_id][content_hash].append(pid)
            expected[(article_id, content_hash)] = meta.get("passages", 0)
            about[article_id] = (meta["source"], meta.get(ORIGIN) or None)
    return {
        article_id: StoredArticle(
            id=article_id,
            source=about[article_id][0],
            origin=about[article_id][1],
            versions=tuple(
                StoredVersion(h, tuple(ids), len(ids) == expected[(article_id, h)])
                for h, ids in versions.items()
            ),
        )
        for article_id, versions in found.items()
    }


def read_passages(
    collection: Any, ids: Sequence[str] | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """passage id -> (text, metadata), of every passage or of `ids`."""
    if ids is None:
        found: Iterable[dict] = pages(collection, include=["documents", "metadatas"])
    else:
        found = (
            collection.get(ids=list(chunk), include=["documents", "metadatas"])
            for chunk in chunks(ids, PAGE)
        )
    passages: dict[str, tuple[str, dict[str, Any]]] = {}
    for page in found:
        rows = zip(page["documents"], page["metadatas"], strict=True)
        passages.update(zip(page["ids"], rows, strict=True))
    return passages


def copy_passages(source: Any, target: Any, ids: list[str], renew: Any) -> None:
    for chunk in chunks(ids, PAGE):
        page = source.get(ids=list(chunk), include=["embeddings", "documents", "metadatas"])
        target.add(
            ids=page["ids"],
            embeddings=page["embeddings"],
            documents=page["documents"],
            metadatas=page["metadatas"],
        )
        renew()


def articles_from_passages(collection: Any, ids: Sequence[str]) -> list[tuple[Article, str]]:
    """The articles `ids` belong to, rebuilt from their passages (each at its offsets,
    the gaps between passages as spaces), with their origins: how an article whose
    source cannot be read now survives a change of the embedding model."""
    grouped: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for text, meta in read_passages(collection, ids).values():
        grouped[(meta["article_id"], meta["content_hash"])].append((text, meta))
    out, done = [], set()
    for (article_id, _), passages in grouped.items():
        if article_id in done:  # two complete versions (an add killed halfway): one is enough
            continue
        done.add(article_id)
        passages.sort(key=lambda p: p[1]["start"])
        text = ""
        for passage_text, meta in passages:
            text += " " * max(0, meta["start"] - len(text)) + passage_text
        meta = passages[0][1]
        article = Article(
            id=article_id,
            title=meta["title"],
            text=text,
            source=meta["source"],
            url=meta["url"] or None,
            published=meta["published"] or None,
        )
        out.append((article, meta.get(ORIGIN) or ""))
    return out
