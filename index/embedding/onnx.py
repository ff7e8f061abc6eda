"""The "onnx" and "onnx-int8" encoder backends, and the sentence reader's "onnx-int8"
precision: the transformer runs in ONNX Runtime.

The ONNX file is exported from the local model on first use (nothing is downloaded) and
kept in a cache folder keyed by the model's weights, so later processes just load it.
Tokenization, batching by length, pooling and normalization stay sentence-transformers'.
Optimum, which sentence-transformers' own `backend="onnx"` needs, does not support
transformers 5, so the export uses `torch.onnx` and the quantization ONNX Runtime's tools.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Part of the cache key: bump it when the export or quantization recipe changes.
EXPORT_RECIPE = 1
# Model types ONNX Runtime's transformer optimizer fuses as BERT (attention, layer norms).
_BERT_LIKE = {"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra"}


def load_onnx_encoder(model_path: str, quantized: bool, cache_dir: Path | None = None) -> Any:
    """A SentenceTransformer whose transformer runs in ONNX Runtime, int8 when `quantized`.

    The first call for a model exports it into `cache_dir` (default: $XDG_CACHE_HOME or
    ~/.cache, then citebot/onnx), which takes a few seconds.
    """
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(model_path, device="cpu")
    transformer = encoder[0]
    model, tokenizer = transformer.auto_model, transformer.tokenizer
    transformer.model = onnx_module(model, tokenizer, quantized, cache_dir)
    return encoder


def onnx_module(
    model: Any,
    tokenizer: Any,
    quantized: bool,
    cache_dir: Path | None = None,
    output: str = "last_hidden_state",
    threads: int = 0,
) -> OnnxTransformerModel:
    """What stands in for the Hugging Face `model` inside a sentence-transformers module:
    the same model exported (and int8 when `quantized`) into `cache_dir`, its `output`
    ("last_hidden_state" for an encoder, "logits" for a cross-encoder) computed by ONNX
    Runtime on `threads` threads (0: one per physical core)."""
    onnx_file = exported_model(model, tokenizer, cache_dir or default_cache_dir(), output)
    if quantized:
        onnx_file = quantized_model(onnx_file)
    return OnnxTransformerModel(onnx_file, model.config, threads, output)


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "citebot" / "onnx"


class OnnxTransformerModel(torch.nn.Module):
    """Stands in for the Hugging Face model inside sentence-transformers' Transformer
    module: the same inputs and `output` (`last_hidden_state`, or a classifier's
    `logits`), computed by ONNX Runtime."""

    def __init__(
        self, onnx_file: Path, config: Any, threads: int = 0, output: str = "last_hidden_state"
    ) -> None:
        import onnxruntime

        super().__init__()
        self.config = config
        self.onnx_file = onnx_file
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per physical core
        self.session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output = output

    def forward(self, **inputs: Any) -> dict[str, torch.Tensor]:
        feeds = {name: _int64(inputs[name]) for name in self.input_names if name in inputs}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feeds:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        (computed,) = self.session.run([self.output], feeds)
        return {self.output: torch.from_numpy(computed)}


def exported_model(
    model: Any, tokenizer: Any, cache_dir: Path, output: str = "last_hidden_state"
) -> Path:
    """The model exported to ONNX with its `output` (and fused for BERT-like models),
    from the cache."""
    folder = cache_dir / _cache_key(model, output)
    target = folder / "model.onnx"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            raw = Path(scratch) / "raw.onnx"
            _export(model, tokenizer, raw, output)
            fused = _fuse(raw, model.config) or raw
            # Another process may be exporting too: each replaces the file whole.
            os.replace(fused, target)
    return target


def quantized_model(onnx_file: Path) -> Path:
    """The int8 version of `onnx_file` (weights per channel, activations at run time)."""
    target = onnx_file.with_name("model-int8.onnx")
    if not target.exists():
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(dir=onnx_file.parent) as scratch:
            out = Path(scratch) / "int8.onnx"
            quantize_dynamic(
                onnx_file,
                out,
                weight_type=QuantType.QInt8,
                # Per-tensor scales cost ~0.05 cosine to the float model; per channel ~0.006.
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            os.replace(out, target)
    return target


def _cache_key(model: Any, output: str) -> str:
    """Changes with the weights, the architecture, the output and the exporting libraries."""
    import onnxruntime

    digest = hashlib.sha256()
    if output != "last_hidden_state":  # (the encoders' keys as they were)
        digest.update(output.encode())
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    digest.update(f"{EXPORT_RECIPE} {torch.__version__} {onnxruntime.__version__}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def _export(model: Any, tokenizer: Any, path: Path, output: str) -> None:
    # The eager attention exports as the plain BERT pattern ONNX Runtime fuses; the SDPA
    # one exports with masking ops that cost half the int8 run time.
    model.set_attn_implementation("eager")
    model.eval()
    # Padding in the sample keeps the attention mask in the traced graph.
    sample = tokenizer(["a short one", "a somewhat longer sample sentence"], padding=True)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    args = tuple(torch.tensor(sample[n]) for n in names)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "tokens"} for n in names}
    axes[output] = {0: "batch", 1: "tokens"} if output == "last_hidden_state" else {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about shape checks that hold for every input it will see.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Output(model, names, output),
            args,
            str(path),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


class _Output(torch.nn.Module):
    def __init__(self, model: Any, names: list[str], output: str) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.output = output

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(**dict(zip(self.names, tensors, strict=True))), self.output)


def _fuse(path: Path, config: Any) -> Path | None:
    """Fuses attention and layer norms for BERT-like models; None for other models."""
    if config.model_type not in _BERT_LIKE:
        return None
    from onnxruntime.transformers.optimizer import optimize_model

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    optimized = optimize_model(
        str(path),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    fused = path.with_name("fused.onnx")
    optimized.save_model_to_file(str(fused))
    return fused


def _int64(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.numpy()
    return np.asarray(value, dtype=np.int64)
