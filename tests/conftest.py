"""Shared fixtures: an isolated data directory per test, one demo index per session, and a
real Chroma server (`chroma run` on loopback) for each test module that asks for one.

The embedding model is the real one (loaded once per process by `load_encoder`), and the
stores are real Chroma stores in temporary directories.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from index.settings import PROJECT_ROOT, Settings, load_settings  # noqa: E402
from index.store.article_index import ArticleIndex  # noqa: E402
from index.store.chroma import open_chroma  # noqa: E402
from index.store.snapshot import StoredPassages  # noqa: E402

CHROMA = Path(sys.executable).with_name("chroma")
DEMO_ARTICLES = PROJECT_ROOT / "examples" / "articles"
REFERENCE_QUOTE = (
    "Syrian officials assure that this is a lie to justify the aggressive policy of the "
    "United States."
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches a real home directory, real settings or a real token."""
    home = tmp_path / "citebot-home"
    monkeypatch.setenv("CITEBOT_HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("SLACK_", "CITEBOT_")) and name != "CITEBOT_HOME":
            monkeypatch.delenv(name)
    return home


def make_settings(home: Path, **changes: object) -> Settings:
    """The project's default settings with another data directory and `changes`."""
    return dataclasses.replace(load_settings({"CITEBOT_HOME": str(home)}), **changes)


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> ArticleIndex:
    """The demo articles, indexed once for the whole session. Do not modify it."""
    home = tmp_path_factory.mktemp("demo-home")
    index = ArticleIndex(make_settings(home, sources=(str(DEMO_ARTICLES),)))
    report = index.rebuild()
    assert report.ok, report.lines()
    return index


def stored_texts(stored: StoredPassages) -> list[str]:
    """Every passage's text, in the snapshot's order, read from the store (the snapshot
    holds none)."""
    page = stored.collection.get(ids=list(stored.ids), include=["documents"])
    text_of = dict(zip(page["ids"], page["documents"], strict=True))
    return [text_of[pid] for pid in stored.ids]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_heartbeat(url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"chroma run exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"no Chroma heartbeat at {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Chroma server on a free loopback port, its data in a temporary folder."""
    if not CHROMA.exists():
        pytest.skip(f"the chroma command is not installed beside {sys.executable}")
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (folder / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(CHROMA), "run", "--host", "127.0.0.1", "--port", str(port)]
            + ["--path", str(folder / "data")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ | {"ANONYMIZED_TELEMETRY": "False"},
        )
        try:
            wait_for_heartbeat(url, server)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture
def empty_server(chroma_url: str, tmp_path: Path) -> str:
    """The module's server, with every collection of earlier tests deleted."""
    client = open_chroma(make_settings(tmp_path / "cleaner", chroma_url=chroma_url))
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    return chroma_url
