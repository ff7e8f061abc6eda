"""Hostile input and faults (issue 29), each against real components: a Chroma store, the
real model, a loopback web site, the CLI and the bolt App over loopback HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.errors import InternalError, NotFoundError
from click.testing import CliRunner
from conftest import DEMO_ARTICLES, REFERENCE_QUOTE, make_settings, stored_texts
from fake_site import fake_site
from loopback import QuietHandler, serving

from bot.answering.answerer import Answerer
from bot.cli import main
from bot.slack import messages
from index.store.article_index import ArticleIndex
from index.text import MAX_SENTENCE_CHARS

REFERENCE_QUESTION = "who denied the crematorium claim"
SYRIA = DEMO_ARTICLES / "syria-denies-burning-prisoners-bodies-claim.txt"
WIRE = "Wire story\n\nThe mayor of Tallinn cut the ribbon on the new bridge."


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def first_quote(index: ArticleIndex, question: str) -> tuple[str, str, str]:
    answer = Answerer(index, index.settings).answer(question)
    assert answer.citations, question
    first = answer.citations[0]
    return first.text, first.title, first.source


def test_an_export_cannot_replace_another_sources_article(tmp_path: Path) -> None:
    """#1: a record's url names what it claims to be, not what it replaces."""
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(DEMO_ARTICLES),)))
    assert index.rebuild().ok
    with fake_site() as site:
        wire = site.put("/wire.txt", WIRE)
        assert index.add([wire]).added == [wire]
        forged = [
            {
                "url": str(SYRIA.resolve()),
                "title": "Syria denies burning prisoners' bodies claim",
                "text": "Syrian officials confirmed the crematorium claim, a forged record said.",
            },
            {
                "url": wire,
                "title": "Wire story",
                "text": "Nobody cut any ribbon, a forged record said.",
            },
        ]
        export = site.put("/collide.jsonl", "\n".join(json.dumps(r) for r in forged) + "\n")
        articles = index.status().articles

        report = index.add([export])

        assert (len(report.added), report.changed) == (2, [])
        assert index.status().articles == articles + 2
        assert first_quote(index, REFERENCE_QUESTION) == (
            REFERENCE_QUOTE,
            "Syria denies burning prisoners' bodies claim",
            str(SYRIA.resolve()),
        )
        assert "cut the ribbon" in first_quote(index, "Who cut the ribbon on the new bridge?")[0]

        # Removing the export removes its records and nothing of the sources they named.
        assert len(index.remove([export]).removed) == 2
        assert index.status().articles == articles
        again = index.rebuild()
    assert again.removed == [] and index.status().articles == articles
    assert first_quote(index, REFERENCE_QUESTION)[0] == REFERENCE_QUOTE


def test_a_record_is_still_removed_by_its_url(tmp_path: Path) -> None:
    """Ids of JSON records name their export now; the url they were removed by still works."""
    export = tmp_path / "wire.jsonl"
    export.write_text(json.dumps({"url": "https://n.example/a", "text": WIRE}) + "\n")
    assert run("index", "rebuild", "--sources", str(export))[0] == 0

    code, out, _ = run("remove", "https://n.example/a")

    assert code == 0 and out.startswith("0 added, 0 changed, 0 unchanged, 1 removed")
    assert "0 added" in run("index", "rebuild", "--sources", str(export))[1]
    assert json.loads(run("status", "--json")[1])["articles"] == 0


def test_a_file_name_that_is_not_utf8_is_one_failure_and_the_rest_is_indexed(
    tmp_path: Path,
) -> None:
    """#4: the store keeps names as UTF-8; a name with other bytes is named, escaped."""
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "wire.txt").write_text(WIRE, encoding="utf-8")
    latin1 = folder / os.fsdecode(b"caf\xe9.txt")
    latin1.write_text("Cafe\n\nThe cafe opened on Tuesday.", encoding="utf-8")
    (folder / os.fsdecode(b"photo-\xe9.jpg")).write_bytes(b"not an article")  # not read
    failure = f"failed: {folder}/caf\\xe9.txt: the name is not UTF-8"

    code, out, err = run("index", "rebuild", "--sources", str(folder))

    assert (code, err) == (1, "")
    assert out.splitlines()[:2] == [
        "1 added, 0 changed, 0 unchanged, 0 removed, 1 failed",
        f"added: {folder / 'wire.txt'}",
    ]
    [line] = [line for line in out.splitlines() if line.startswith("failed:")]
    assert line.startswith(failure) and line.endswith(": rename it")

    code, out, err = run("add", str(folder))
    assert (code, err) == (1, "") and out.startswith("0 added, 0 changed, 1 unchanged")
    assert failure in out

    code, _, err = run("add", str(latin1))
    assert code == 1 and err.startswith(f"Error: {folder}/caf\\xe9.txt: the name is not UTF-8")
    assert len(err.splitlines()) == 1
    assert json.loads(run("status", "--json")[1])["articles"] == 1


