"""The database behind the Slack state (bot/slack/state.py): its tables, opening it (the
tables created, or brought up to date in a state file of an earlier version), and the
one statement whose form differs between SQLite and PostgreSQL, insert-or-update.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bot.slack import messages
from index.errors import SettingsError

# The databases whose "insert, or on a duplicate key do this" citebot writes (both
# tested: tests/test_slack_state.py).
DIALECTS = {"sqlite": sqlite, "postgresql": postgresql}

metadata = sa.MetaData()
claims = sa.Table(
    "claims", metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("claimed", sa.Float, nullable=False),
    sa.Column("done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("event", sa.Text),
)  # fmt: skip
processes = sa.Table(
    "processes", metadata,
    sa.Column("owner", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("seen", sa.Float, nullable=False),
)  # fmt: skip
threads = sa.Table(
    "threads", metadata,
    sa.Column("channel", sa.String(64), primary_key=True),
    sa.Column("thread_ts", sa.String(64), primary_key=True),
)  # fmt: skip
turns = sa.Table(
    "turns", metadata,
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("thread_ts", sa.String(64), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("article_ids", sa.Text, nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Index("turns_by_thread", "channel", "thread_ts", "time"),
)  # fmt: skip
answers = sa.Table(
    "answers", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Index("answers_by_age", "created"),
)  # fmt: skip
reports = sa.Table(
    "reports", metadata,
    sa.Column("kind", sa.String(255), primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("time", sa.Float, nullable=False),
)  # fmt: skip
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("user", sa.String(64), primary_key=True),
    sa.Column("answer_id", sa.String(32), primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer_json", sa.Text, nullable=False),
    sa.Column("vote", sa.String(8), nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("team", sa.String(64), nullable=False, server_default=""),
)  # fmt: skip
# How often the tables' creation is tried when processes started together race to it
# (PostgreSQL; SQLite creates them one process at a time).
CREATE_TRIES = 10
# Columns added since the first state files, with the statement that adds each.
_ADDED_COLUMNS = {
    ("claims", "event"): "ALTER TABLE claims ADD COLUMN event TEXT",
    # Votes kept per workspace.
    ("feedback", "team"): "ALTER TABLE feedback ADD COLUMN team TEXT NOT NULL DEFAULT ''",
}


def open_state_store(url: str) -> sa.Engine:
    """An engine for the state at `url`, its tables created (or brought up to date).
    Raises SettingsError naming the setting when the URL is malformed, its driver is
    not installed, its database is not one citebot writes for, or it can't be reached."""
    try:
        engine = sa.create_engine(url, **_engine_options(sa.make_url(url)))
        if engine.dialect.name not in DIALECTS:
            raise SettingsError(
                messages.BAD_STATE_STORE.format(reason=f"{engine.dialect.name} is not supported")
            )
        _create_tables(engine)
    except (sa.exc.SQLAlchemyError, ImportError, OSError) as err:
        reason = " ".join(str(err).split())[:200]
        raise SettingsError(messages.BAD_STATE_STORE.format(reason=reason)) from None
    return engine


def _engine_options(url: sa.URL) -> dict[str, Any]:
    if url.get_backend_name() != "sqlite":
        # A database server may drop idle connections: each is tested before use.
        return {"pool_pre_ping": True}
    if url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # Connections stay open (closing the last one makes SQLite checkpoint and fsync, about
    # 90 ms a write on our hosts, on the acknowledgement's path); a burst beyond them opens
    # more, closed after it.
    return {"connect_args": {"timeout": 30}, "pool_size": 8, "max_overflow": -1}


def _create_tables(engine: sa.Engine) -> None:
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connected)
    for attempt in range(CREATE_TRIES):
        try:
            with engine.begin() as db:
                for table in metadata.sorted_tables:
                    db.execute(sa.schema.CreateTable(table, if_not_exists=True))
                    for index in table.indexes:
                        db.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            break
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as err:
            # PostgreSQL: "IF NOT EXISTS" is no lock, and of two processes creating a
            # table at the same moment one fails on the catalogue's unique keys. SQLite:
            # a new file's switch to WAL, made as each process first connects, may find
            # it locked without waiting. The next try finds the tables there.
            retried = isinstance(err, sa.exc.IntegrityError) or "locked" in str(err)
            if not retried or attempt == CREATE_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    with engine.begin() as db:
        if engine.dialect.name == "sqlite":
            db.exec_driver_sql("DROP TABLE IF EXISTS deliveries")  # citebot 0.1's
        for (table, column), statement in _ADDED_COLUMNS.items():
            if column not in {c["name"] for c in sa.inspect(db).get_columns(table)}:
                try:
                    with db.begin_nested():
                        db.exec_driver_sql(statement)
                except sa.exc.SQLAlchemyError:  # another process added it first
                    pass


def _sqlite_connected(connection: Any, _record: Any) -> None:
    # In WAL mode, synchronous=NORMAL keeps every commit across a crash of the process;
    # only a crash of the host may lose the last ones (then a re-delivered event may be
    # answered again).
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def insert_row(
    db: sa.Connection, table: sa.Table, row: dict[str, Any], update: Sequence[str] = ()
) -> bool:
    """Inserts `row`; on a duplicate key, updates the `update` columns, or (none) leaves
    the row there as it is. True when a row was inserted or updated."""
    statement = DIALECTS[db.dialect.name].insert(table).values(**row)
    if update:
        keys = [c.name for c in table.primary_key]
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={c: statement.excluded[c] for c in update}
        )
    else:
        statement = statement.on_conflict_do_nothing()
    # RETURNING, not the rowcount, which psycopg gives as 0 here, rows or not.
    return db.execute(statement.returning(*table.primary_key)).first() is not None
