"""The sentence-transformers encoder, loaded once per process, as a llama-index embedding."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from index.errors import SettingsError
from index.settings import Settings


@lru_cache(maxsize=4)
def load_encoder(model: str, backend: str = "torch") -> Any:
    """Loads a SentenceTransformer; cached so a process loads each model once."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # The CLI has its own progress bar; the per-load "Loading weights" bar is noise.
    transformers_logging.disable_progress_bar()

    kwargs: dict[str, Any] = {"device": "cpu"}
    if backend != "torch":
        from index.onnx import onnx_model_kwargs

        kwargs |= onnx_model_kwargs(model, quantized=backend == "onnx-int8")
    try:
        return SentenceTransformer(model, **kwargs)
    except (OSError, ValueError) as exc:
        raise SettingsError(
            f"index.model (CITEBOT_MODEL) {model!r} could not be loaded: {exc}. "
            'Use "bundled", a local sentence-transformers folder, or a model name '
            "already in the Hugging Face cache."
        ) from None


class Encoder(BaseEmbedding):
    """llama-index embedding over a SentenceTransformer; vectors are unit length."""

    _model: Any = PrivateAttr()

    def __init__(self, model: Any, batch_size: int = 32, **kwargs: Any) -> None:
        super().__init__(model_name="citebot-encoder", embed_batch_size=batch_size, **kwargs)
        self._model = model

    @classmethod
    def from_settings(cls, settings: Settings) -> Encoder:
        return cls(load_encoder(settings.model_path, settings.backend), settings.batch_size)

    @property
    def dimension(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(
            texts,
            batch_size=self.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