def test_a_line_without_sentence_breaks_is_quoted_in_bounded_pieces(tmp_path: Path) -> None:
    """#8: a 70,000-character line is many passages of bounded sentences, not one quote."""
    line = ", ".join(
        f"ferry {i} leaves from pier {i % 7} of the Tallinn harbour" for i in range(1500)
    )
    story = tmp_path / "news" / "ferries.txt"
    story.parent.mkdir()
    story.write_text(f"Ferry timetable\n\n{line}", encoding="utf-8")
    settings = make_settings(tmp_path / "citebot-home", sources=(str(story.parent),))
    index = ArticleIndex(settings)
    assert index.rebuild().ok

    passages = index.stored_passages()
    longest = max(settings.passage_chars, MAX_SENTENCE_CHARS)
    assert len(passages.ids) > 70 and max(len(t) for t in stored_texts(passages)) <= longest
    code, out, _ = run("ask", "--json", "Which pier does ferry 1234 leave from?")
    quotes = [c["text"] for c in json.loads(out)["citations"]]
    assert code == 0 and quotes and all(len(q) <= MAX_SENTENCE_CHARS for q in quotes)
    assert all(q in line and line[line.index(q) + len(q) :][:1] in ("", " ") for q in quotes)


ESCAPES = ("\x1b", "\x07", "\x9b", "\r", "\u202e")


def test_what_citebot_prints_holds_no_terminal_control_characters(tmp_path: Path) -> None:
    """#12: an article, its title and its file name cannot drive the terminal."""
    folder = tmp_path / "news"
    folder.mkdir()
    story = folder / "evil\x1b[31m\u202e.txt"
    story.write_text(
        "Harbour \x1b]0;owned\x07opens\n\nThe new ferry harbour in Tallinn opened on Monday"
        "\x1b[2J\x1b]8;;http://evil.example/\x1b\\ after four years\x9b31m of work.\r\n",
        encoding="utf-8",
    )

    code, added, _ = run("index", "rebuild", "--sources", str(folder))
    assert code == 0 and "added:" in added
    code, answer, _ = run("ask", "When did the Tallinn ferry harbour open?")
    assert code == 0 and "opened on Monday" in answer and "Harbour ]0;ownedopens" in answer
    code, listed, _ = run("sources")
    code, out, err = run("add", str(folder / "gone\x1b[2J.txt"))
    failed = out + err
    assert code == 1 and "gone[2J.txt: no such file or folder" in failed

    for printed in (added, answer, listed, failed):
        assert not any(c in printed for c in ESCAPES), repr(printed)


def test_a_configured_folder_now_empty_keeps_its_articles_unless_pruned(tmp_path: Path) -> None:
    """#13: an unmounted share is an empty folder; its articles are an archive."""
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "wire.txt").write_text(WIRE, encoding="utf-8")
    (folder / "memo.txt").write_text("Memo\n\nThe lighthouse will be green.", encoding="utf-8")
    assert run("index", "rebuild", "--sources", str(folder))[0] == 0
    for name in ("wire.txt", "memo.txt"):
        (folder / name).unlink()

    for command in (["index", "rebuild", "--sources", str(folder)], ["add", str(folder)]):
        code, out, err = run(*command)
        assert (code, err) == (1, "")
        assert out.splitlines() == [
            "0 added, 0 changed, 0 unchanged, 0 removed, 1 failed",
            "kept 2 article(s): its source could not be read",
            f"failed: {folder}: the folder holds no articles now, but 2 were indexed from it "
            "(not mounted?): they stay; `citebot index rebuild --prune` removes them",
        ]
        assert json.loads(run("status", "--json")[1])["articles"] == 2

    code, out, _ = run("index", "rebuild", "--sources", str(folder), "--prune")
    assert code == 0 and out.startswith("0 added, 0 changed, 0 unchanged, 2 removed, 0 failed")
    assert json.loads(run("status", "--json")[1])["articles"] == 0


