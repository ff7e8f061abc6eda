"""What the Slack app remembers across restarts, in one small SQLite file in the state directory.

Deliveries it has seen (so a re-delivered event is answered once), threads it answered in
(so follow-ups need no mention), answers behind buttons, and 👍 / 👎 feedback.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.answers import Answer, Citation, ModelReport, PassageHit

# Slack re-delivers for minutes, not days; older delivery keys are dropped at start-up.
DELIVERY_MEMORY_SECONDS = 7 * 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS threads (
    channel TEXT NOT NULL, thread_ts TEXT NOT NULL, PRIMARY KEY (channel, thread_ts)
);
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    user TEXT NOT NULL, answer_id TEXT NOT NULL, question TEXT NOT NULL,
    answer_json TEXT NOT NULL, vote TEXT NOT NULL, time REAL NOT NULL,
    PRIMARY KEY (user, answer_id)
);
"""


@dataclass(frozen=True)
class Feedback:
    user: str
    question: str
    answer_json: str
    vote: str
    time: float


class SlackState:
    """The state file `state_dir/slack.sqlite3`; safe to use from several threads."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "slack.sqlite3"
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute(
                "DELETE FROM deliveries WHERE seen < ?", (time.time() - DELIVERY_MEMORY_SECONDS,)
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per operation: no connection is shared between threads.
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db

    def first_delivery(self, key: str) -> bool:
        """Records `key`; True the first time it is seen, False ever after."""
        with self._db() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO deliveries (key, seen) VALUES (?, ?)", (key, time.time())
            )
            return cursor.rowcount == 1

    def remember_thread(self, channel: str, thread_ts: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO threads VALUES (?, ?)", (channel, thread_ts))

    def answered_in_thread(self, channel: str, thread_ts: str) -> bool:
        with self._db() as db:
            row = db.execute(
                "SELECT 1 FROM threads WHERE channel = ? AND thread_ts = ?", (channel, thread_ts)
            ).fetchone()
        return row is not None

    def save_answer(self, answer: Answer) -> str:
        """Stores `answer` for its buttons; returns the id they carry."""
        answer_id = secrets.token_hex(8)
        with self._db() as db:
            db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?)",
                (answer_id, answer.question, json.dumps(asdict(answer)), time.time()),
            )
        return answer_id

    def load_answer(self, answer_id: str) -> Answer | None:
        with self._db() as db:
            row = db.execute("SELECT answer FROM answers WHERE id = ?", (answer_id,)).fetchone()
        if row is None:
            return None
        fields = json.loads(row[0])
        return Answer(
            question=fields["question"],
            answered=fields["answered"],
            citations=[Citation.from_json(c) for c in fields["citations"]],
            passages=[PassageHit(**p) for p in fields["passages"]],
            summary=fields.get("summary"),
            model=ModelReport(**fields["model"]) if fields.get("model") else None,
        )

    def record_feedback(self, user: str, answer_id: str, vote: str) -> bool:
        """Records `user`'s vote ("up" or "down") on an answer; a later vote replaces theirs.

        False when the answer is unknown.
        """
        answer = self.load_answer(answer_id)
        if answer is None:
            return False
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?, ?, ?)",
                (
                    user,
                    answer_id,
                    answer.question,
                    json.dumps(answer.to_json(), ensure_ascii=False),
                    vote,
                    time.time(),
                ),
            )
        return True

    def feedback(self) -> list[Feedback]:
        """All recorded votes, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT user, question, answer_json, vote, time FROM feedback ORDER BY time"
            ).fetchall()
        return [Feedback(*row) for row in rows]
