"""Several processes on one embedded Chroma store (`chroma.url` empty).

Chroma's embedded client keeps the vector index it loaded in memory, so a running
process must reopen the store when another process changed the index; and writes from
different processes take turns through the lock file in the data directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import make_settings
from test_chroma_server import GLACIER, LIGHTHOUSE
from test_index import TEXTS, write_articles

from index.store.article_index import ArticleIndex
from index.store.chroma import WRITE_LOCK
from index.store.snapshot import StoredPassages

pytestmark = pytest.mark.slow

GLACIER_QUESTION = "How much ice did the Vatnaholt glacier lose?"


def citebot(home: Path, *args: str, **popen: object) -> subprocess.Popen[str]:
    """Starts the `citebot` command in another process on the data directory `home`."""
    env = os.environ | {"CITEBOT_HOME": str(home)}
    command = [sys.executable, "-c", "from bot.cli import main; main()", *args]
    return subprocess.Popen(command, env=env, text=True, **popen)


def nearest_article(stored: StoredPassages, index: ArticleIndex, question: str) -> str:
    """The article of the passage nearest to `question` by the dense search alone."""
    embedding = index.encoder.get_query_embedding(question)
    (best, _), *_ = stored.dense_search(embedding, 3)
    return Path(stored.metadatas[stored.ids.position(best)].article_id).name


def test_a_running_process_searches_vectors_another_process_added(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    settings = make_settings(tmp_path / "home", sources=(str(folder),))
    index = ArticleIndex(settings)
    assert index.rebuild().ok
    before = index.stored_passages()
    assert nearest_article(before, index, "Where did the ferry harbour open?") == "harbour.txt"

    more = write_articles(tmp_path / "more", {"glacier.txt": GLACIER})
    done = citebot(settings.home, "add", str(more), stdout=subprocess.PIPE)
    assert done.wait(timeout=300) == 0
    assert done.stdout is not None and done.stdout.read().startswith("1 added")

    after = index.stored_passages()
    assert nearest_article(after, index, GLACIER_QUESTION) == "glacier.txt"
    assert after.keywords.top("Vatnaholt glacier", 1), "the keyword index has it too"
    # Without reopening, this process's first client still misses the new vector (as
    # Chroma 1.5 behaves); if this starts failing, Chroma reloads by itself now.
    assert nearest_article(before, index, GLACIER_QUESTION) != "glacier.txt"


def test_writes_from_two_processes_take_turns(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    settings = make_settings(tmp_path / "home", sources=(str(folder),))
    index = ArticleIndex(settings)
    assert index.rebuild().ok
    index.stored_passages()
    lighthouse = write_articles(tmp_path / "lighthouse", {"lighthouse.txt": LIGHTHOUSE})
    glacier = write_articles(tmp_path / "glacier", {"glacier.txt": GLACIER})

    # This process adds an article and, holding the write lock, waits.
    holding, release = threading.Event(), threading.Event()

    def hold(done: int) -> None:
        holding.set()
        release.wait(timeout=300)

    adding = threading.Thread(
        target=index.add, args=([str(lighthouse)],), kwargs={"progress": hold}
    )
    adding.start()
    assert holding.wait(timeout=120)
    log = tmp_path / "other.log"
    with log.open("w") as stderr:
        other = citebot(settings.home, "add", str(glacier), stderr=stderr)
        try:
            assert _wait_for(lambda: "waiting for another citebot process" in log.read_text())
            assert other.poll() is None, "the other process waits for the lock"
        finally:
            release.set()
            adding.join(timeout=60)
        assert other.wait(timeout=300) == 0, log.read_text()

    assert (settings.home / WRITE_LOCK).exists()
    stored = index.stored_passages()
    articles = {Path(m.article_id).name for m in stored.metadatas}
    assert articles == set(TEXTS) | {"lighthouse.txt", "glacier.txt"}
    assert nearest_article(stored, index, GLACIER_QUESTION) == "glacier.txt"
    assert index.status().articles == len(TEXTS) + 2


def _wait_for(condition, timeout: float = 120.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
