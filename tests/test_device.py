"""index.device and the batch size that goes with it: where the encoder runs, how many
passages it embeds at once, and one clear line where the device cannot be had."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import make_settings
from test_hardening import assert_one_line, run
from test_index import TEXTS, write_articles

from index.embedding.encoder import BATCH_SIZES, Encoder, load_encoder
from index.store.article_index import ArticleIndex
from index.store.changing import BATCHES_PER_RUN

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this PyTorch has CUDA")


@pytest.mark.parametrize("command", [["index", "rebuild"], ["ask", "How many ferries?"]])
def test_a_device_that_is_no_device_is_one_line_naming_the_setting(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITEBOT_DEVICE", "gpu")

    code, _, err = run(*command)

    assert_one_line(code, err, "index.device (CITEBOT_DEVICE) must be one of auto, cpu, cuda")


@no_cuda
def test_cuda_without_cuda_is_one_line_and_the_index_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_articles(tmp_path / "articles")
    assert run("index", "rebuild", "--sources", str(folder))[0] == 0
    (folder / "orchard.txt").write_text("Orchard\n\nThe apple harvest failed after a frost.")
    monkeypatch.setenv("CITEBOT_DEVICE", "cuda")

    rebuilt = run("index", "rebuild", "--sources", str(folder))
    asked = run("ask", "How many ferries can the harbour berth?")

    for code, _, err in (rebuilt, asked):
        assert_one_line(
            code,
            err,
            f"index.device (CITEBOT_DEVICE) is 'cuda' but this PyTorch ({torch.__version__})",
            "install a CUDA build of torch",
            'set index.device = "auto" or "cpu"',
        )
    monkeypatch.delenv("CITEBOT_DEVICE")
    code, out, _ = run("status", "--json")
    assert code == 0 and json.loads(out)["articles"] == 2
    code, out, _ = run("ask", "How many ferries can the harbour berth?")
    assert code == 0 and "six ferries" in out


def test_cuda_with_an_onnx_backend_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    folder = write_articles(tmp_path / "articles")
    monkeypatch.setenv("CITEBOT_BACKEND", "onnx")
    monkeypatch.setenv("CITEBOT_DEVICE", "cuda")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where exports would go

    code, _, err = run("index", "rebuild", "--sources", str(folder))

    assert_one_line(code, err, "index.backend 'onnx' runs on the CPU only", "index.device")
    assert not (tmp_path / "cache").exists()


def test_auto_runs_where_pytorch_finds_a_device_with_that_device_s_batch(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    expected = "cuda" if torch.cuda.is_available() else "cpu"

    encoder = Encoder.from_settings(settings)

    assert (settings.device, settings.batch_size) == ("auto", None)
    assert encoder._model.device.type == expected
    assert encoder.embed_batch_size == BATCH_SIZES[expected]


def test_a_batch_size_set_wins_over_the_device_s(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, device="cpu", batch_size=7)
    encoder = Encoder.from_settings(settings)
    assert (encoder._model.device.type, encoder.embed_batch_size) == ("cpu", 7)


class _CountingEncoder(Encoder):
    """Records how many passages each call of the pipeline's encoder step gets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._calls: list[int] = []

    def encode_in_context(self, texts, spans):  # noqa: ANN001, ANN201
        self._calls.append(len(texts))
        return super().encode_in_context(texts, spans)


def test_a_rebuild_hands_the_encoder_a_few_batches_of_articles_at_a_time(tmp_path: Path) -> None:
    """Short articles (one passage each) go through the pipeline BATCHES_PER_RUN batches
    at a time, not one a call: the batch size is what the encoder, a GPU, is fed."""
    stories = {f"story-{i}.txt": f"Story {i}\n\nThe council met on day {i}." for i in range(5)}
    folder = write_articles(tmp_path / "articles", TEXTS | stories)
    settings = make_settings(tmp_path / "home", batch_size=1)
    encoder = _CountingEncoder(load_encoder(settings.model_path), batch_size=1)
    steps: list[int] = []

    report = ArticleIndex(settings, encoder=encoder).rebuild([str(folder)], progress=steps.append)

    assert report.ok and report.passages_embedded == 7
    assert BATCHES_PER_RUN == 4 and encoder._calls == [4, 3]
    assert steps == [1] * 7  # the progress bar still counts articles


def test_texts_batched_longest_first_come_back_in_their_order(demo_index: ArticleIndex) -> None:
    model = demo_index.encoder._model
    texts = ["Short.", "A much longer text about the harbour and its six ferries.", "Mid one."]
    spans = [[(0, len(t))] for t in texts]

    vectors, rows = Encoder(model, batch_size=2).encode_in_context(texts, spans)

    alone = [Encoder(model).encode_in_context([t], [s]) for t, s in zip(texts, spans, strict=True)]
    assert np.allclose(vectors, np.concatenate([v for v, _ in alone]), atol=1e-4)
    assert all(np.allclose(r, a[0], atol=1e-4) for r, (_, a) in zip(rows, alone, strict=True))
