"""The sentence reader: a cross-encoder that reads the question together with one candidate
sentence (and that sentence's title and the sentence before it) and scores how well the
sentence answers it.

citebot ships one, trained here from all-MiniLM-L6-v2 on SQuAD (bot/models/reader/,
its model card beside the weights; `citebot train-reader` retrains it). `answer.reader`
names another sentence-transformers cross-encoder (a name or a folder), or "none".
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.errors import CitebotError
from index.settings import READER_PRECISIONS

BUNDLED_READER = Path(__file__).resolve().parent.parent / "models" / "reader"
# Tokens of a (question, sentence with its context) pair: the sentence comes first, so a
# long context is what gets cut.
MAX_LENGTH = 128

log = logging.getLogger(__name__)


class ReaderError(CitebotError):
    """The configured reader cannot be loaded; the message names the file and setting."""


def reader_text(sentence: str, previous: str, title: str) -> str:
    """What the reader reads beside the question: the sentence, then its article's title
    and the sentence before it (what "it" or "he" may refer to)."""
    context = " ".join(part for part in (f"{title}." if title else "", previous) if part)
    return f"{sentence} [SEP] {context}" if context else sentence


class SentenceReader:
    """Scores (question, sentence) pairs with a cross-encoder; higher is a better answer.

    The model is loaded on first use (once, also when several threads ask at the same
    time), or at once with `load()`. `precision` is how it computes: "fp32", "bf16"
    (the weights cast once, fast where the CPU has AVX-512 BF16 or AMX), "int8" (linear layers
    quantized after loading), "onnx-int8" (the model exported once and quantized per
    channel, run by ONNX Runtime: the fastest where the CPU has no bf16; needs
    citebot[onnx]) or "auto" (bf16 where native, else fp32);
    docs/BENCHMARKS.md measures what each costs and saves.
    """

    def __init__(self, name_or_path: str, precision: str = "auto") -> None:
        if precision not in READER_PRECISIONS:
            raise ReaderError(
                f"answer.reader_precision is {precision!r}: use one of "
                + ", ".join(READER_PRECISIONS)
            )
        self.name_or_path = name_or_path
        self.precision = precision
        self._model = None
        self._lock = threading.Lock()

    @classmethod
    def from_setting(cls, value: str, precision: str = "auto") -> SentenceReader | None:
        """The reader `answer.reader` names: "bundled", "none", or a model name or folder.
        One reader per name and precision in a process: every answerer shares its model."""
        if value == "none":
            return None
        return _shared(cls, str(BUNDLED_READER) if value == "bundled" else value, precision)

    def load(self) -> SentenceReader:
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self

    def _load(self):
        path = Path(self.name_or_path).expanduser()
        looks_local = path.is_absolute() or self.name_or_path.startswith((".", "~"))
        if looks_local and not (path / "config.json").is_file():
            raise ReaderError(
                f"the reader {path} has no config.json: point answer.reader (CITEBOT_READER) "
                'at a cross-encoder folder, or set it to "bundled" or "none"'
            )
        import torch
        from sentence_transformers import CrossEncoder
        from transformers.utils import logging as transformers_logging

        # Its "Loading weights" bar would land among `citebot serve`'s log lines (the
        # encoder turns it off too, but the reader may load first); the line below says it.
        transformers_logging.disable_progress_bar()
        try:
            model = CrossEncoder(
                str(path) if path.exists() else self.name_or_path,
                max_length=MAX_LENGTH,
                device="cpu",
                model_kwargs={"dtype": torch.float32},
            )
        except Exception as exc:  # a corrupt or foreign folder fails in many ways
            raise ReaderError(
                f"the reader {self.name_or_path} cannot be loaded ({type(exc).__name__}: "
                f"{_first_line(exc)}): point answer.reader (CITEBOT_READER) at a "
                'sentence-transformers cross-encoder, or set it to "none"'
            ) from None
        model.eval()
        # Here, not at the top: the encoder module imports llama-index (seconds), which
        # `citebot --help` reaches through the training command's BUNDLED_READER.
        from index.embedding.encoder import resolve_precision

        self.precision = resolve_precision(self.precision)
        if self.precision == "onnx-int8":
            model[0].model = _onnx_int8(model[0].model, model.tokenizer)
        elif self.precision == "int8":
            hf_model = model[0].model
            model[0].model = torch.ao.quantization.quantize_dynamic(
                hf_model, {torch.nn.Linear}, dtype=torch.qint8
            )
        elif self.precision == "bf16":
            # Cast once rather than autocast: autocast re-casts every weight on every call
            # (docs/EVALUATION.md: 15% of the reader's time on an AMX host).
            model[0].model.to(torch.bfloat16)
        log.info("reader %s loaded (%s)", self.name_or_path, self.precision)
        return model

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """One raw score (a logit) per text, in order. Each distinct text is read once:
        the same sentence from two copies of a wire story costs one pair."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        import torch

        model = self.load()._model
        distinct = list(dict.fromkeys(texts))
        with torch.inference_mode():
            scores = model.predict(
                [(question, text) for text in distinct],
                batch_size=len(distinct),
                activation_fn=torch.nn.Identity(),
                show_progress_bar=False,
                convert_to_tensor=True,
            )
        by_text = dict(zip(distinct, scores.float().numpy().reshape(-1).tolist(), strict=True))
        return np.array([by_text[text] for text in texts], dtype=np.float32)


def _onnx_int8(hf_model, tokenizer):
    """The classifier exported to ONNX, quantized to int8 and run by ONNX Runtime (on
    torch's number of threads, which `slack.torch_threads` sets), from its cache."""
    import torch

    from index.embedding.encoder import require_onnx_for
    from index.embedding.onnx import onnx_module

    require_onnx_for(
        'answer.reader_precision (CITEBOT_READER_PRECISION) is "onnx-int8"',
        'the precision to "fp32"',
    )
    threads = torch.get_num_threads()
    return onnx_module(hf_model, tokenizer, True, output="logits", threads=threads)


@functools.cache
def _shared(cls: type[SentenceReader], name_or_path: str, precision: str) -> SentenceReader:
    return cls(name_or_path, precision)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "no message"
