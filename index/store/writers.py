"""Several processes writing to one Chroma server at once (docs/DEPLOYMENT.md, "A Chroma
server"): a writer claims each article before it embeds it, so that writers given the same
articles share them instead of embedding each twice, and changes of the index state take
turns. Chroma has neither locks nor leases, so both are records in the collection
`citebot-writers`, made with `add`, which leaves an id that exists as it is: of two
writers adding one id the first wins, and reading the record back says which. (With the
embedded store a whole change takes turns instead: index/store/chroma.py.)"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from index.articles import Article
from index.store.build_records import chunks, stored_articles

WRITERS_COLLECTION = "citebot-writers"
# A writer renews its heartbeat this often while it works; one whose heartbeat is older
# than WRITER_LEASE was killed (or stalled), and the others take over its claims.
HEARTBEAT = timedelta(seconds=20)
WRITER_LEASE = timedelta(minutes=2)
# Articles claimed at once: few, so that two writers take turns article by article
# instead of one claiming a whole add.
CLAIM_BATCH = 4
# How often a writer done with its own claims looks at the ones it waits for.
POLL_SECONDS = 0.5
# A turn at the index state is a few requests; a holder killed in it is passed over after this.
TURN_LEASE = timedelta(seconds=30)
TURN = "turn"
# Articles looked up in one request when checking which are stored.
STORED_QUERY = 500
_DUMMY = [0.0]  # Chroma records need an embedding; these are never searched

ArticleToEmbed = tuple[Article, str]  # an article to embed, and the library source it came from

log = logging.getLogger(__name__)


def records(client: Any) -> Any:
    return client.get_or_create_collection(WRITERS_COLLECTION, embedding_function=None)


class Writer:
    """One change written to a Chroma server: its heartbeat, and the articles it claimed.
    Without a server (`client` None) there is nobody to share with."""

    def __init__(self, client: Any | None) -> None:
        self.client = client
        self.id = uuid.uuid4().hex
        # Articles of this change that another writer embedded (the report says how many).
        self.shared = 0
        self._records: Any = None
        self._renewed = 0.0

    def articles_to_embed(
        self,
        collection: Any,
        articles: Sequence[ArticleToEmbed],
        before_waiting: Callable[[], None] = lambda: None,
    ) -> Iterator[ArticleToEmbed]:
        """The articles of `articles` this writer embeds into `collection`, claimed a few
        at a time; those another writer claimed are waited for at the end, and taken
        over when their writer was killed. Returns once all of them are in `collection`
        (with the embedded store: every article, at once). `before_waiting` is called
        before each wait: the caller stores what it holds of its own articles then,
        since the other writer may be waiting for those."""
        if self.client is None:
            yield from articles
            return
        waiting: list[ArticleToEmbed] = []
        for batch in chunks(articles, CLAIM_BATCH):
            mine, others = self._take(collection, batch)
            waiting += others
            yield from mine
        before_waiting()
        while waiting := self._unstored(collection, waiting):
            held = self._holders(collection.name, waiting)
            alive = self._alive(set(held.values()))
            for dead in set(held.values()) - alive:
                log.warning("taking over the articles of writer %s, which stopped", dead)
                self._store().delete(where={"writer": dead})
            free = [i for i in waiting if held.get(claim_id(collection.name, i)) not in alive]
            if not free:
                before_waiting()
                self.renew()
                time.sleep(POLL_SECONDS)
                continue
            mine, others = self._take(collection, free)
            taken = {claim_id(collection.name, item) for item in free}
            waiting = [i for i in waiting if claim_id(collection.name, i) not in taken] + others
            yield from mine

    def renew(self) -> None:
        """Tells the other writers this one is alive (at most once a HEARTBEAT)."""
        if self.client is None or time.monotonic() - self._renewed < HEARTBEAT.total_seconds():
            return
        self._store().upsert(
            ids=[f"writer:{self.id}"],
            embeddings=[_DUMMY],
            metadatas=[{"record": "writer", "writer": self.id, "heartbeat": time.time()}],
        )
        self._renewed = time.monotonic()

    def close(self) -> None:
        """Releases this writer's claims: stored, or left for another writer to take."""
        if self._records is None:
            return
        try:
            self._records.delete(where={"writer": self.id})
        except Exception as exc:  # noqa: BLE001 - the change is done; the claims expire
            log.warning(
                "could not release this writer's claims (others take them over after %d s): %s",
                WRITER_LEASE.total_seconds(),
                exc,
            )

    def _store(self) -> Any:
        if self._records is None:
            self._records = records(self.client)
        return self._records

    def _take(
        self, collection: Any, items: Sequence[ArticleToEmbed]
    ) -> tuple[list[ArticleToEmbed], list[ArticleToEmbed]]:
        """Claims `items`: (those now this writer's and not stored yet, those another
        writer holds). Stored is checked after claiming: a writer stores before it lets
        go of a claim, so an article is never found both unclaimed and unstored once
        another writer has embedded it."""
        self.renew()
        ids = [claim_id(collection.name, item) for item in items]
        unique = list(dict.fromkeys(ids))  # Chroma refuses an id twice in one add
        self._store().add(
            ids=unique,
            embeddings=[_DUMMY] * len(unique),
            metadatas=[{"record": "claim", "writer": self.id}] * len(unique),
        )
        held = self._holders(collection.name, items)
        mine = [item for item, cid in zip(items, ids, strict=True) if held.get(cid) == self.id]
        others = [item for item, cid in zip(items, ids, strict=True) if held.get(cid) != self.id]
        return self._unstored(collection, mine), others

    def _unstored(self, collection: Any, items: Sequence[ArticleToEmbed]) -> list[ArticleToEmbed]:
        """`items` without those whose version is in `collection` whole (counted as shared)."""
        if not items:
            return []
        stored: dict[str, Any] = {}
        for chunk in chunks(items, STORED_QUERY):
            stored |= stored_articles(collection, [article.id for article, _ in chunk])
        left = [
            (article, origin)
            for article, origin in items
            if article.id not in stored
            or stored[article.id].complete_version(article.content_hash) is None
        ]
        self.shared += len(items) - len(left)
        return left

    def _holders(self, build: str, items: Sequence[ArticleToEmbed]) -> dict[str, str]:
        """claim id -> the writer holding it, of the items claimed at all."""
        found = self._store().get(
            ids=[claim_id(build, item) for item in items], include=["metadatas"]
        )
        rows = zip(found["ids"], found["metadatas"], strict=True)
        return {cid: meta["writer"] for cid, meta in rows}

    def _alive(self, writers: set[str]) -> set[str]:
        if not writers:
            return set()
        found = self._store().get(ids=[f"writer:{w}" for w in writers], include=["metadatas"])
        expired = time.time() - WRITER_LEASE.total_seconds()
        return {meta["writer"] for meta in found["metadatas"] if meta["heartbeat"] >= expired}


def claim_id(build: str, item: ArticleToEmbed) -> str:
    """A claim names the build and the article's version (passage ids name both too)."""
    article = item[0]
    return f"{build}|{article.id}|{article.content_hash}"


@contextmanager
def turn(client: Any) -> Iterator[None]:
    """This process's turn at changing the index state (a few requests): the record `turn`,
    added if absent; one left by a process killed in its turn is passed over after
    TURN_LEASE."""
    store = records(client)
    me = uuid.uuid4().hex
    while True:
        store.add(
            ids=[TURN],
            embeddings=[_DUMMY],
            metadatas=[{"record": "turn", "holder": me, "heartbeat": time.time()}],
        )
        found = store.get(ids=[TURN], include=["metadatas"])
        holder = found["metadatas"][0] if found["ids"] else None
        if holder is not None and holder["holder"] == me:
            break
        if holder is not None and holder["heartbeat"] < time.time() - TURN_LEASE.total_seconds():
            # Deleted only if still that holder's: two processes passing it over at once
            # do not delete each other's turn.
            store.delete(ids=[TURN], where={"holder": holder["holder"]})
        time.sleep(0.05)
    try:
        yield
    finally:
        store.delete(ids=[TURN], where={"holder": me})
