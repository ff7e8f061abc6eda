"""The ONNX Runtime encoder backends: exported offline once, close to the PyTorch vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_settings

from index.embedding.encoder import load_encoder
from index.embedding.onnx import OnnxTransformerModel, load_onnx_encoder

pytestmark = pytest.mark.slow

SENTENCES = [
    "Syrian officials assure that this is a lie to justify the aggressive policy of the "
    "United States.",
    "The Denver Broncos defeated the Carolina Panthers 24-10 to earn their third title.",
    "Oil prices quadrupled after the embargo.",
    "who denied the crematorium claim",
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_settings(tmp_path_factory.mktemp("home")).model_path


def vectors(encoder: object) -> np.ndarray:
    return encoder.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)


def test_int8_encoder_gives_nearly_the_torch_vectors(onnx_cache: Path, model_path: str) -> None:
    int8 = load_onnx_encoder(model_path, quantized=True, cache_dir=onnx_cache)

    cosine = (vectors(int8) * vectors(load_encoder(model_path, "torch"))).sum(axis=1)

    assert isinstance(int8[0].auto_model, OnnxTransformerModel)
    assert int8[0].auto_model.onnx_file.name == "model-int8.onnx"
    assert cosine.min() >= 0.98, cosine


def test_export_is_made_once_and_reused(onnx_cache: Path, model_path: str) -> None:
    load_onnx_encoder(model_path, quantized=True, cache_dir=onnx_cache)
    files = {p: p.stat().st_mtime_ns for p in onnx_cache.rglob("*") if p.is_file()}

    float32 = load_onnx_encoder(model_path, quantized=False, cache_dir=onnx_cache)

    assert sorted(p.name for p in files) == ["model-int8.onnx", "model.onnx"]
    assert {p: p.stat().st_mtime_ns for p in onnx_cache.rglob("*") if p.is_file()} == files
    assert float32[0].auto_model.onnx_file.name == "model.onnx"


def test_backend_setting_selects_onnx_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = make_settings(tmp_path / "home", backend="onnx-int8")

    encoder = load_encoder(settings.model_path, settings.backend)

    assert isinstance(encoder[0].auto_model, OnnxTransformerModel)
    assert (tmp_path / "cache" / "citebot" / "onnx").is_dir()
    assert vectors(encoder).shape == (len(SENTENCES), 384)
