"""The layering docs/ARCHITECTURE.md draws, checked with `ast` over the source: index/
never imports bot/; index/sources/ and index/embedding/ never import index/store/; the
answering core imports no surface; no module grows past MAX_LINES; index/ and bot/ keep
a short top."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.settings import PROJECT_ROOT

MAX_LINES = 450
MAX_TOP_MODULES = 8  # .py files directly in index/ or bot/, __init__.py included
# Modules still over MAX_LINES, each to be split by job (issue 24, step 6); the list only
# shrinks: a module that falls under the limit must leave it, and no other may join.
OVERSIZED: set[str] = set()


def modules(folder: str) -> Iterator[Path]:
    yield from sorted((PROJECT_ROOT / folder).rglob("*.py"))


def imported(path: Path) -> Iterator[str]:
    """Every module `path` imports, at any depth (lazy imports inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("index", "bot"),
        ("index/sources", "index.store"),
        ("index/embedding", "index.store"),
        ("bot/answering", "bot.slack"),
        ("bot/answering", "bot.cli"),
        ("bot/answering", "bot.render"),
    ],
)
def test_a_lower_folder_never_imports_a_higher_one(folder: str, forbidden: str) -> None:
    wrong = [
        f"{path.relative_to(PROJECT_ROOT)} imports {name}"
        for path in modules(folder)
        for name in imported(path)
        if name == forbidden or name.startswith(forbidden + ".")
    ]
    assert wrong == []


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from bot.cli import main\n    import index.store.chroma\n")
    assert list(imported(module)) == ["bot.cli", "index.store.chroma"]


def test_no_module_grows_past_the_limit() -> None:
    over = {
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("bot", "index")
        for path in modules(folder)
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    assert over - OVERSIZED == set(), f"split these by job: at most {MAX_LINES} lines"
    assert OVERSIZED - over == set(), "now under the limit: take them off OVERSIZED"


# What the store's snapshot holds (index/store/snapshot.py): the answering core asks
# retrieval (index/retrieval.py) instead, with a PassageQuery, and reads what it returns.
SNAPSHOT_LAYOUT = {"stored_passages", "metadatas", "keywords", "position", "column"}


def test_the_answering_core_reads_the_store_through_retrieval() -> None:
    wrong = [
        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} reads .{node.attr}"
        for path in modules("bot/answering")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if isinstance(node, ast.Attribute) and node.attr in SNAPSHOT_LAYOUT
    ]
    wrong += [
        f"{path.relative_to(PROJECT_ROOT)} imports {name}"
        for path in modules("bot/answering")
        for name in imported(path)
        if name == "index.store.snapshot"
    ]
    assert wrong == []


@pytest.mark.parametrize("top", ["bot", "index"])
def test_the_top_of_each_package_stays_short(top: str) -> None:
    assert len(list((PROJECT_ROOT / top).glob("*.py"))) <= MAX_TOP_MODULES
