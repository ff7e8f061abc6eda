"""The source library: every source citebot indexes, kept in Chroma so that every process
sharing the store sees it (with a Chroma server, every bot process and every shell).

It records the configured folders and files (as of the last rebuild) and each path, URL,
feed or upload an admin added, with who added it and when, how its last read went, and
the validators (ETag, Last-Modified) a refresh sends. Uploaded bytes are kept here too,
content-addressed, so a rebuild can read them again. Articles an admin removed from a
source that still holds them are recorded as excluded, so that a rebuild does not bring
them back.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

LIBRARY_COLLECTION = "citebot-library"
UPLOADS_COLLECTION = "citebot-uploads"
# Uploads are stored as base64 text in parts of this many bytes (Chroma documents).
UPLOAD_PART = 1_000_000
PAGE = 1000
# Lines of the latest rebuild or refresh report kept (a report names every article).
REPORT_LINES = 40
KINDS = ("folder", "file", "url", "feed", "sitemap", "upload")
_DUMMY = [0.0]  # Chroma records need an embedding; the library's are never searched


@dataclass(frozen=True)
class LibrarySource:
    """One source. `key` is its location: an absolute path, a URL, or for an upload
    `upload://<uploader>/<file name>`; `origin` is "config" or "added"."""

    key: str
    kind: str
    origin: str = "added"
    added_by: str = ""
    added_at: str = ""
    last_read: str = ""
    last_change: str = ""
    last_error: str = ""
    articles: int = 0
    upload_sha256: str = ""
    upload_name: str = ""
    etag: str = ""
    last_modified: str = ""
    # Added from Slack: it and its refreshes may fetch only public addresses.
    public_only: bool = False
    # Added in a private channel, a group DM or a DM: that conversation's Slack id, and
    # only questions asked there are answered from it (until an admin shares it); "": all.
    visible_in: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LibraryReport:
    """The report of the latest rebuild or refresh, whichever process ran it."""

    what: str  # "rebuild" or "refresh"
    at: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class PageState:
    """What a refresh knows of a page it fetched for a feed: its validators and the
    entry date the feed gave it, so an unchanged entry costs no request at all."""

    url: str
    etag: str = ""
    last_modified: str = ""
    entry_updated: str = ""


class SourceLibrary:
    """The library's records in the store's `citebot-library` collection."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def _records(self) -> Any:
        return _collection(self.client, LIBRARY_COLLECTION)

    # -- sources ----------------------------------------------------------------------

    def sources(self) -> list[LibrarySource]:
        """Every source, configured ones first, in the order they were recorded."""
        names = {f.name for f in fields(LibrarySource)}
        found = [
            LibrarySource(**{k: v for k, v in meta.items() if k in names})
            for meta in self._metadatas({"record": "source"})
        ]
        return sorted(found, key=lambda s: (s.origin != "config", s.added_at, s.key))

    def source(self, key: str) -> LibrarySource | None:
        return next((s for s in self.sources() if s.key == key), None)

    def save(self, sources: Iterable[LibrarySource]) -> None:
        items = list(sources)
        if items:
            self._upsert(
                [f"source:{s.key}" for s in items],
                [{"record": "source"} | _clean(s.to_json()) for s in items],
            )

    def delete(self, keys: Iterable[str]) -> None:
        ids = [f"source:{k}" for k in keys]
        if ids:
            self._records.delete(ids=ids)

    def set_configured(self, keys: Iterable[str], kinds: dict[str, str], now: str) -> None:
        """Makes `keys` the configured sources (their records keep their history); a
        configured source no longer in `keys` leaves the library."""
        keys = list(dict.fromkeys(keys))
        current = {s.key: s for s in self.sources()}
        gone = [k for k, s in current.items() if s.origin == "config" and k not in keys]
        self.delete(gone)
        updated = []
        for key in keys:
            old = current.get(key)
            if old is None:
                updated.append(LibrarySource(key, kinds[key], "config", "settings", now))
            elif old.origin != "config" or old.kind != kinds[key]:
                updated.append(replace(old, origin="config", kind=kinds[key]))
        self.save(updated)

    # -- removed articles -------------------------------------------------------------

    def excluded(self) -> set[str]:
        return {meta["article"] for meta in self._metadatas({"record": "excluded"})}

    def exclude(self, article_ids: Iterable[str], by: str, now: str) -> None:
        ids = list(article_ids)
        if ids:
            self._upsert(
                [f"excluded:{a}" for a in ids],
                [{"record": "excluded", "article": a, "by": by, "at": now} for a in ids],
            )

    def include(self, article_ids: Iterable[str]) -> None:
        """Lets articles removed earlier back in (an admin added them again)."""
        ids = [f"excluded:{a}" for a in article_ids]
        if ids:
            self._records.delete(ids=ids)

    # -- pages fetched for feeds ------------------------------------------------------

    def pages(self) -> dict[str, PageState]:
        names = {f.name for f in fields(PageState)}
        return {
            meta["url"]: PageState(**{k: v for k, v in meta.items() if k in names})
            for meta in self._metadatas({"record": "page"})
        }

    def save_pages(self, pages: Iterable[PageState]) -> None:
        items = list(pages)
        if items:
            self._upsert(
                [f"page:{p.url}" for p in items],
                [{"record": "page"} | _clean(asdict(p)) for p in items],
            )

    # -- the latest rebuild or refresh -----------------------------------------------

    def save_report(self, report: LibraryReport) -> None:
        lines = report.lines[:REPORT_LINES]
        if len(report.lines) > REPORT_LINES:
            lines += (f"…and {len(report.lines) - REPORT_LINES} more lines",)
        self._upsert(
            ["report:latest"],
            [{"record": "report", "what": report.what, "at": report.at, "text": "\n".join(lines)}],
        )

    def last_report(self) -> LibraryReport | None:
        found = self._records.get(ids=["report:latest"], include=["metadatas"])
        if not found["ids"]:
            return None
        meta = found["metadatas"][0]
        return LibraryReport(meta["what"], meta["at"], tuple(meta["text"].split("\n")))

    # -- uploads ----------------------------------------------------------------------

    def put_upload(self, data: bytes) -> str:
        """Keeps `data` (once per content) and returns its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        uploads = _collection(self.client, UPLOADS_COLLECTION)
        if uploads.get(ids=[f"{digest}:0"], include=[])["ids"]:
            return digest
        parts = [data[i : i + UPLOAD_PART] for i in range(0, len(data), UPLOAD_PART)] or [b""]
        # The last part first: a kill halfway leaves no part 0, so the upload is stored again.
        for number in reversed(range(len(parts))):
            uploads.upsert(
                ids=[f"{digest}:{number}"],
                embeddings=[_DUMMY],
                documents=[base64.b64encode(parts[number]).decode("ascii")],
                metadatas=[{"sha256": digest, "part": number, "parts": len(parts)}],
            )
        return digest

    def get_upload(self, digest: str) -> bytes | None:
        """The bytes of an upload, or None when they are not (or no longer) stored."""
        uploads = _collection(self.client, UPLOADS_COLLECTION)
        first = uploads.get(ids=[f"{digest}:0"], include=["metadatas"])
        if not first["ids"]:
            return None
        count = int(first["metadatas"][0]["parts"])
        ids = [f"{digest}:{n}" for n in range(count)]
        page = uploads.get(ids=ids, include=["documents"])
        if len(page["ids"]) != count:
            return None
        by_id = dict(zip(page["ids"], page["documents"], strict=True))
        data = b"".join(base64.b64decode(by_id[i]) for i in ids)
        return data if hashlib.sha256(data).hexdigest() == digest else None

    # -- plumbing ---------------------------------------------------------------------

    def _metadatas(self, where: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._records.get(where=where, include=["metadatas"], limit=PAGE, offset=offset)
            if not page["ids"]:
                return out
            out += page["metadatas"]
            offset += len(page["ids"])

    def _upsert(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        self._records.upsert(
            ids=ids,
            embeddings=[_DUMMY] * len(ids),
            documents=[json.dumps(m, sort_keys=True) for m in metadatas],
            metadatas=metadatas,
        )


def _collection(client: Any, name: str) -> Any:
    return client.get_or_create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "l2"}}
    )


def _clean(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata values cannot be None."""
    return {k: ("" if v is None else v) for k, v in metadata.items()}
