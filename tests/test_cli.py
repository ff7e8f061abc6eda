"""The `citebot` command: output, JSON shapes, exit codes and error messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from conftest import REFERENCE_QUOTE
from test_index import BAD_FILES, TEXTS, write_articles

from bot.answering.answers import NO_WORDS_HINT
from bot.cli import main


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_rebuild_add_ask_status(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", {"orchard.txt": TEXTS["orchard.txt"]})

    code, out, _ = run("index", "rebuild", "--sources", str(folder))
    assert code == 0
    assert "1 added, 0 changed, 0 unchanged, 0 removed, 0 failed" in out

    extra = write_articles(tmp_path / "extra", {"harbour.txt": TEXTS["harbour.txt"]})
    code, out, _ = run("add", str(extra))
    assert code == 0 and out.startswith("1 added")

    code, out, _ = run("ask", "How many ferries can the harbour berth?")
    assert code == 0
    assert "\u201cThe harbour can berth six ferries at once.\u201d" in out
    assert "New harbour opens in Tallinn" in out and "harbour.txt" in out

    code, out, _ = run("status", "--json")
    status = json.loads(out)
    assert code == 0 and status["articles"] == 2 and status["rebuilt_at"]


def test_ask_json_shape(tmp_path: Path) -> None:
    from conftest import DEMO_ARTICLES

    run(
        "index",
        "rebuild",
        "--sources",
        str(DEMO_ARTICLES / "syria-denies-burning-prisoners-bodies-claim.txt"),
    )
    code, out, _ = run("ask", "--json", "who denied the crematorium claim")

    answer = json.loads(out)
    assert code == 0
    assert set(answer) == {"question", "answered", "confidence", "citations", "passages"}
    assert answer["answered"] is True
    assert answer["citations"][0]["text"] == REFERENCE_QUOTE
    assert {"text", "title", "source", "published", "score"} <= set(answer["citations"][0])
    assert answer["passages"]


def test_unanswered_question_shows_closest_passages(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    run("index", "rebuild", "--sources", str(folder))

    code, out, _ = run("ask", "What is the capital of Australia?")

    assert code == 0
    assert "The indexed articles don't answer this question." in out
    assert "Closest passages:" in out


def test_a_question_of_common_words_only_says_why_it_found_nothing(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    run("index", "rebuild", "--sources", str(folder))

    code, out, _ = run("ask", "what is the")
    _, shown, _ = run("ask", "--json", "what is the")
    _, specific, _ = run("ask", "--json", "What is the capital of Australia?")

    assert code == 0 and "The indexed articles don't answer this question." in out
    assert "too common to search by" in " ".join(out.split())
    assert json.loads(shown)["hint"] == NO_WORDS_HINT
    assert "hint" not in json.loads(specific)  # a question with words gets none


def test_failed_sources_are_named_and_exit_1(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", {"orchard.txt": TEXTS["orchard.txt"]})
    (folder / "binary.txt").write_bytes(BAD_FILES["binary.txt"])

    code, out, _ = run("index", "rebuild", "--sources", str(folder))

    assert code == 1
    assert "1 added" in out and "1 failed" in out
    assert f"failed: {folder / 'binary.txt'}: binary file" in out


def test_add_missing_path_fails(tmp_path: Path) -> None:
    code, out, _ = run("add", str(tmp_path / "nope.txt"))

    assert code == 1
    assert "nope.txt: no such file or folder" in out


def test_ask_without_index_explains(tmp_path: Path) -> None:
    code, _, err = run("ask", "anything?")

    assert code == 1
    assert err.startswith("Error: there is no index yet: run `citebot index rebuild`")


def test_bad_setting_is_named(monkeypatch) -> None:
    monkeypatch.setenv("CITEBOT_BACKEND", "gpu")

    code, _, err = run("status")

    assert code == 1
    assert "index.backend (CITEBOT_BACKEND) must be one of torch, onnx, onnx-int8, got 'gpu'" in err


def test_ask_as_of_leaves_out_later_articles(tmp_path: Path) -> None:
    folder = write_articles(
        tmp_path / "news",
        {
            "old.md": "---\ntitle: Airbag recall\npublished: 2014-12-19\n---\n\n"
            "Brightline Motors recalled 1.1 million vehicles this week over faulty airbags.\n",
            "new.md": "---\ntitle: Camera recall\npublished: 2022-06-14\n---\n\n"
            "Harbor Auto recalled 2.9 million vehicles this week over dark rear cameras.\n",
        },
    )
    run("index", "rebuild", "--sources", str(folder))
    question = "Which automaker recalled vehicles this week?"

    code, out, _ = run("ask", "--json", "--as-of", "2014-12-20", question)
    answer = json.loads(out)
    assert code == 0
    shown = [c["title"] for c in answer["citations"]] + [p["title"] for p in answer["passages"]]
    assert shown[0] == "Airbag recall" and "Camera recall" not in shown

    code, out, _ = run("ask", "--json", "--as-of", "2022-06-16", question)
    assert json.loads(out)["citations"][0]["title"] == "Camera recall"

    code, _, err = run("ask", "--as-of", "last week", question)
    assert code == 2 and "--as-of" in err


def test_help_sets_every_environment_variable_apart_from_its_setting() -> None:
    code, out, _ = run("--help")

    assert code == 0
    for line in out[out.index("Environment") :].splitlines()[1:]:
        if line.strip().startswith("CITEBOT_"):
            name, what = line.split(None, 1)
            assert name.isupper() and not what.startswith("_"), line
    # The longest name sets the column: two spaces at least after each.
    assert re.search(r"\n +CITEBOT_READER_PRECISION {2,}answer.reader_precision\n", out)
    assert re.search(r"\n +CITEBOT_INSTALLATION_STORE  slack.installation_store\n", out)
    assert re.search(r"\n +CITEBOT_BIND_HOST {2,}citebot serve --host\n", out)


def test_sources_counts_one_article_in_the_singular(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "one", {"orchard.txt": TEXTS["orchard.txt"]})
    run("index", "rebuild", "--sources", str(folder))

    code, out, _ = run("sources")

    assert code == 0
    assert f"{folder}  (1 article)" in out
