"""The backend while the index and the models load, so that `citebot serve` acknowledges
Slack from the moment its port accepts: acknowledgements need none of them, and what
does (an answer, an add, the Home tab) waits until they are loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bot.answering.context import QuestionContext
from bot.slack.backend import Asked, Backend, Overview
from index.errors import CitebotError
from index.report import IndexReport
from index.store.status import SourceStatus

log = logging.getLogger("citebot.slack")

# How long an answer waits for the loading before it apologizes (a first start loads in
# 5 to 10 s; a Chroma server that is not up yet takes as long as it takes).
ANSWER_WAIT_S = 120.0
# A load that failed (the Chroma server not up yet) is tried again after this, then double.
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 60.0


class StillLoading(CitebotError):
    """The index and the models are not loaded yet."""


class LoadingBackend:
    """A `Backend` that is its loaded backend once `load` has returned it.

    `start()` runs `load` on a thread of its own, again (after a pause that grows) until
    it succeeds; meanwhile `overview()` raises StillLoading (`/healthz` answers 503) and
    the other calls wait for it.
    """

    def __init__(self, load: Callable[[], Backend], answer_wait_s: float = ANSWER_WAIT_S) -> None:
        self._load = load
        self._answer_wait_s = answer_wait_s
        self._loaded = threading.Event()
        self._backend: Backend | None = None
        self.last_error = ""

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="citebot-loading", daemon=True)
        thread.start()
        return thread

    @property
    def ready(self) -> bool:
        return self._loaded.is_set()

    def loaded(self, timeout: float | None = None) -> Backend:
        """The loaded backend, waited for up to `timeout` seconds (the answers' wait)."""
        wait = self._answer_wait_s if timeout is None else timeout
        if not self._loaded.wait(wait) or self._backend is None:
            raise StillLoading("citebot is still loading its index and models")
        return self._backend

    def _run(self) -> None:
        pause = RETRY_FIRST_S
        started = time.monotonic()
        while True:
            try:
                self._backend = self._load()
            except Exception as err:  # noqa: BLE001 - any failure is retried; the cause is logged
                self.last_error = f"{type(err).__name__}: {str(err)[:200]}"
                log.error("loading the index failed, again in %.0f s: %s", pause, self.last_error)
                time.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                continue
            self.last_error = ""
            self._loaded.set()
            log.info("the index and the models are loaded (%.1f s)", time.monotonic() - started)
            return

    # --- the Backend: the loaded one's ---

    def overview(self) -> Overview:
        return self.loaded(timeout=0).overview()

    def ask(self, question: str, context: QuestionContext | None = None) -> Asked:
        return self.loaded().ask(question, context)

    def add_sources(self, urls: list[str], added_by: str, visible_in: str = "") -> IndexReport:
        return self.loaded().add_sources(urls, added_by, visible_in)

    def add_upload(
        self, name: str, data: bytes, uploaded_by: str, visible_in: str = ""
    ) -> IndexReport:
        return self.loaded().add_upload(name, data, uploaded_by, visible_in)

    def remove(self, items: list[str], removed_by: str) -> IndexReport:
        return self.loaded().remove(items, removed_by)

    def share(self, sources: list[str], shared_by: str) -> list[str]:
        return self.loaded().share(sources, shared_by)

    def private_sources(self) -> dict[str, str]:
        return self.loaded().private_sources()

    def sources(self) -> list[SourceStatus]:
        return self.loaded().sources()

    def warm_up(self) -> None:
        self.loaded()
