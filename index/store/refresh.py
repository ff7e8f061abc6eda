"""Scheduled refreshes: every `sources.refresh_minutes`, one process of all those sharing
the store re-reads the library's feeds and URLs. Which one is decided by a lease in the
store (the collection `citebot-refresh`, like a build's `heartbeat_at`), so that several
bot processes on one Chroma server do not refresh at once or twice in one interval."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from index.errors import CitebotError
from index.store.builds import BUILD_LEASE, lease_time, now

REFRESH_COLLECTION = "citebot-refresh"
# The lease holder waits this long before it checks that its claim stood.
CLAIM_SETTLE = 0.5

log = logging.getLogger(__name__)


class RefreshLease:
    """The right to run the next refresh: held by one process until it is done, or until
    BUILD_LEASE has passed (its process was killed)."""

    def __init__(self, client: Any, holder: str | None = None) -> None:
        self.client = client
        self.holder = holder or uuid.uuid4().hex

    def _collection(self) -> Any:
        return self.client.get_or_create_collection(REFRESH_COLLECTION)

    def acquire(self, interval: timedelta) -> bool:
        """Claims the lease when nobody holds it and no refresh finished within
        `interval`; False when another process holds it or refreshed just now."""
        collection = self._collection()
        state = dict(collection.metadata or {})
        current = datetime.now(UTC)
        held = state.get("holder") and lease_time(state) > current - BUILD_LEASE
        done = _time(state.get("done_at"))
        if held or done > current - interval * 0.9:
            return False
        collection.modify(metadata=state | {"holder": self.holder, "heartbeat_at": now()})
        time.sleep(CLAIM_SETTLE)
        return (self._collection().metadata or {}).get("holder") == self.holder

    def release(self) -> None:
        collection = self._collection()
        state = dict(collection.metadata or {})
        if state.get("holder") == self.holder:
            collection.modify(metadata=state | {"holder": "", "done_at": now()})


class Refresher:
    """Refreshes `index` every `minutes` in a daemon thread, under the store's lease."""

    def __init__(
        self, index: Any, minutes: int, on_finished: Callable[[bool], None] | None = None
    ) -> None:
        self.index = index
        self.interval = timedelta(minutes=minutes)
        # Told whether each refresh this process ran (or tried to) succeeded: the metrics.
        self.on_finished = on_finished
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="citebot-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval.total_seconds()):
            self.run_once()

    def run_once(self) -> bool:
        """One refresh if this process wins the lease; whether it ran."""
        lease = RefreshLease(self.index.client)
        try:
            if not lease.acquire(self.interval):
                return False
            try:
                self.index.refresh()
            finally:
                lease.release()
            ran = True
        except CitebotError as exc:
            log.warning("refresh failed: %s", exc)
            ran = False
        except Exception:  # a failed refresh must not end the thread; the next one retries
            log.exception("refresh failed")
            ran = False
        if self.on_finished is not None:
            self.on_finished(ran)
        return ran


def _time(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
