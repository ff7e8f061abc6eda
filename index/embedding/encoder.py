"""The sentence-transformers encoder, loaded once per process, as a llama-index embedding."""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
from contextlib import AbstractContextManager, nullcontext
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from index.errors import MissingExtraError, SettingsError
from index.settings import Settings

log = logging.getLogger(__name__)

# Passages per encoder batch when index.batch_size is unset. CPU: measured
# (docs/BENCHMARKS.md, "Batch size per device"). CUDA: not measured (no GPU here); many
# passages per kernel launch in well under 1 GB (docs/DEPLOYMENT.md, "Indexing on a GPU").
BATCH_SIZES = {"cpu": 32, "cuda": 128}


@lru_cache(maxsize=4)
def load_encoder(model: str, backend: str = "torch", device: str = "cpu") -> Any:
    """Loads a SentenceTransformer (the torch backend on `device`, the ONNX ones on the
    CPU); cached so a process loads each model once."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # The CLI has its own progress bar; the per-load "Loading weights" bar is noise.
    transformers_logging.disable_progress_bar()

    if backend != "torch":
        require_onnx(backend)
    try:
        if backend != "torch":
            from index.embedding.onnx import load_onnx_encoder

            return load_onnx_encoder(model, quantized=backend == "onnx-int8")
        return SentenceTransformer(model, device=device)
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"index.model (CITEBOT_MODEL) {model!r} could not be loaded: {exc}. "
            'Use "bundled", a local sentence-transformers folder, or a model name '
            "already in the Hugging Face cache."
        ) from None


def require_onnx(backend: str) -> None:
    """Raises MissingExtraError unless ONNX Runtime and onnx (the `onnx` extra) are installed."""
    require_onnx_for(f"index.backend (CITEBOT_BACKEND) is {backend!r}", 'the backend to "torch"')


def require_onnx_for(setting: str, instead: str) -> None:
    """Raises MissingExtraError naming `setting` (and what it is set to), and `instead`
    (the value that needs neither), unless ONNX Runtime and onnx are installed."""
    missing = [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"{setting}, which needs {' and '.join(missing)}: "
            f"pip install 'citebot[onnx]', or set {instead}"
        )


@cache
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX)."""
    import torch

    return bool(
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """The precision to compute in: "auto" becomes "bf16" where the device (this CPU, or
    the GPU) has it natively, else "fp32"; any other value is kept."""
    if precision != "auto":
        return precision
    if device == "cuda":
        import torch

        # Natively (Ampere and later), not emulated as on a T4 or a V100.
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    return "bf16" if native_bf16() else "fp32"


def resolve_device(device: str, backend: str = "torch") -> str:
    """The device the encoder runs on: "auto" becomes "cuda" where the torch backend has a
    CUDA GPU, else "cpu". Raises SettingsError for "cuda" where it cannot be had."""
    if device == "cpu":
        return "cpu"
    if backend != "torch":
        if device == "cuda":
            raise SettingsError(
                f"index.device (CITEBOT_DEVICE) is 'cuda' but index.backend {backend!r} runs "
                'on the CPU only: set index.backend = "torch" to encode on the GPU, or '
                'index.device = "auto" or "cpu"'
            )
        return "cpu"
    missing = cuda_missing()
    if missing is None:
        return "cuda"
    if device == "cuda":
        raise SettingsError(
            f"index.device (CITEBOT_DEVICE) is 'cuda' but {missing}: install a CUDA build of "
            'torch (docs/DEPLOYMENT.md, "Indexing on a GPU") or set index.device = "auto" '
            'or "cpu"'
        )
    return "cpu"


def cuda_missing() -> str | None:
    """Why PyTorch cannot compute on a CUDA GPU here ("this PyTorch (2.x) finds no CUDA
    GPU"), or None where it can: for the encoder's device and for training's."""
    import torch

    if torch.cuda.is_available():
        return None
    found = "is built without CUDA" if torch.version.cuda is None else "finds no CUDA GPU"
    return f"this PyTorch ({torch.__version__}) {found}"


def cpu_model() -> str:
    """This CPU's model name, as /proc/cpuinfo gives it (else what `platform` knows, which
    may be empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def set_torch_threads(threads: int) -> None:
    """Sets how many threads PyTorch uses per operation in this process; 0 keeps its
    default (one per core). Has no effect on the ONNX backends."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    log.info("PyTorch uses %d thread(s) per operation", torch.get_num_threads())


class Encoder(BaseEmbedding):
    """llama-index embedding over a SentenceTransformer; vectors are unit length. With
    `bf16`, the model computes under bfloat16 autocast on its device (torch models only)."""

    _model: Any = PrivateAttr()
    _bf16: bool = PrivateAttr()

    def __init__(self, model: Any, batch_size: int = 32, bf16: bool = False, **kwargs: Any) -> None:
        super().__init__(model_name="citebot-encoder", embed_batch_size=batch_size, **kwargs)
        self._model = model
        self._bf16 = bf16

    @classmethod
    def from_settings(cls, settings: Settings) -> Encoder:
        device = resolve_device(settings.device, settings.backend)
        precision = resolve_precision(settings.precision, device)
        bf16 = settings.backend == "torch" and precision == "bf16"
        batch_size = settings.batch_size or BATCH_SIZES[device]
        model = load_encoder(settings.model_path, settings.backend, device)
        log.info(
            "encoder runs on %s in %s, %d passages a batch",
            device,
            "bf16" if bf16 else "fp32",
            batch_size,
        )
        return cls(model, batch_size, bf16=bf16)

    def _computing(self) -> AbstractContextManager:
        if not self._bf16:
            return nullcontext()
        import torch

        return torch.autocast(self._model.device.type, dtype=torch.bfloat16)

    @property
    def dimension(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._computing():
            vectors = self._model.encode(
                texts,
                batch_size=self.embed_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def encode_in_context(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """One encoder pass over `texts` gives each text's vector and, by mean-pooling the
        token vectors over character spans, a vector per span read in its context.

        Returns the text vectors and, per text, one unit row per span. A span cut off by
        the model's length limit is encoded on its own instead. The texts are encoded
        `embed_batch_size` at a time and only the pooled rows are kept, so memory is
        bounded by the batch, not by how many texts (one long article's passages) come in.
        They are batched longest first, as sentence-transformers orders one call's texts:
        a batch of like lengths pads little.
        """
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        text_vectors: list[np.ndarray] = []
        span_vectors: list[np.ndarray] = []
        size = self.embed_batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            vectors, rows = self._encode_batch([texts[i] for i in batch], [spans[i] for i in batch])
            text_vectors.append(vectors)
            span_vectors += rows
        if not text_vectors:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        restore = np.argsort(order)
        return _unit(np.concatenate(text_vectors)[restore]), [span_vectors[i] for i in restore]

    def _encode_batch(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        # output_value=None keeps every token vector of the call: hence one batch per call.
        with self._computing():
            outputs = self._model.encode(
                texts, batch_size=self.embed_batch_size, output_value=None, show_progress_bar=False
            )
        offsets = self._model.tokenizer(
            texts,
            return_offsets_mapping=True,
            truncation=True,
            max_length=self._model.max_seq_length,
        )["offset_mapping"]
        # The token vectors stay on the model's device until here.
        text_vectors = np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outputs])
        span_vectors = []
        for output, offset, text_spans, text in zip(outputs, offsets, spans, texts, strict=True):
            tokens = output["token_embeddings"].float().cpu().numpy()[: len(offset)]
            offset = np.asarray(offset)
            rows = []
            for start, end in text_spans:
                inside = (
                    (offset[:, 0] >= start) & (offset[:, 1] <= end) & (offset[:, 1] > offset[:, 0])
                )
                rows.append(tokens[inside].mean(axis=0) if inside.any() else None)
            cut = [i for i, row in enumerate(rows) if row is None]
            if cut:
                alone = self.encode([text[text_spans[i][0] : text_spans[i][1]] for i in cut])
                for i, vector in zip(cut, alone, strict=True):
                    rows[i] = vector
            span_vectors.append(_unit(np.stack(rows)) if rows else np.zeros((0, self.dimension)))
        return text_vectors, span_vectors


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32)
