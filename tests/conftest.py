"""Shared fixtures: an isolated data directory per test, and one demo index per session.

The embedding model is the real one (loaded once per process by `load_encoder`), and the
stores are real Chroma stores in temporary directories.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from index.settings import PROJECT_ROOT, Settings, load_settings  # noqa: E402
from index.store.article_index import ArticleIndex  # noqa: E402
from index.store.snapshot import StoredPassages  # noqa: E402

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
    page = stored.collection.get(ids=stored.ids, include=["documents"])
    text_of = dict(zip(page["ids"], page["documents"], strict=True))
    return [text_of[pid] for pid in stored.ids]
