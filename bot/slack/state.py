"""What the Slack app remembers across restarts, in one small SQLite file in the state directory.

Deliveries it has claimed and answered (so a re-delivered event is answered once, also when
the process died before answering it), questions acknowledged and not yet answered (so
that a restart answers them: Slack does not re-deliver an acknowledged event), threads it
answered in with their questions and cited articles (so follow-ups need no mention and
keep their context), answers behind buttons (the newest `answers_kept`), 👍 / 👎
feedback, and the admins' latest reports.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.answering.answers import Answer, Citation, ModelReport, PassageHit
from bot.answering.context import THREAD_TURNS_KEPT

# Slack re-delivers for minutes, not days; older delivery keys are dropped.
DELIVERY_MEMORY_SECONDS = 24 * 3600
# A claim not finished after this long belongs to a process that hung: the next delivery
# takes it over. An answer takes seconds; with an LLM, at most its timeout and retries.
CLAIM_LEASE_SECONDS = 10 * 60
# Old delivery keys are dropped every this many claims (and at start-up).
PRUNE_EVERY = 1000
SCHEMA = """
DROP TABLE IF EXISTS deliveries;
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, pid INTEGER NOT NULL,
    claimed REAL NOT NULL, done INTEGER NOT NULL DEFAULT 0, event TEXT
);
CREATE TABLE IF NOT EXISTS threads (
    channel TEXT NOT NULL, thread_ts TEXT NOT NULL, PRIMARY KEY (channel, thread_ts)
);
CREATE TABLE IF NOT EXISTS turns (
    channel TEXT NOT NULL, thread_ts TEXT NOT NULL, question TEXT NOT NULL,
    article_ids TEXT NOT NULL, time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_thread ON turns (channel, thread_ts, time);
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_age ON answers (created);
CREATE TABLE IF NOT EXISTS reports (kind TEXT PRIMARY KEY, text TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    user TEXT NOT NULL, answer_id TEXT NOT NULL, question TEXT NOT NULL,
    answer_json TEXT NOT NULL, vote TEXT NOT NULL, time REAL NOT NULL,
    team TEXT NOT NULL DEFAULT '', PRIMARY KEY (user, answer_id)
);
"""
# State files from before votes were kept per workspace lack feedback's `team` column.
ADD_FEEDBACK_TEAM = "ALTER TABLE feedback ADD COLUMN team TEXT NOT NULL DEFAULT ''"


@dataclass(frozen=True)
class Feedback:
    user: str
    question: str
    answer_json: str
    vote: str
    time: float


@dataclass(frozen=True)
class Turn:
    """An earlier question in a thread and the articles its answer cited."""

    question: str
    article_ids: tuple[str, ...]


@dataclass(frozen=True)
class Unfinished:
    """A delivery acknowledged by a process that died before it was done: the request's
    body as Slack sent it, and when it was claimed."""

    key: str
    body: dict[str, Any]
    claimed: float


@dataclass(frozen=True)
class Report:
    text: str
    time: float


class SlackState:
    """The state file `state_dir/slack.sqlite3`; safe to use from several threads.

    `answers_kept` bounds the answers stored for their buttons (the oldest go first; a
    click on one says it is gone). Votes keep their own copy of question and answer.
    """

    def __init__(self, state_dir: Path, answers_kept: int = 10_000) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "slack.sqlite3"
        self.answers_kept = answers_kept
        # Who holds a claim: this object, in this process. A restarted process (even one
        # given the same pid, as in a container) is another owner.
        self._owner = uuid.uuid4().hex
        self._claims = 0
        self._local = threading.local()
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            # A state file of an earlier version gains the columns added since.
            _add_column(db, "claims", "event", "ALTER TABLE claims ADD COLUMN event TEXT")
            _add_column(db, "feedback", "team", ADD_FEEDBACK_TEAM)
        self._prune_claims()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A transaction on this thread's connection (no connection is shared between threads).

        Each thread keeps its connection open: closing the last one makes SQLite checkpoint
        and fsync, which cost about 90 ms a write on our hosts, on the acknowledgement's path
        (a claim) and serialized under the write lock. In WAL mode, synchronous=NORMAL keeps
        every commit across a crash of the process; only a crash of the host may lose the
        last ones (then a re-delivered event may be answered again).
        """
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        with db:
            yield db

    def claim(self, key: str) -> bool:
        """Claims the delivery `key` for this process: True when it is to be handled here.

        False when it was handled already, or is being handled by a live process. A claim
        whose process died (or that is older than CLAIM_LEASE_SECONDS) is taken over, so
        Slack's retry after a crash is answered, once.
        """
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT owner, pid, claimed, done FROM claims WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                owner, pid, claimed, done = row
                if done or owner == self._owner:
                    return False
                if claimed > now - CLAIM_LEASE_SECONDS and _alive(pid):
                    return False
            db.execute(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, 0, NULL)",
                (key, self._owner, os.getpid(), now),
            )
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:
            self._prune_claims()
        return True

    def keep(self, key: str, body: dict[str, Any]) -> None:
        """Keeps the request of a delivery claimed here until it is finished: a process
        started after this one died answers it (`unfinished`)."""
        with self._db() as db:
            db.execute(
                "UPDATE claims SET event = ? WHERE key = ? AND owner = ? AND done = 0",
                (json.dumps(body, ensure_ascii=False), key, self._owner),
            )

    def finish(self, key: str) -> None:
        """Marks a claimed delivery as handled: later deliveries of it are dropped."""
        with self._db() as db:
            db.execute("UPDATE claims SET done = 1, event = NULL WHERE key = ?", (key,))

    def unfinished(self) -> list[Unfinished]:
        """Kept deliveries whose process died (or hung past CLAIM_LEASE_SECONDS) before
        finishing them, oldest first."""
        now = time.time()
        with self._db() as db:
            rows = db.execute(
                "SELECT key, owner, pid, claimed, event FROM claims "
                "WHERE done = 0 AND event IS NOT NULL ORDER BY claimed"
            ).fetchall()
        return [
            Unfinished(key, json.loads(event), claimed)
            for key, owner, pid, claimed, event in rows
            if owner != self._owner and (claimed <= now - CLAIM_LEASE_SECONDS or not _alive(pid))
        ]

    def _prune_claims(self) -> None:
        with self._db() as db:
            db.execute(
                "DELETE FROM claims WHERE claimed < ?", (time.time() - DELIVERY_MEMORY_SECONDS,)
            )

    def remember_thread(
        self,
        channel: str,
        thread_ts: str,
        question: str | None = None,
        article_ids: tuple[str, ...] = (),
    ) -> None:
        """Remembers that I answered in the thread, and the question and cited articles."""
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO threads VALUES (?, ?)", (channel, thread_ts))
            if question is not None:
                db.execute(
                    "INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                    (channel, thread_ts, question, json.dumps(list(article_ids)), time.time()),
                )

    def thread_turns(self, channel: str, thread_ts: str) -> list[Turn]:
        """The thread's latest THREAD_TURNS_KEPT questions I answered, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT question, article_ids FROM turns WHERE channel = ? AND thread_ts = ? "
                "ORDER BY time DESC LIMIT ?",
                (channel, thread_ts, THREAD_TURNS_KEPT),
            ).fetchall()
        return [Turn(question, tuple(json.loads(ids))) for question, ids in reversed(rows)]

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
            db.execute(
                "DELETE FROM answers WHERE created < (SELECT created FROM answers "
                "ORDER BY created DESC LIMIT 1 OFFSET ?)",
                (self.answers_kept - 1,),
            )
        return answer_id

    def answer_count(self) -> int:
        with self._db() as db:
            return db.execute("SELECT count(*) FROM answers").fetchone()[0]

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
            hint=fields.get("hint"),
        )

    def record_feedback(self, user: str, answer_id: str, vote: str, team: str = "") -> bool:
        """Records `user`'s vote ("up" or "down") on an answer, in workspace `team` ("": the
        only one); a later vote replaces theirs.

        False when the answer is unknown.
        """
        answer = self.load_answer(answer_id)
        if answer is None:
            return False
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO feedback "
                "(user, answer_id, question, answer_json, vote, time, team) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    user,
                    answer_id,
                    answer.question,
                    json.dumps(answer.to_json(), ensure_ascii=False),
                    vote,
                    time.time(),
                    team,
                ),
            )
        return True

    def feedback(self, vote: str | None = None, limit: int = -1, team: str = "") -> list[Feedback]:
        """Workspace `team`'s recorded votes (only `vote`s, when given), oldest first;
        `limit`: the latest."""
        where, args = ("AND vote = ?", (vote,)) if vote else ("", ())
        with self._db() as db:
            rows = db.execute(
                "SELECT user, question, answer_json, vote, time FROM feedback "
                f"WHERE team = ? {where} ORDER BY time DESC LIMIT ?",
                (team, *args, limit),
            ).fetchall()
        return [Feedback(*row) for row in reversed(rows)]

    def save_report(self, text: str, team: str = "") -> None:
        """Keeps the latest change admins made from Slack in workspace `team` ("": the only
        one), for its Home tab."""
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO reports VALUES (?, ?, ?)",
                (_report_key(team), text, time.time()),
            )

    def latest_report(self, team: str = "") -> Report | None:
        with self._db() as db:
            row = db.execute(
                "SELECT text, time FROM reports WHERE kind = ?", (_report_key(team),)
            ).fetchone()
        return Report(*row) if row else None


def _report_key(team: str) -> str:
    """A workspace's row of the reports table ("index" for the only one, as before)."""
    return f"index:{team}" if team else "index"


def _add_column(db: sqlite3.Connection, table: str, column: str, statement: str) -> None:
    if column in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
        return
    try:
        db.execute(statement)
    except sqlite3.OperationalError as err:  # another process added it first
        if "duplicate column" not in str(err):
            raise


def _alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (the state file is local to it). This
    process's own pid held by another owner is a predecessor that had the same pid."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process whose parent died too stays a zombie until init reaps it (some
    container inits never do): it is dead, though signal 0 still reaches it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
