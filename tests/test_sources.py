"""Reading articles from files, folders, bytes and fetched URLs, and reporting sources that fail."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import QuietHandler, serving

from index.articles import Article
from index.errors import SourceError
from index.report import Failure
from index.settings import PROJECT_ROOT, JsonKeys
from index.sources.fetch import USER_AGENT, FetchPolicy, fetch
from index.sources.formats import DEFAULT_JSON_KEYS, SUPPORTED_EXTENSIONS, load_sources, read_bytes
from index.sources.reading import read_fetched

STORY = (
    "A powerful storm struck the northern coast on Tuesday, flooding streets and cutting "
    "power to thousands of homes across the region."
)
FOLLOW_UP = (
    "Officials said emergency crews worked through the night to clear fallen trees and "
    "restore electricity to the hardest hit towns."
)
ARTICLE_HTML = f"""<!doctype html>
<html><head><title>Example News | Storm hits coast</title>
<link rel="canonical" href="https://news.example/storm">
<meta property="og:title" content="Storm hits coast">
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
<style>body {{ color: red }}</style>
<script>var banner = "BUY NOW";</script></head>
<body><nav><a href="/">Home</a> <a href="/world">World news</a></nav>
<div class="advert">Buy our product today</div>
<article><h1>Storm hits coast</h1><p>{STORY}</p><p>{FOLLOW_UP}</p></article>
<footer>Copyright 2024 Example News</footer></body></html>"""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_file(path: Path, json_keys: JsonKeys = DEFAULT_JSON_KEYS) -> list[Article]:
    """The articles in one file, read as a rebuild reads it, with nothing failing."""
    result = load_sources([str(path)], json_keys)
    assert result.failures == []
    return result.articles


def make_pdf(lines: list[str], title: str | None = None, created: str | None = None) -> bytes:
    """A one-page PDF in Helvetica, written by hand so the test needs no PDF writer."""
    shown = "".join(f"({line}) Tj T* " for line in lines)
    content = f"BT /F1 12 Tf 14 TL 72 712 Td {shown}ET".encode() if lines else b""
    info = ""
    if title:
        info += f"/Title ({title}) "
    if created:
        info += f"/CreationDate ({created}) "
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< {info}>>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


# --- plain text and Markdown ---------------------------------------------------------------


def test_txt_first_line_is_the_title_and_the_rest_is_kept_verbatim(tmp_path: Path) -> None:
    body = f'{STORY}\n\n  Indented quote: "it\'s bad".\n\n{FOLLOW_UP}'
    path = write(tmp_path / "storm.txt", f"\n\n  Storm hits coast  \n\n{body}\n\n\n")

    [article] = load_file(path)

    assert article.title == "Storm hits coast"
    assert article.text == body
    assert article.id == article.source == str(path.resolve())
    assert article.url is None and article.published is None


def test_txt_with_a_single_line_is_all_text_titled_by_the_file_name(tmp_path: Path) -> None:
    [article] = load_file(write(tmp_path / "one-liner.txt", STORY + "\n"))

    assert (article.title, article.text) == ("one-liner", STORY)


def test_windows_line_endings_and_a_byte_order_mark_are_normalised(tmp_path: Path) -> None:
    data = f"\ufeffStorm hits coast\r\n\r\n{STORY}\r\n{FOLLOW_UP}\r\n".encode()
    [article] = load_file(write(tmp_path / "windows.txt", data))

    assert (article.title, article.text) == ("Storm hits coast", f"{STORY}\n{FOLLOW_UP}")


def test_markdown_front_matter_gives_title_url_and_date(tmp_path: Path) -> None:
    path = write(
        tmp_path / "storm.md",
        "---\n"
        'title: "Storm hits coast"\n'
        "url: https://news.example/storm\n"
        "date: 2024-03-05T10:00:00Z\n"
        "---\n"
        f"# Storm hits coast\n\n{STORY}\n\n## Aftermath\n\n{FOLLOW_UP}\n",
    )

    [article] = load_file(path)

    assert article.title == "Storm hits coast"
    assert article.url == "https://news.example/storm"
    assert article.published == "2024-03-05"
    assert article.text == f"{STORY}\n\n## Aftermath\n\n{FOLLOW_UP}"


def test_markdown_published_key_wins_over_date(tmp_path: Path) -> None:
    text = f"---\npublished: 2023-01-02\ndate: 1999-09-09\n---\n# Storm\n\n{STORY}\n"
    [article] = load_file(write(tmp_path / "storm.markdown", text))

    assert (article.title, article.published, article.text) == ("Storm", "2023-01-02", STORY)


def test_markdown_without_front_matter_takes_the_first_heading(tmp_path: Path) -> None:
    [article] = load_file(
        write(tmp_path / "a.md", f"By Jo Reporter\n\n# Storm hits coast\n\n{STORY}")
    )

    assert article.title == "Storm hits coast"
    assert article.text == f"By Jo Reporter\n\n{STORY}"
    assert article.url is None and article.published is None


def test_markdown_without_heading_takes_the_first_line(tmp_path: Path) -> None:
    [article] = load_file(write(tmp_path / "a.md", f"Storm hits coast\n\n{STORY}"))

    assert (article.title, article.text) == ("Storm hits coast", STORY)


# --- HTML ----------------------------------------------------------------------------------


def test_html_keeps_the_main_text_only(tmp_path: Path) -> None:
    [article] = load_file(write(tmp_path / "storm.html", ARTICLE_HTML))

    assert article.title == "Storm hits coast"
    assert STORY in article.text and FOLLOW_UP in article.text
    for noise in ("BUY NOW", "color: red", "World news", "Buy our product", "Copyright"):
        assert noise not in article.text
    assert not article.text.startswith("Storm hits coast")
    assert article.url == "https://news.example/storm"
    assert article.published == "2024-03-05"
    assert article.id == str((tmp_path / "storm.html").resolve())


def test_html_without_metadata_falls_back_to_title_tag_and_no_date(tmp_path: Path) -> None:
    html = f"<html><head><title>Storm</title></head><body><p>{STORY}</p></body></html>"
    [article] = load_file(write(tmp_path / "plain.htm", html))

    assert (article.title, article.text) == ("Storm", STORY)
    assert article.url is None and article.published is None


# --- PDF -----------------------------------------------------------------------------------


def test_pdf_title_and_date_come_from_its_metadata(tmp_path: Path) -> None:
    data = make_pdf(
        ["Hello world", "A second line"], title="Greetings", created="D:20240305120000Z"
    )
    [article] = load_file(write(tmp_path / "hello.pdf", data))

    assert article.title == "Greetings"
    assert "Hello world" in article.text and "A second line" in article.text
    assert article.published == "2024-03-05"


def test_pdf_without_metadata_takes_the_first_line_as_title(tmp_path: Path) -> None:
    [article] = load_file(write(tmp_path / "hello.pdf", make_pdf(["Storm report", "Hello world"])))

    assert (article.title, article.text) == ("Storm report", "Hello world")
    assert article.published is None


# --- JSON and JSON Lines -------------------------------------------------------------------


def test_json_list_of_records(tmp_path: Path) -> None:
    records = [
        {
            "title": "Storm",
            "text": STORY,
            "url": "https://news.example/storm",
            "published": "2024-03-05",
        },
        {"title": " Crews  work ", "text": FOLLOW_UP},
    ]
    path = write(tmp_path / "export.json", json.dumps(records))

    storm, crews = load_file(path)

    # The export is part of the id: a record's url never names another source's article.
    assert (storm.id, storm.url, storm.title, storm.published) == (
        f"{path.resolve()}#https://news.example/storm",
        "https://news.example/storm",
        "Storm",
        "2024-03-05",
    )
    assert storm.text == STORY and storm.source == str(path.resolve())
    assert (crews.id, crews.title, crews.url) == (f"{path.resolve()}#2", "Crews work", None)


@pytest.mark.parametrize("wrapper", ["articles", "records", "items"])
def test_json_object_with_a_list_of_records(tmp_path: Path, wrapper: str) -> None:
    path = write(tmp_path / "export.json", json.dumps({wrapper: [{"text": STORY}]}))

    [article] = load_file(path)

    assert (article.text, article.title) == (STORY, "export #1")


def test_json_single_record_object(tmp_path: Path) -> None:
    [article] = load_file(
        write(tmp_path / "one.json", json.dumps({"title": "Storm", "text": STORY}))
    )

    assert (article.title, article.text) == ("Storm", STORY)


def test_json_keys_are_configurable(tmp_path: Path) -> None:
    record = {
        "headline": "Storm",
        "body": STORY,
        "link": "https://n.example/s",
        "date": "2024-03-05",
    }
    keys = JsonKeys(title="headline", text="body", url="link", published="date")

    [article] = load_file(write(tmp_path / "custom.json", json.dumps([record])), keys)

    assert (article.title, article.text, article.url, article.published) == (
        "Storm",
        STORY,
        "https://n.example/s",
        "2024-03-05",
    )


def test_jsonl_with_a_bad_record_loads_the_others(tmp_path: Path) -> None:
    lines = [
        json.dumps({"title": "Storm", "text": STORY}),
        "",
        json.dumps({"title": "Crews", "text": FOLLOW_UP}),
        json.dumps({"title": "No body", "body": "elsewhere"}),
        json.dumps({"title": "Blank", "text": "  "}),
    ]
    path = write(tmp_path / "feed.jsonl", "\n".join(lines) + "\n")

    result = load_sources([str(path)])

    assert [a.title for a in result.articles] == ["Storm", "Crews"]
    assert [a.id for a in result.articles] == [f"{path.resolve()}#1", f"{path.resolve()}#2"]
    assert result.failures == [
        Failure(str(path.resolve()), "line 4: no 'text' field (set sources.json.text_key)"),
        Failure(str(path.resolve()), "line 5: empty 'text' field"),
    ]


def test_jsonl_with_a_broken_line_loads_the_others_and_names_the_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"title": "Storm", "text": STORY}),
        '{"title": "Cut off", "text": "half a rec',
        json.dumps({"title": "Crews", "text": FOLLOW_UP}),
    ]
    path = write(tmp_path / "feed.jsonl", "\n".join(lines) + "\n")

    result = load_sources([str(path)])

    assert [a.title for a in result.articles] == ["Storm", "Crews"]
    # Numbered as if the broken line were a record: fixing it changes no other id.
    assert [a.id for a in result.articles] == [f"{path.resolve()}#1", f"{path.resolve()}#3"]
    [failure] = result.failures
    assert failure.source == str(path.resolve())
    assert failure.reason.startswith("line 2: not valid JSON (column ")


def test_an_article_over_the_size_cap_is_refused_by_name(tmp_path: Path) -> None:
    long_text = write(tmp_path / "long.txt", "Long story\n\n" + "word " * 400)
    huge_text = write(tmp_path / "huge.md", "# Huge\n\n" + "x" * 4000)  # refused unread
    feed = write(
        tmp_path / "feed.jsonl",
        json.dumps({"title": "Short", "text": STORY})
        + "\n"
        + json.dumps({"title": "Long", "text": "word " * 400}),
    )

    result = load_sources([str(long_text), str(huge_text), str(feed)], max_chars=1000)

    assert [a.title for a in result.articles] == ["Short"]
    assert [(Path(f.source).name, f.reason.split(":")[0]) for f in result.failures] == [
        ("long.txt", "the article is 1,999 characters, more than index.max_article_chars (1,000)"),
        (
            "huge.md",
            "the article is over 1,002 characters, more than index.max_article_chars (1,000)",
        ),
        ("feed.jsonl", "line 2"),
    ]
    assert "more than index.max_article_chars (1,000)" in result.failures[2].reason
    assert len(load_sources([str(long_text)]).articles) == 1  # no cap, no failure


def shifted_xref(pdf: bytes) -> bytes:
    """`pdf` with its cross-reference table's offset 3 bytes off, which pypdf repairs."""
    pointer = re.search(rb"startxref\n(\d+)", pdf)
    assert pointer is not None
    return pdf[: pointer.start(1)] + b"%d" % (int(pointer.group(1)) + 3) + pdf[pointer.end(1) :]


