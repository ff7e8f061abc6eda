"""What the Slack app remembers across restarts, in a small database every serving process
of a deployment shares: by default one SQLite file in the state directory; with
`slack.state_store`, a SQLite or PostgreSQL database SQLAlchemy reaches.

Deliveries it has claimed and answered (so a re-delivered event is answered once, by one
process, also when the process died before answering it), questions acknowledged and not
yet answered (so that another process answers them: Slack does not re-deliver an
acknowledged event), threads it answered in with their questions and cited articles (so
follow-ups need no mention and keep their context, whichever process Slack's request
reaches), answers behind buttons (the newest `answers_kept`), 👍 / 👎 feedback, the admins'
latest reports, and which processes are alive (each writes a heartbeat while it holds
claims, so a process on another host can take over a dead one's deliveries).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.answering.answers import Answer, Citation, ModelReport, PassageHit
from bot.answering.context import THREAD_TURNS_KEPT
from bot.slack.state_tables import answers as _answers
from bot.slack.state_tables import claims as _claims
from bot.slack.state_tables import feedback as _feedback
from bot.slack.state_tables import insert_row, open_state_store
from bot.slack.state_tables import processes as _processes
from bot.slack.state_tables import reports as _reports
from bot.slack.state_tables import threads as _threads
from bot.slack.state_tables import turns as _turns

log = logging.getLogger("citebot.slack")

# Slack re-delivers for minutes, not days; older delivery keys are dropped.
DELIVERY_MEMORY_SECONDS = 24 * 3600
# A claim not finished after this long belongs to a process that hung: the next delivery
# takes it over. An answer takes seconds; with an LLM, at most its timeout and retries.
CLAIM_LEASE_SECONDS = 10 * 60
# A process holding claims writes a heartbeat this often; one on another host whose last
# heartbeat is older than PROCESS_LEASE_SECONDS is dead, and its claims are taken over
# (on its own host, a process is dead as soon as its pid is). Slack retries a delivery
# after about a minute, then after five: the lease is shorter. The hosts' clocks must
# agree to within a few seconds (NTP).
HEARTBEAT_SECONDS = 10
PROCESS_LEASE_SECONDS = 45
# Old delivery keys are dropped every this many claims (and at start-up).
PRUNE_EVERY = 1000


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
    """The state at `url` (a SQLAlchemy URL; empty: the file `state_dir/slack.sqlite3`),
    its tables created if missing; safe to use from several threads and processes.

    `answers_kept` bounds the answers stored for their buttons (the oldest go first; a
    click on one says it is gone). Votes keep their own copy of question and answer.
    Raises SettingsError naming `slack.state_store` when the database can't be used.
    """

    def __init__(self, state_dir: Path, answers_kept: int = 10_000, url: str = "") -> None:
        self.answers_kept = answers_kept
        # Who holds a claim: this object, in this process. A restarted process (even one
        # given the same pid, as in a container) is another owner.
        self._owner = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._claims = 0
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_lock = threading.Lock()
        if not url:
            state_dir.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{state_dir / 'slack.sqlite3'}"
        self.engine = open_state_store(url)
        self._prune_claims()

    @contextmanager
    def _db(self) -> Iterator[sa.Connection]:
        """One transaction. A transaction that writes starts with its write, so that on
        SQLite it holds the write lock before it reads (a read first could see a state
        another writer is changing, and fail to upgrade)."""
        with self.engine.begin() as db:
            yield db

    def claim(self, key: str) -> bool:
        """Claims the delivery `key` for this process: True when it is to be handled here.

        False when it was handled already, or is being handled by a live process (on this
        host, one whose pid runs; on another, one whose heartbeat is recent). A claim
        whose process died (or that is older than CLAIM_LEASE_SECONDS) is taken over, by
        one process, so Slack's retry after a crash is answered, once.
        """
        self._start_heartbeat()
        now = time.time()
        row = {"key": key, "owner": self._owner, "pid": os.getpid(), "claimed": now, "done": 0}
        with self._db() as db:
            if insert_row(db, _claims, row):
                taken = True
            else:
                held = db.execute(
                    _with_heartbeat(_claims.c.done).where(_claims.c.key == key)
                ).one_or_none()
                if held is None or held.done or held.owner == self._owner:
                    return False
                if held.claimed > now - CLAIM_LEASE_SECONDS and self._alive(held, now):
                    return False
                # Taken over only if no other process took it over first.
                taken = 1 == db.execute(
                    sa.update(_claims)
                    .where(_claims.c.key == key, _claims.c.owner == held.owner,
                           _claims.c.claimed == held.claimed, _claims.c.done == 0)
                    .values(owner=self._owner, pid=os.getpid(), claimed=now, event=None)
                ).rowcount  # fmt: skip
        if taken:
            self._claims += 1
            if self._claims % PRUNE_EVERY == 0:
                self._prune_claims()
        return taken

    def keep(self, key: str, body: dict[str, Any]) -> None:
        """Keeps the request of a delivery claimed here until it is finished: another
        process answers it if this one dies first (`unfinished`)."""
        with self._db() as db:
            db.execute(
                sa.update(_claims)
                .where(_claims.c.key == key, _claims.c.owner == self._owner, _claims.c.done == 0)
                .values(event=json.dumps(body, ensure_ascii=False))
            )

    def finish(self, key: str) -> None:
        """Marks a claimed delivery as handled: later deliveries of it are dropped."""
        with self._db() as db:
            db.execute(sa.update(_claims).where(_claims.c.key == key).values(done=1, event=None))

    def unfinished(self) -> list[Unfinished]:
        """Kept deliveries whose process died (or hung past CLAIM_LEASE_SECONDS) before
        finishing them, oldest first. One query: each claim with its owner's heartbeat."""
        now = time.time()
        with self._db() as db:
            rows = db.execute(
                _with_heartbeat(_claims.c.key, _claims.c.event)
                .where(_claims.c.done == 0, _claims.c.event.is_not(None),
                       _claims.c.owner != self._owner)
                .order_by(_claims.c.claimed)
            ).all()  # fmt: skip
        return [
            Unfinished(row.key, json.loads(row.event), row.claimed)
            for row in rows
            if row.claimed <= now - CLAIM_LEASE_SECONDS or not self._alive(row, now)
        ]

    def _alive(self, claim: Any, now: float) -> bool:
        """Whether the process holding `claim` (a row with its owner's host and last
        heartbeat) is alive: on this host, whether its pid runs; on another, whether its
        heartbeat is recent."""
        if claim.host is None or claim.host == self._host:  # (none: an older version's claim)
            return _alive(claim.pid)
        return claim.seen > now - PROCESS_LEASE_SECONDS

    def _start_heartbeat(self) -> None:
        """Writes this process's heartbeat now, and every HEARTBEAT_SECONDS from a thread
        that ends when this object is gone."""
        if self._heartbeat is not None:
            return
        with self._heartbeat_lock:
            if self._heartbeat is None:
                self.beat()
                self._heartbeat = threading.Thread(
                    target=_beat_while_alive, args=(weakref.ref(self),),
                    name="citebot-heartbeat", daemon=True,
                )  # fmt: skip
                self._heartbeat.start()

    def beat(self) -> None:
        """Records that this process is alive, now."""
        row = {"owner": self._owner, "host": self._host, "pid": os.getpid(), "seen": time.time()}
        with self._db() as db:
            insert_row(db, _processes, row, update=("seen",))

    def _prune_claims(self) -> None:
        now = time.time()
        with self._db() as db:
            db.execute(sa.delete(_claims).where(_claims.c.claimed < now - DELIVERY_MEMORY_SECONDS))
            db.execute(
                sa.delete(_processes).where(_processes.c.seen < now - DELIVERY_MEMORY_SECONDS)
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
            insert_row(db, _threads, {"channel": channel, "thread_ts": thread_ts})
            if question is not None:
                db.execute(
                    sa.insert(_turns).values(
                        channel=channel, thread_ts=thread_ts, question=question,
                        article_ids=json.dumps(list(article_ids)), time=time.time(),
                    )
                )  # fmt: skip

    def thread_turns(self, channel: str, thread_ts: str) -> list[Turn]:
        """The thread's latest THREAD_TURNS_KEPT questions I answered, oldest first."""
        with self._db() as db:
            rows = db.execute(
                sa.select(_turns.c.question, _turns.c.article_ids)
                .where(_turns.c.channel == channel, _turns.c.thread_ts == thread_ts)
                .order_by(_turns.c.time.desc())
                .limit(THREAD_TURNS_KEPT)
            ).all()
        return [Turn(question, tuple(json.loads(ids))) for question, ids in reversed(rows)]

    def answered_in_thread(self, channel: str, thread_ts: str) -> bool:
        with self._db() as db:
            row = db.execute(
                sa.select(1).where(_threads.c.channel == channel, _threads.c.thread_ts == thread_ts)
            ).first()
        return row is not None

    def save_answer(self, answer: Answer) -> str:
        """Stores `answer` for its buttons; returns the id they carry."""
        answer_id = secrets.token_hex(8)
        with self._db() as db:
            db.execute(
                sa.insert(_answers).values(
                    id=answer_id, question=answer.question,
                    answer=json.dumps(asdict(answer)), created=time.time(),
                )
            )  # fmt: skip
            oldest_kept = db.execute(
                sa.select(_answers.c.created)
                .order_by(_answers.c.created.desc())
                .limit(1)
                .offset(self.answers_kept - 1)
            ).scalar()
            if oldest_kept is not None:
                db.execute(sa.delete(_answers).where(_answers.c.created < oldest_kept))
        return answer_id

    def answer_count(self) -> int:
        with self._db() as db:
            return db.execute(sa.select(sa.func.count()).select_from(_answers)).scalar_one()

    def load_answer(self, answer_id: str) -> Answer | None:
        with self._db() as db:
            row = db.execute(sa.select(_answers.c.answer).where(_answers.c.id == answer_id)).first()
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
        row = {
            "user": user,
            "answer_id": answer_id,
            "question": answer.question,
            "answer_json": json.dumps(answer.to_json(), ensure_ascii=False),
            "vote": vote,
            "time": time.time(),
            "team": team,
        }
        with self._db() as db:
            updated = ("question", "answer_json", "vote", "time", "team")
            insert_row(db, _feedback, row, update=updated)
        return True

    def feedback(self, vote: str | None = None, limit: int = -1, team: str = "") -> list[Feedback]:
        """Workspace `team`'s recorded votes (only `vote`s, when given), oldest first;
        `limit`: the latest."""
        query = sa.select(
            _feedback.c.user, _feedback.c.question, _feedback.c.answer_json,
            _feedback.c.vote, _feedback.c.time,
        ).where(_feedback.c.team == team)  # fmt: skip
        if vote:
            query = query.where(_feedback.c.vote == vote)
        query = query.order_by(_feedback.c.time.desc()).limit(limit if limit >= 0 else None)
        with self._db() as db:
            rows = db.execute(query).all()
        return [Feedback(*row) for row in reversed(rows)]

    def save_report(self, text: str, team: str = "") -> None:
        """Keeps the latest change admins made from Slack in workspace `team` ("": the only
        one), for its Home tab."""
        row = {"kind": _report_key(team), "text": text, "time": time.time()}
        with self._db() as db:
            insert_row(db, _reports, row, update=("text", "time"))

    def latest_report(self, team: str = "") -> Report | None:
        with self._db() as db:
            row = db.execute(
                sa.select(_reports.c.text, _reports.c.time).where(
                    _reports.c.kind == _report_key(team)
                )
            ).first()
        return Report(*row) if row else None


def _with_heartbeat(*columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """A query of claims: `columns` with each claim's owner, pid and time, and its owner's
    host and last heartbeat (None for a claim of a version that wrote no heartbeats)."""
    return sa.select(
        *columns, _claims.c.owner, _claims.c.pid, _claims.c.claimed,
        _processes.c.host, _processes.c.seen,
    ).select_from(
        _claims.outerjoin(_processes, _processes.c.owner == _claims.c.owner)
    )  # fmt: skip


def _beat_while_alive(state: weakref.ref[SlackState]) -> None:
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        alive = state()
        if alive is None:
            return
        try:
            alive.beat()
        except sa.exc.SQLAlchemyError as err:  # the database is down for a moment
            log.warning("could not write the heartbeat: %s", " ".join(str(err).split())[:200])
        del alive


def _report_key(team: str) -> str:
    """A workspace's row of the reports table ("index" for the only one, as before)."""
    return f"index:{team}" if team else "index"


def _alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host. This process's own pid held by another
    owner is a predecessor that had the same pid."""
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
