"""The audit log: every change to the source library recorded with who, when, what and
how it went, in the store, and listed by `citebot audit`. (Changes from Slack: in
test_slack_library.py.)"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

from click.testing import CliRunner
from test_index import TEXTS, write_articles

from bot.cli import main
from index.settings import load_settings
from index.store.article_index import ArticleIndex


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_every_change_from_the_terminal_is_listed_with_who_what_and_how_it_went(
    tmp_path: Path,
) -> None:
    folder = write_articles(tmp_path / "articles", {"orchard.txt": TEXTS["orchard.txt"]})
    extra = write_articles(tmp_path / "extra", {"harbour.txt": TEXTS["harbour.txt"]})
    secret_url = "http://editor:hunter2@127.0.0.1:9/feed.xml"  # nothing listens on port 9
    assert run("index", "rebuild", "--sources", str(folder))[0] == 0
    assert run("add", str(extra))[0] == 0
    assert run("add", secret_url)[0] == 1  # reported failed
    assert run("remove", str(extra))[0] == 0
    code, _, err = run("remove", str(tmp_path / "never-added"))
    assert code == 1 and "neither a source nor an indexed article" in err

    code, out, _ = run("audit", "--json")
    entries = json.loads(out)
    me = getpass.getuser()
    assert code == 0
    assert [(e["who"], e["action"], e["what"]) for e in entries] == [
        (me, "rebuild", [str(folder)]),
        (me, "add", [str(extra)]),
        (me, "add", ["http://***@127.0.0.1:9/feed.xml"]),
        (me, "remove", [str(extra)]),
        (me, "remove", [str(tmp_path / "never-added")]),
    ]
    outcomes = [e["outcome"] for e in entries]
    assert outcomes[0] == "1 added, 0 changed, 0 unchanged, 0 removed, 0 failed"
    assert outcomes[2].endswith("1 failed") and outcomes[3].startswith("0 added, 0 changed")
    assert outcomes[4].startswith("failed: ") and "neither a source nor" in outcomes[4]
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    assert "hunter2" not in out

    code, out, _ = run("audit", "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4
    assert lines[0].endswith(f"  {me}  remove {extra}")
    assert lines[1].strip().startswith("0 added") and lines[3].strip().startswith("failed: ")


def test_an_untouched_store_has_no_changes_and_listing_them_writes_nothing(
    tmp_path: Path,
) -> None:
    code, out, _ = run("audit")
    assert code == 0 and out.startswith("No changes recorded yet")
    index = ArticleIndex(load_settings())
    assert "citebot-audit" not in [c.name for c in index.client.list_collections()]
    assert run("audit", "--json")[1].strip() == "[]"