def test_pdf_warnings_do_not_reach_stderr(tmp_path: Path) -> None:
    """pypdf logs what it repairs on stderr unless told otherwise; the reason for a
    failure carries it instead, and a PDF it can read goes in without a word."""
    readable = write(tmp_path / "shifted.pdf", shifted_xref(make_pdf(["Storm", "Hello world"])))
    scanned = write(tmp_path / "scanned.pdf", shifted_xref(make_pdf([])))
    script = (
        "import sys; from index.sources.formats import load_sources; "
        "r = load_sources(sys.argv[1:]); "
        "print(len(r.articles)); [print(f.reason) for f in r.failures]"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(readable), str(scanned)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    count, reason = run.stdout.splitlines()[:2]
    assert count == "1"
    assert "pypdf:" in reason and "startxref" in reason


def test_read_bytes_keeps_the_records_that_failed() -> None:
    data = json.dumps([{"title": "x"}, {"title": "y"}]).encode()

    result = read_bytes("upload.json", data, "slack:F123")
    assert result.articles == []
    assert [f.reason for f in result.failures] == [
        "record 1: no 'text' field (set sources.json.text_key)",
        "record 2: no 'text' field (set sources.json.text_key)",
    ]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bad.json", '[{"text": "a"},\n {"text": }]', "not valid JSON (line 2, column 11)"),
        ("bad.jsonl", '{"text": \n\n{"text": \n', "line 1: not valid JSON (column 10)"),
        ("empty-list.json", "[]", "no records in the JSON"),
        ("scalar.json", '"just a string"', "JSON must be a list of records or an object"),
    ],
)
def test_invalid_json_is_a_failure_naming_the_line(
    tmp_path: Path, name: str, content: str, reason: str
) -> None:
    path = write(tmp_path / name, content)

    [failure] = load_sources([str(path)]).failures

    assert failure.source == str(path.resolve())
    assert failure.reason.startswith(reason)


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file, not an article"),
        ("page.html", b"<html>\x00\x01\x02</html>", "binary file, not an article"),
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\t\n", "empty file"),
        ("bom-only.txt", b"\xef\xbb\xbf\n", "empty file"),
        ("empty.pdf", b"", "empty file"),
        ("latin1.txt", "Caf\xe9 news\nstory".encode("latin-1"), "not UTF-8 text (byte 3)"),
        ("latin1.json", '{"text": "caf\xe9"}'.encode("latin-1"), "not UTF-8 text (byte 13)"),
        (
            "nav-only.html",
            b"<html><head><script>var x = 1;</script></head>"
            b"<body><nav><a href='/'>Home</a></nav></body></html>",
            "no article text found in the HTML",
        ),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj\n<<", "not a readable PDF: "),
        ("scanned.pdf", make_pdf([]), "the PDF has no text layer (scanned?)"),
        ("notes.docx", b"PK\x03\x04", "unsupported file type (.docx): use one of .txt, .md"),
    ],
)
def test_bad_input_is_a_failure_naming_the_file_and_the_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = write(tmp_path / name, content)

    result = load_sources([str(path)])

    assert result.articles == []
    [failure] = result.failures
    assert failure.source == str(path.resolve())
    assert failure.reason.startswith(reason)