def test_the_password_of_a_url_is_shown_nowhere(tmp_path: Path) -> None:
    """#13: a source's key keeps its credentials to fetch it; nothing that shows it does."""
    with fake_site() as site:
        site.put("/wire.txt", WIRE)
        url = site.base.replace("http://", "http://editor:hunter2@") + "/wire.txt"
        # urllib takes no credentials from a URL: the read fails, and the failure names it.
        shown = [run("index", "rebuild", "--sources", url), run("add", url), run("sources")]
        shown.append(run("sources", "--json"))
        home = tmp_path / "citebot-home"
        library = ArticleIndex(make_settings(home, sources=())).library
        latest = library.last_report()
    printed = "".join(out + err for _, out, err in shown)
    assert "http://***@127.0.0.1:" in printed
    assert "hunter2" not in printed and "editor" not in printed
    assert latest is not None and "hunter2" not in " ".join(latest.lines)
    assert "hunter2" not in messages.escape(f"failed: {url}: HTTP 401")


def test_a_model_reply_citebot_cannot_read_is_one_log_line(
    demo_index: ArticleIndex, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """#13: a malformed LLM reply leaves the quotes and one line, not a traceback."""
    replies = []

    class Model(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
            self.rfile.read(int(self.headers["Content-Length"]))
            replies.append(1)
            body = b'{"id": "c", "object": "chat.completion", "choices": []}'
            self.respond(200, body, "application/json")

    with serving(Model) as url:
        monkeypatch.setenv("CITEBOT_HOME", str(demo_index.settings.home))
        monkeypatch.setenv("CITEBOT_LLM_URL", url.replace("http://", "http://u:hunter2@") + "/v1")
        monkeypatch.setenv("CITEBOT_LLM_MODEL", "test-model")
        code, out, err = run("ask", REFERENCE_QUESTION)

    assert code == 0 and replies and REFERENCE_QUOTE[:40] in out
    assert "the model's reply could not be read" in out
    [record] = [r for r in caplog.records if "LLM" in r.getMessage()]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert "hunter2" not in record.getMessage()


FULL = "error returned from database: (code: 13) database or disk is full"  # Chroma's words


def full(*args: object, **kwargs: object) -> None:
    raise InternalError(FULL)


class FullCollection:
    """A collection of the real store on a disk with no space left: reads work, every
    write fails as Chroma's SQLite does."""

    add = upsert = update = delete = modify = staticmethod(full)

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


class FullDisk:
    """The real embedded client, its collections on a full disk."""

    create_collection = delete_collection = staticmethod(full)

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_collection(self, name: str, **kwargs: Any) -> FullCollection:
        return FullCollection(self._client.get_collection(name, **kwargs))

    def get_or_create_collection(self, name: str, **kwargs: Any) -> FullCollection:
        try:
            return self.get_collection(name)
        except NotFoundError:
            full()
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_full_disk_is_one_line_and_reading_commands_keep_answering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#7: the store's writes fail with ENOSPC (Chroma's SQLite says SQLITE_FULL)."""
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "wire.txt").write_text(WIRE, encoding="utf-8")
    assert run("index", "rebuild", "--sources", str(folder))[0] == 0
    (folder / "memo.txt").write_text("Memo\n\nThe lighthouse will be green.", encoding="utf-8")
    home = tmp_path / "citebot-home"
    line = f"Error: the data directory's disk is full: free space on the disk of {home} ("

    opened = chromadb.PersistentClient
    monkeypatch.setattr(chromadb, "PersistentClient", lambda **kw: FullDisk(opened(**kw)))
    writes = [["add", str(folder)], ["index", "rebuild"], ["remove", str(folder / "wire.txt")]]
    for command in writes:
        code, out, err = run(*command)
        assert (code, out) == (1, "") and err.startswith(line) and err.count("\n") == 1, err
    assert json.loads(run("status", "--json")[1])["articles"] == 1
    assert run("sources")[0] == 0
    code, out, _ = run("ask", "Who cut the ribbon on the new bridge?")
    assert code == 0 and "cut the ribbon" in out

    # Chroma writes when it starts: on a full disk, even reading commands cannot open it.
    monkeypatch.setattr(chromadb, "PersistentClient", full)
    for command in (["status"], ["sources"], ["ask", "who cut the ribbon?"]):
        code, out, err = run(*command)
        assert (code, out) == (1, "") and err.startswith(line) and err.count("\n") == 1

    monkeypatch.setattr(chromadb, "PersistentClient", opened)
    assert run("add", str(folder))[1].startswith("1 added, 0 changed, 1 unchanged")
