"""Several processes sharing one index through a real Chroma server (`chroma run`).

Each process keeps its own keyword index, and must notice when another process changed
the index: the `generation` token in Chroma's `citebot-state` collection tells it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from conftest import make_settings
from loopback import QuietHandler, serving
from test_index import TEXTS, write_articles

from bot.answering.answerer import Answerer
from index.errors import SettingsError, StoreUnavailableError
from index.store.article_index import ArticleIndex
from index.store.builds import BUILD_LEASE, BUILD_PREFIX
from index.store.chroma import open_chroma

pytestmark = pytest.mark.slow

LIGHTHOUSE = (
    "Lighthouse keeper retires after forty years\n\nThe keeper of the Brackenholm "
    "lighthouse retired on Friday after forty years of service. He will hand the keys to "
    "the coast guard, which will run the lamp remotely."
)
GLACIER = (
    "Glacier shrinks faster than forecast\n\nThe Vatnaholt glacier lost eleven metres of "
    "ice over the summer, twice the forecast. Researchers blamed a warm and dry July."
)


def citebot(home: Path, chroma_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the `citebot` command in another process, with its own data directory."""
    env = os.environ | {"CITEBOT_HOME": str(home), "CITEBOT_CHROMA_URL": chroma_url}
    command = [sys.executable, "-c", "from bot.cli import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def ask(home: Path, chroma_url: str, question: str) -> dict:
    done = citebot(home, chroma_url, "ask", "--json", question)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def cited(answer: dict) -> str:
    return " ".join(c["text"] for c in answer["citations"])


def test_processes_share_the_index_through_the_server(tmp_path: Path, empty_server: str) -> None:
    chroma_url = empty_server
    folder = write_articles(tmp_path / "articles")
    settings = make_settings(tmp_path / "home", chroma_url=chroma_url, sources=(str(folder),))
    index = ArticleIndex(settings)
    assert index.rebuild().ok
    answerer = Answerer(index, settings)
    answer = answerer.answer("How many ferries can the harbour berth?").to_json()
    assert "six ferries" in cited(answer)
    other_home = tmp_path / "other-home"

    # Another process, with a data directory of its own, reads the same index.
    answer = ask(other_home, chroma_url, "How many ferries can the harbour berth?")
    assert "six ferries" in cited(answer)

    # This process already holds its keyword index; it adds an article ...
    extra = write_articles(tmp_path / "extra", {"lighthouse.txt": LIGHTHOUSE})
    assert index.add([str(extra)]).added == [str(extra / "lighthouse.txt")]
    # ... and a process started afterwards finds it.
    answer = ask(other_home, chroma_url, "When did the lighthouse keeper retire?")
    assert "retired on Friday" in cited(answer)

    # Another process adds an article; this process, keyword index loaded, answers from it.
    more = write_articles(tmp_path / "more", {"glacier.txt": GLACIER})
    done = citebot(other_home, chroma_url, "add", str(more))
    assert done.returncode == 0 and done.stdout.startswith("1 added"), done.stderr
    answer = answerer.answer("How much ice did the Vatnaholt glacier lose?").to_json()
    assert answer["answered"] and "eleven metres" in answer["citations"][0]["text"]
    assert index.status().articles == len(TEXTS) + 2
    assert not (other_home / "chroma").exists(), "the other process used the server only"


def builds(index: ArticleIndex) -> set[str]:
    return {c.name for c in index.client.list_collections() if c.name.startswith(BUILD_PREFIX)}


def test_rebuilds_at_once_leave_each_others_builds_alone(tmp_path: Path, empty_server: str) -> None:
    folder = write_articles(tmp_path / "articles")
    settings = make_settings(tmp_path / "home", chroma_url=empty_server, sources=(str(folder),))
    first = ArticleIndex(settings)
    assert first.rebuild().ok
    write_articles(folder, {"glacier.txt": GLACIER})
    other = ArticleIndex(make_settings(tmp_path / "other", chroma_url=empty_server))
    started_from = first.status().collection
    seen: dict[str, set[str]] = {}

    def meanwhile(done: int) -> None:
        # The first rebuild has filled its build and not switched yet; another process
        # rebuilds from start to end, with one article more.
        seen["before"] = builds(first)
        write_articles(folder, {"lighthouse.txt": LIGHTHOUSE})
        added = other.rebuild([str(folder)]).added
        assert sorted(Path(a).name for a in added) == ["glacier.txt", "lighthouse.txt"]
        seen["after"] = builds(first)

    report = first.rebuild(progress=meanwhile)

    assert report.added == [str(folder / "glacier.txt")]
    (unfinished,) = seen["before"] - {started_from}
    assert unfinished in seen["after"], "the other rebuild left the unfinished build alone"
    assert started_from not in seen["after"], "the other rebuild replaced the active build"
    assert first.status().collection == unfinished
    assert builds(first) == {unfinished}, "the rebuild switching last removed the one before"
    stored = first.stored_passages()
    articles = {Path(m.article_id).name for m in stored.metadatas}
    assert articles == set(TEXTS) | {"glacier.txt"}, "the last rebuild to finish wins"
    assert other.stored_passages().key == stored.key


def test_a_killed_rebuild_is_cleaned_up_once_its_lease_expired(
    tmp_path: Path, empty_server: str
) -> None:
    folder = write_articles(tmp_path / "articles")
    settings = make_settings(tmp_path / "home", chroma_url=empty_server, sources=(str(folder),))
    index = ArticleIndex(settings)
    assert index.rebuild().ok
    now = datetime.now(UTC)
    left = {
        "passages-killed": {"heartbeat_at": now - BUILD_LEASE - timedelta(minutes=1)},
        "passages-before-leases": {"created_at": now - timedelta(hours=2)},
        "passages-running": {"heartbeat_at": now - timedelta(minutes=1)},
    }
    for name, times in left.items():
        metadata = index.index_identity() | {k: v.isoformat() for k, v in times.items()}
        index.client.create_collection(name, metadata=metadata, embedding_function=None)

    assert index.rebuild().unchanged  # any rebuild cleans up, even one with nothing to do

    assert builds(index) == {index.status().collection, "passages-running"}


def test_the_index_lives_in_the_configured_database(tmp_path: Path, chroma_url: str) -> None:
    admin = chromadb.AdminClient(
        ChromaSettings(
            anonymized_telemetry=False,
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host="127.0.0.1",
            chroma_server_http_port=int(chroma_url.rsplit(":", 1)[1]),
        )
    )
    admin.create_database("newsroom")
    elsewhere = make_settings(tmp_path / "home", chroma_url=chroma_url, chroma_database="newsroom")
    open_chroma(elsewhere).get_or_create_collection("newsroom-only")

    default = open_chroma(make_settings(tmp_path / "other", chroma_url=chroma_url))
    assert "newsroom-only" not in {c.name for c in default.list_collections()}
    assert "newsroom-only" in {c.name for c in open_chroma(elsewhere).list_collections()}
    missing = make_settings(tmp_path / "home", chroma_url=chroma_url, chroma_database="archive")
    with pytest.raises(SettingsError, match="no database 'archive' in tenant 'default_tenant'"):
        open_chroma(missing)


def test_the_chroma_token_is_sent_as_x_chroma_token(tmp_path: Path) -> None:
    tokens = []

    class Gateway(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            tokens.append(self.headers.get("x-chroma-token"))
            self.respond(503, b'{"error": "down"}', "application/json")

    with serving(Gateway) as url:
        settings = make_settings(tmp_path, chroma_url=url, chroma_token_env="NEWSROOM_TOKEN")
        with pytest.raises(StoreUnavailableError):
            open_chroma(settings, {"NEWSROOM_TOKEN": "s3cret"})

    assert tokens and set(tokens) == {"s3cret"}
