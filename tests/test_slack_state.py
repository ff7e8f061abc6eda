"""The state store several serving processes share (bot/slack/state.py): one process
answers each delivery, a dead one's deliveries are taken over (on its host at once, from
another host once its heartbeat is stale), on SQLite and, where one is given, PostgreSQL.

Set CITEBOT_TEST_POSTGRES_URL (a database of its own: its tables are emptied) to run the
store's tests against PostgreSQL too; docs/DEPLOYMENT.md says how they were run.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bot.answering.answers import Answer, Citation
from bot.cli import main
from bot.slack import state as slack_state
from bot.slack import state_tables
from bot.slack.state import PROCESS_LEASE_SECONDS, SlackState
from index.errors import SettingsError

POSTGRES = os.environ.get("CITEBOT_TEST_POSTGRES_URL", "")
BODY = {"event_id": "Ev1", "event": {"type": "app_mention", "text": "who denied it?"}}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES, reason="CITEBOT_TEST_POSTGRES_URL is unset"),
        ),
    ]
)
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    engine = sa.create_engine(POSTGRES)
    state_tables.metadata.drop_all(engine)
    engine.dispose()
    yield POSTGRES


def on_another_host(url: str, tmp_path, host: str = "another-host") -> SlackState:
    """A process's state on another host. (Two states in one process on one host are a
    process and its predecessor, which had the same pid: the older one's claims are dead.)"""
    state = SlackState(tmp_path / host, url=url)
    state._host = host
    return state


def age_heartbeats(state: SlackState, seconds: float) -> None:
    with state.engine.begin() as db:
        db.execute(
            sa.update(state_tables.processes)
            .where(state_tables.processes.c.owner == state._owner)
            .values(seen=time.time() - seconds)
        )


def test_a_claim_on_another_host_is_taken_over_once_its_heartbeat_is_stale(store_url, tmp_path):
    there = on_another_host(store_url, tmp_path)
    here = SlackState(tmp_path / "here", url=store_url)
    assert there.claim("event:Ev1")
    there.keep("event:Ev1", BODY)
    # Alive: its heartbeat is recent (its pid, this test's own, would say dead here).
    assert not here.claim("event:Ev1")
    assert here.unfinished() == []
    age_heartbeats(there, PROCESS_LEASE_SECONDS + 1)
    [lost] = here.unfinished()
    assert (lost.key, lost.body) == ("event:Ev1", BODY)
    assert here.claim("event:Ev1")
    assert not on_another_host(store_url, tmp_path, "third-host").claim("event:Ev1")
    here.finish("event:Ev1")
    assert here.unfinished() == [] and not there.claim("event:Ev1")


def test_unfinished_deliveries_of_many_processes_are_found_in_one_query(store_url, tmp_path):
    dead, alive = (on_another_host(store_url, tmp_path, h) for h in ("dead-host", "live-host"))
    for n in range(20):
        owner = dead if n % 2 else alive
        assert owner.claim(f"event:Ev{n}")
        owner.keep(f"event:Ev{n}", BODY | {"event_id": f"Ev{n}"})
    age_heartbeats(dead, PROCESS_LEASE_SECONDS + 1)
    here = SlackState(tmp_path / "here", url=store_url)
    statements: list[str] = []
    sa.event.listen(here.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    lost = here.unfinished()
    assert [u.key for u in lost] == [f"event:Ev{n}" for n in range(1, 20, 2)]  # oldest first
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_a_heartbeat_keeps_a_long_answer_claimed(store_url, tmp_path, monkeypatch):
    monkeypatch.setattr(slack_state, "HEARTBEAT_SECONDS", 0.05)
    there = on_another_host(store_url, tmp_path)
    assert there.claim("event:Ev1")
    age_heartbeats(there, PROCESS_LEASE_SECONDS + 1)
    time.sleep(0.5)  # the heartbeat thread writes a fresh one
    assert not on_another_host(store_url, tmp_path, "here").claim("event:Ev1")


def test_processes_racing_for_a_dead_claim_take_it_once(store_url, tmp_path):
    there = on_another_host(store_url, tmp_path)
    assert there.claim("event:Ev1")
    age_heartbeats(there, PROCESS_LEASE_SECONDS + 1)
    racers = [on_another_host(store_url, tmp_path, f"host-{i}") for i in range(8)]
    start = threading.Barrier(len(racers))
    won: list[bool] = []

    def race(state: SlackState) -> None:
        start.wait()
        won.append(state.claim("event:Ev1"))

    threads = [threading.Thread(target=race, args=(s,)) for s in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]


def test_threads_answers_votes_and_reports_are_shared(store_url, tmp_path):
    one = SlackState(tmp_path / "one", url=store_url, answers_kept=2)
    other = SlackState(tmp_path / "other", url=store_url, answers_kept=2)
    one.remember_thread("C1", "1.0", "who denied it?", ("a.txt",))
    quote = "Officials denied it."
    citation = Citation(quote, "T", "a.txt", None, None, 1.0, "a.txt", 0, len(quote))
    answer = Answer("who denied it?", True, [citation])
    answer_id = one.save_answer(answer)
    assert other.answered_in_thread("C1", "1.0")
    assert [t.article_ids for t in other.thread_turns("C1", "1.0")] == [("a.txt",)]
    assert other.load_answer(answer_id).citations[0].text == quote
    assert other.record_feedback("U1", answer_id, "up")
    assert one.record_feedback("U1", answer_id, "down")  # a later vote replaces theirs
    assert [f.vote for f in other.feedback()] == ["down"]
    one.save_report("added 3 articles")
    other.save_report("removed 1 article")
    assert one.latest_report().text == "removed 1 article"
    for _ in range(3):
        other.save_answer(answer)
    assert one.answer_count() == 2 and one.load_answer(answer_id) is None


@pytest.mark.parametrize(
    "url", ["not a url", "nosuchdb://host/db", "postgresql+nodriver://h/db", "oracle://h/db"]
)
def test_an_unusable_state_store_is_one_line_naming_the_setting(tmp_path, monkeypatch, url):
    with pytest.raises(SettingsError, match=r"^slack.state_store \(CITEBOT_STATE_STORE\)"):
        SlackState(tmp_path, url=url)
    for name, value in {
        "CITEBOT_STATE_STORE": url,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--host", "127.0.0.1"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: slack.state_store (CITEBOT_STATE_STORE)")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_processes_started_together_on_a_new_store_all_open_it(tmp_path):
    # Each creates the tables one at a time; one that found a table missing and then
    # created by another must try again, not stop `citebot serve` (seen in CI).
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    start = threading.Barrier(8)
    failures: list[Exception] = []

    def open_it() -> None:
        start.wait()
        try:
            state_tables.open_state_store(url).dispose()
        except SettingsError as err:
            failures.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
