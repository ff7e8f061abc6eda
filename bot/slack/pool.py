"""Where the Slack app's work runs after Slack has its 200: a bounded pool for questions.

bolt runs every lazy listener on its `listener_executor`; this is that executor. A question
is admitted by a listener matcher (`admit`), in the request thread, before it is
acknowledged: then its lazy listener, which bolt submits next from the same thread, runs
on one of `workers` threads, behind at most `waiting` other admitted questions. A question
that finds no room is acknowledged all the same and answered "busy" (the next listener
for it); that reply, and every other lazy listener (votes, the Home tab, adding sources),
runs on the chores threads, so it never waits behind the questions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from bot.slack.metrics import QUEUE_DEPTH, QUEUE_REJECTIONS

# Threads for the lazy listeners that are not questions.
CHORE_WORKERS = 2


class AnswerPool(Executor):
    """`workers` threads answering admitted questions, `waiting` more admitted in a queue."""

    def __init__(self, workers: int, waiting: int) -> None:
        self.capacity = workers + waiting
        self._room = threading.BoundedSemaphore(self.capacity)
        # The admission taken by a matcher, for the submit bolt makes next in that thread.
        self._admitted = threading.local()
        self._answers = ThreadPoolExecutor(workers, thread_name_prefix="citebot-answer")
        self._chores = ThreadPoolExecutor(CHORE_WORKERS, thread_name_prefix="citebot-chore")

    def admit(self) -> bool:
        """A listener matcher: True (and a place taken) when there is room for a question."""
        if not self._room.acquire(blocking=False):
            QUEUE_REJECTIONS.inc()
            return False
        if getattr(self._admitted, "held", False):  # admitted, then never submitted
            self._room.release()
        else:
            QUEUE_DEPTH.inc()
        self._admitted.held = True
        return True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if not getattr(self._admitted, "held", False):
            return self._chores.submit(fn, *args, **kwargs)
        self._admitted.held = False

        def answer() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                QUEUE_DEPTH.dec()
                self._room.release()

        return self._answers.submit(answer)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._answers.shutdown(wait, cancel_futures=cancel_futures)
        self._chores.shutdown(wait, cancel_futures=cancel_futures)