def test_missing_path_is_a_failure(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "story.txt"

    result = load_sources([str(missing)])

    assert result.failures == [Failure(str(missing), "no such file or folder")]


def test_one_bad_source_does_not_stop_the_others(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", f"Storm\n{STORY}")
    bad = write(tmp_path / "bad.txt", b"")

    result = load_sources([str(bad), str(tmp_path / "missing.md"), str(good)])

    assert [a.title for a in result.articles] == ["Storm"]
    assert [f.reason for f in result.failures] == ["empty file", "no such file or folder"]


# --- folders -------------------------------------------------------------------------------


def test_folder_walk_is_sorted_recursive_and_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write(corpus / "b.txt", f"B\n{STORY}")
    write(corpus / "a.md", f"# A\n{STORY}")
    write(corpus / "sub" / "c.json", json.dumps({"title": "C", "text": STORY}))
    write(corpus / "sub" / "deeper" / "d.HTML", ARTICLE_HTML)
    write(corpus / ".hidden.txt", f"Hidden\n{STORY}")
    write(corpus / ".git" / "e.txt", f"In git\n{STORY}")
    write(corpus / "notes.docx", b"PK\x03\x04 not an article")
    write(corpus / "image.png", b"\x89PNG\x00")

    result = load_sources([str(corpus)])

    assert [a.title for a in result.articles] == ["A", "B", "C", "Storm hits coast"]
    assert result.failures == []


def test_an_article_reached_twice_is_kept_once(tmp_path: Path) -> None:
    story = write(tmp_path / "corpus" / "story.txt", f"Storm\n{STORY}")

    result = load_sources([str(tmp_path / "corpus"), str(story)])

    assert [a.id for a in result.articles] == [str(story.resolve())]


def test_supported_extensions() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {
        ".txt",
        ".md",
        ".markdown",
        ".html",
        ".htm",
        ".pdf",
        ".json",
        ".jsonl",
    }


# --- bytes -------------------------------------------------------------------------------


def test_read_bytes_picks_the_reader_by_name() -> None:
    data = f"# Storm\n{STORY}".encode()
    [article] = read_bytes("Storm.MD", data, "slack:F1", url="https://s/f").articles

    assert (article.id, article.source, article.url) == ("slack:F1", "slack:F1", "https://s/f")
    assert (article.title, article.text) == ("Storm", STORY)
    with pytest.raises(SourceError, match="unsupported file type"):
        read_bytes("photo.jpg", b"\xff\xd8", "slack:F2")


# --- URLs: fetched (index/sources/fetch.py), then read by content type or extension ---------


class Site:
    """A web site; `pages` maps a path to (status, content type, body). Serve `handler()`
    on loopback and set `url`."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, str | None, bytes]] = {}
        self.user_agents: list[str] = []
        self.url = ""

    def handler(self) -> type[QuietHandler]:
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                site.user_agents.append(self.headers.get("User-Agent", ""))
                status, content_type, body = site.pages.get(self.path, (404, None, b"gone"))
                self.respond(status, body, content_type)

        return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    with serving(site.handler()) as url:
        site.url = url
        yield site


def load_url(url: str) -> list[Article]:
    """The articles at `url`, fetched and read as a library source's refresh does."""
    result = read_fetched(fetch(url), url, DEFAULT_JSON_KEYS)
    assert result.failures == []
    return result.articles


def test_url_html_is_read_by_content_type(site: Site) -> None:
    site.pages["/news/storm"] = (200, "text/html; charset=utf-8", ARTICLE_HTML.encode())
    url = f"{site.url}/news/storm"

    [article] = load_url(url)

    assert (article.id, article.source) == (url, url)
    assert article.url == "https://news.example/storm"  # the page's canonical link
    assert article.title == "Storm hits coast" and STORY in article.text
    assert site.user_agents == [USER_AGENT]


def test_url_reader_by_extension_when_the_content_type_is_generic(site: Site) -> None:
    site.pages["/feed.jsonl"] = (200, "application/json", b'{"text": "a"}\n{"text": "b"}\n')
    site.pages["/story.md"] = (200, "application/octet-stream", f"# Storm\n{STORY}".encode())
    site.pages["/report"] = (200, "application/pdf", make_pdf(["Storm report", "Hello world"]))
    site.pages["/plain"] = (200, None, f"Storm\n{STORY}".encode())

    feed = load_url(f"{site.url}/feed.jsonl")
    [story] = load_url(f"{site.url}/story.md")
    [report] = load_url(f"{site.url}/report")
    [plain] = load_url(f"{site.url}/plain")

    assert [a.id for a in feed] == [f"{site.url}/feed.jsonl#1", f"{site.url}/feed.jsonl#2"]
    assert (story.title, story.text, story.url) == ("Storm", STORY, f"{site.url}/story.md")
    assert (report.title, report.text) == ("Storm report", "Hello world")
    assert (plain.title, plain.text) == ("Storm", STORY)


def test_url_errors_name_the_url_and_the_reason(site: Site) -> None:
    site.pages["/image"] = (200, "image/png", b"\x89PNG\x00")
    site.pages["/archive"] = (200, "application/octet-stream", b"PK\x03\x04")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    refused = f"http://127.0.0.1:{closed_port}/story"

    with pytest.raises(SourceError, match="HTTP 404 Not Found"):
        load_url(f"{site.url}/missing")
    with pytest.raises(SourceError, match="unsupported content type image/png"):
        load_url(f"{site.url}/image")
    with pytest.raises(SourceError, match="unsupported content type application/octet-stream"):
        load_url(f"{site.url}/archive")
    with pytest.raises(SourceError, match="could not fetch: ") as raised:
        fetch(refused, FetchPolicy(timeout=5))
    assert raised.value.source == refused


def test_url_must_be_http(tmp_path: Path) -> None:
    secret = write(tmp_path / "secret.txt", f"Secret\n{STORY}")

    with pytest.raises(SourceError, match=r"not an http\(s\) URL"):
        load_url(secret.as_uri())
