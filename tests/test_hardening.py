"""Bad input and a broken environment end in one line naming what to fix, never a traceback."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_settings
from test_index import TEXTS, write_articles

from bot.cli import main
from bot.terminal import Progress
from index.embedding.encoder import Encoder, native_bf16
from index.settings import PROJECT_ROOT
from index.store.article_index import ArticleIndex


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def free_port() -> int:
    """A loopback port nothing listens on (bound once by the kernel's choice, then freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_one_line(code: int, err: str, *wanted: str) -> None:
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for text in wanted:
        assert text in err


@pytest.mark.parametrize("command", [["status"], ["ask", "who?"], ["index", "rebuild"]])
def test_an_unreachable_chroma_server_is_named(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CITEBOT_CHROMA_URL", url)

    code, _, err = run(*command)

    assert_one_line(code, err, f"cannot reach the Chroma server at {url}", "chroma.url")


def test_the_onnx_backend_without_its_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_articles(tmp_path / "articles")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    monkeypatch.setenv("CITEBOT_BACKEND", "onnx")

    code, _, err = run("index", "rebuild", "--sources", str(folder))

    assert_one_line(code, err, "needs onnxruntime", "pip install 'citebot[onnx]'")


def test_an_index_built_with_torch_asked_with_onnx_fails_before_exporting(
    demo_index: ArticleIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITEBOT_HOME", str(demo_index.settings.home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where exports would go
    monkeypatch.setenv("CITEBOT_BACKEND", "onnx")

    code, _, err = run("ask", "who denied the crematorium claim")

    assert_one_line(code, err, "backend 'torch' (settings: 'onnx')", "citebot index rebuild")
    assert not (tmp_path / "cache").exists()


def test_serve_on_a_port_in_use_names_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("CITEBOT_SLACK_API_URL", f"http://127.0.0.1:{free_port()}/api/")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code, _, err = run("serve", "--host", "127.0.0.1", "--port", str(port))

    assert_one_line(code, err, f"port {port} on 127.0.0.1 is already in use", "--port")


def test_serve_with_slack_unreachable_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    api = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens: the connection is refused
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("CITEBOT_SLACK_API_URL", api)

    code, _, err = run("serve", "--host", "127.0.0.1", "--port", str(free_port()))

    # Not slack_sdk's "Failed to send a request" and retry lines before it.
    assert_one_line(code, err, f"could not reach the Slack Web API at {api}", "slack.api_url")


def test_an_article_over_the_cap_fails_by_name_and_the_others_are_indexed(
    demo_index: ArticleIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_articles(tmp_path / "articles")
    (folder / "huge.txt").write_text("Huge\n\n" + "A sentence of words. " * 100)
    config = tmp_path / "citebot.toml"
    config.write_text("[index]\nmax_article_chars = 1000\n")
    monkeypatch.setenv("CITEBOT_CONFIG", str(config))

    code, out, _ = run("index", "rebuild", "--sources", str(folder))

    assert code == 1
    assert out.splitlines()[0].startswith("2 added")
    assert (
        f"failed: {folder / 'huge.txt'}: the article is 2,099 characters, more than "
        "index.max_article_chars (1,000)" in out
    )


def test_rebuild_without_sources_says_how_to_name_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text("")
    monkeypatch.setenv("CITEBOT_CONFIG", str(config))

    code, _, err = run("index", "rebuild")

    assert_one_line(code, err, "no sources to index", "index.sources", "--sources")


def test_progress_moves_article_by_article(demo_index: ArticleIndex, tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", TEXTS | {"third.txt": "Third\n\nA story."})
    index = ArticleIndex(make_settings(tmp_path / "home"), encoder=demo_index.encoder)
    totals: list[int] = []
    steps: list[int] = []

    index.rebuild([str(folder)], progress=steps.append, on_total=totals.append)

    assert totals == [3] and steps == [1, 1, 1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_says_the_model_is_loading_until_the_first_article() -> None:
    terminal = _Terminal()
    with Progress("Indexing", file=terminal) as (progress, on_total):
        on_total(2)
        assert "loading the embedding model" in terminal.getvalue()
        progress(1)
        assert "1/2" in terminal.getvalue().split("\r")[-1]
        assert "loading" not in terminal.getvalue().split("\r")[-1]


class _CountingModel:
    """A SentenceTransformer that records how many texts each encode call gets."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls: list[int] = []

    def encode(self, texts: list[str], **kwargs: Any) -> Any:
        if kwargs.get("output_value", "sentence_embedding") is None:
            self.calls.append(len(texts))
        return self.model.encode(texts, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def test_token_vectors_are_kept_for_one_batch_at_a_time(demo_index: ArticleIndex) -> None:
    """One long article is many passages in one call; the encoder must still hold the
    token vectors of only `batch_size` of them at once."""
    model = _CountingModel(demo_index.encoder._model)
    texts = [f"Passage {i}. It has two sentences about item {i}." for i in range(10)]
    spans = [[(0, t.index(".") + 1), (t.index(".") + 2, len(t))] for t in texts]

    vectors, rows = Encoder(model, batch_size=4).encode_in_context(texts, spans)
    whole, whole_rows = Encoder(demo_index.encoder._model, batch_size=64).encode_in_context(
        texts, spans
    )

    assert model.calls == [4, 4, 2]
    assert np.allclose(vectors, whole, atol=1e-5)
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(rows, whole_rows, strict=True))


def test_the_encoder_computes_in_bf16_when_asked_and_its_vectors_match_fp32(
    demo_index: ArticleIndex, tmp_path: Path
) -> None:
    model = demo_index.encoder._model
    texts = ["Syrian officials denied the report.", "The harbor was built in 1820."]
    spans = [[(0, len(t))] for t in texts]
    fp32, fp32_rows = Encoder(model, bf16=False).encode_in_context(texts, spans)
    bf16, bf16_rows = Encoder(model, bf16=True).encode_in_context(texts, spans)
    queries = Encoder(model, bf16=True).encode(texts)
    # Computed otherwise (not the same bits), yet the same vectors for retrieval.
    assert not np.array_equal(fp32, bf16)
    assert queries.dtype == np.float32
    assert np.min(np.sum(fp32 * bf16, axis=1)) > 0.999
    assert np.min(np.sum(fp32 * queries, axis=1)) > 0.999
    assert all(
        np.min(np.sum(a * b, axis=1)) > 0.999 for a, b in zip(fp32_rows, bf16_rows, strict=True)
    )
    # The setting: "auto" follows the CPU (when the encoder runs on it).
    settings = make_settings(tmp_path, device="cpu")
    chosen = {
        (backend, precision): Encoder.from_settings(
            dataclasses.replace(settings, backend=backend, precision=precision)
        )._bf16
        for backend, precision in [("torch", "fp32"), ("torch", "bf16"), ("torch", "auto")]
    }
    assert chosen[("torch", "fp32")] is False and chosen[("torch", "bf16")] is True
    assert chosen[("torch", "auto")] is native_bf16()


def test_the_html_stack_is_imported_only_to_read_html(tmp_path: Path) -> None:
    """A rebuild of text files works without trafilatura (and lxml_html_clean) at all."""
    folder = write_articles(tmp_path / "articles")
    script = (
        "import sys; sys.modules['trafilatura'] = None; "
        "from index.sources.formats import load_sources; "
        "print(len(load_sources([sys.argv[1]]).articles))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "2"), done.stderr


def test_config_shows_each_setting_and_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text("[answer]\nmax_citations = 5\n")
    monkeypatch.setenv("CITEBOT_CONFIG", str(config))
    monkeypatch.setenv("CITEBOT_MIN_CONFIDENCE", "0.5")

    code, out, _ = run("config")
    lines = {line.split(" = ")[0]: line for line in out.splitlines()}
    assert code == 0
    assert out.startswith(f"# settings file: {config}")
    assert lines["answer.max_citations"].endswith(f"# {config}")
    assert lines["answer.min_confidence"].split("#")[1].strip() == "env CITEBOT_MIN_CONFIDENCE"
    assert lines["index.batch_size"].endswith("# default")

    code, out, _ = run("config", "--json")
    shown = json.loads(out)["settings"]
    assert shown["answer.min_confidence"] == {"value": 0.5, "origin": "env CITEBOT_MIN_CONFIDENCE"}

    code, out, _ = run("config", "--example")
    assert "[answer]" in out and "# min_confidence = 0.5" in out


def test_dash_h_is_help_everywhere() -> None:
    for command in ([], ["ask"], ["index", "rebuild"], ["config"]):
        code, out, _ = run(*command, "-h")
        assert code == 0 and out.startswith("Usage: "), command
    code, out, _ = run("-h")
    assert "CITEBOT_HOME" in out and "index.home" in out  # environment variables listed
    code, out, _ = run("serve", "-h")
    assert "CITEBOT_PORT" in out
