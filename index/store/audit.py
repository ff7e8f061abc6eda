"""The audit log: every change an admin or an operator made to the source library (who,
when, what, and how it went), kept in the store beside the library so that every process
sharing it writes to one log, listed by `citebot audit`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from index.report import IndexReport, redacted

AUDIT_COLLECTION = "citebot-audit"
PAGE = 1000
# Characters of a failed change's error kept in its entry.
REASON_CHARS = 300
_DUMMY = [0.0]  # Chroma records need an embedding; the log's are never searched

log = logging.getLogger(__name__)
Done = TypeVar("Done")


@dataclass(frozen=True)
class AuditEntry:
    """One change: when (UTC, ISO 8601), who (a Slack user id, or the local user of a
    command), the action (add, upload, remove, rebuild, share), what it was given, and its
    outcome (the report's summary, or "failed: " and why)."""

    at: str
    who: str
    action: str
    what: tuple[str, ...]
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"what": list(self.what)}


class AuditLog:
    """The entries, in the store's `citebot-audit` collection."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def _records(self) -> Any:
        return self.client.get_or_create_collection(
            AUDIT_COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "l2"}}
        )

    def recorded(
        self,
        action: str,
        who: str,
        what: Sequence[str],
        change: Callable[[], Done],
        outcome: Callable[[Done], str] = IndexReport.summary,
    ) -> Done:
        """Runs `change` and records it, failed or not (a failure is raised again); a
        change that returns no IndexReport says what `outcome` makes of its result."""
        try:
            report = change()
        except Exception as err:
            reason = " ".join(str(err).split())[:REASON_CHARS] or type(err).__name__
            # The change's own error is what the admin is told; a log that can't be
            # written either (a full disk) is only worth a debug line beside it.
            self._record_quietly(action, who, what, f"failed: {reason}", logging.DEBUG)
            raise
        self._record_quietly(action, who, what, outcome(report), logging.ERROR)
        return report

    def record(self, entry: AuditEntry) -> None:
        key = f"audit:{entry.at}:{uuid.uuid4().hex[:12]}"
        metadata = entry.to_json() | {"what": json.dumps(list(entry.what), ensure_ascii=False)}
        document = json.dumps(entry.to_json(), ensure_ascii=False)
        self._records.add(
            ids=[key], embeddings=[_DUMMY], documents=[document], metadatas=[metadata]
        )

    def entries(self, limit: int = 0) -> list[AuditEntry]:
        """Every entry, oldest first; `limit` > 0: only the latest that many."""
        from chromadb.errors import NotFoundError

        try:  # reading creates nothing: a store nobody changed has no log yet
            records = self.client.get_collection(AUDIT_COLLECTION)
        except NotFoundError:
            return []
        found: list[tuple[str, dict[str, Any]]] = []
        offset = 0
        while True:
            page = records.get(include=["metadatas"], limit=PAGE, offset=offset)
            if not page["ids"]:
                break
            found += zip(page["ids"], page["metadatas"], strict=True)
            offset += len(page["ids"])
        found.sort(key=lambda item: (item[1]["at"], item[0]))
        if limit > 0:
            found = found[-limit:]
        return [
            AuditEntry(m["at"], m["who"], m["action"], tuple(json.loads(m["what"])), m["outcome"])
            for _, m in found
        ]

    def _record_quietly(
        self, action: str, who: str, what: Sequence[str], outcome: str, level: int
    ) -> None:
        """Records, or logs why it could not: the change is done (or failed) either way,
        and failing it now would make the admin repeat what already happened."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        entry = AuditEntry(at, who, action, tuple(redacted(w) for w in what), redacted(outcome))
        try:
            self.record(entry)
        except Exception as err:  # noqa: BLE001 - Chroma raises many kinds; logged with the entry
            log.log(level, "the audit log could not record %s: %s", entry, err)
