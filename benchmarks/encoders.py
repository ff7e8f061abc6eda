"""Encoder throughput and agreement: PyTorch against the "onnx" and "onnx-int8" backends.

Encodes SQuAD dev paragraphs (title line plus text, as the index embeds them) with each
backend in one process, interleaving the backends over `--rounds` so that load from other
processes hits them alike, and keeps each backend's best round. Also: threads, batch size,
and calling the encoder 32 passages at a time (as llama-index does) instead of once.

    python -m benchmarks.encoders --passages 500
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import bench_settings, machine, timed
from benchmarks.corpus import squad_records
from index.embedding.encoder import load_encoder
from index.embedding.onnx import OnnxTransformerModel, load_onnx_encoder


def squad_texts(count: int) -> list[str]:
    records = list(squad_records())[:count]
    return [f"title: {r['title']}\n\n{r['text']}" for r in records]


def set_threads(encoder: object, threads: int) -> None:
    model = encoder[0].auto_model
    if isinstance(model, OnnxTransformerModel):
        encoder[0].model = OnnxTransformerModel(model.onnx_file, model.config, threads)
    else:
        torch.set_num_threads(threads)


def measure(
    runs: dict[str, Callable[[], np.ndarray]], rounds: int, count: int, reference: str
) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            with timed() as timing:
                vectors[name] = run()
            row = {"per_s": count / timing.wall, "per_cpu_s": count / timing.cpu}
            if name not in best or row["per_s"] > best[name]["per_s"]:
                best[name] = row
    base = best[reference]["per_s"]
    for name, row in best.items():
        cosine = (vectors[name] * vectors[reference]).sum(axis=1)
        row |= {
            "vs_torch": row["per_s"] / base,
            "cosine_min": float(cosine.min()),
            "cosine_mean": float(cosine.mean()),
        }
    return {k: {m: round(v, 4) for m, v in row.items()} for k, row in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=500)
    parser.add_argument("--sweep-passages", type=int, default=200, help="for batch and threads")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="ONNX cache folder")
    args = parser.parse_args()
    model_path = bench_settings(Path("/tmp/unused")).model_path
    all_texts = squad_texts(args.passages)
    encoders = {
        "torch": load_encoder(model_path, "torch"),
        "onnx": load_onnx_encoder(model_path, quantized=False, cache_dir=args.cache),
        "onnx-int8": load_onnx_encoder(model_path, quantized=True, cache_dir=args.cache),
    }

    def encode(
        name: str, batch_size: int = 32, per_call: int = 0, bf16: bool = False, count: int = 0
    ) -> Callable[[], np.ndarray]:
        encoder = encoders[name]
        texts = all_texts[: count or len(all_texts)]

        def run() -> np.ndarray:
            size = per_call or len(texts)
            calls = [texts[i : i + size] for i in range(0, len(texts), size)]
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
            with autocast:
                return np.concatenate(
                    [
                        encoder.encode(c, batch_size=batch_size, normalize_embeddings=True)
                        for c in calls
                    ]
                )

        return run

    for encoder in encoders.values():
        encoder.encode(all_texts[:8])  # warm up
    sweep = min(args.sweep_passages, len(all_texts))
    results: dict[str, object] = {"machine": machine(), "passages": len(all_texts)}
    results["backends"] = measure(
        {
            "torch": encode("torch"),
            "onnx": encode("onnx"),
            "onnx-int8": encode("onnx-int8"),
            "torch, index.precision bf16": encode("torch", bf16=True),
            "torch, 32 per encode call": encode("torch", per_call=32),
            "onnx-int8, 32 per encode call": encode("onnx-int8", per_call=32),
        },
        args.rounds,
        len(all_texts),
        "torch",
    )
    results["sweep_passages"] = sweep
    results["batch_size"] = measure(
        {"torch": encode("torch", count=sweep)}
        | {
            f"{n} batch {b}": encode(n, b, count=sweep)
            for n in ("torch", "onnx-int8")
            for b in (8, 32, 128)
        },
        1,
        sweep,
        "torch",
    )
    threads = {}
    for count in (1, 2):
        for name in ("torch", "onnx-int8"):
            set_threads(encoders[name], count)
        threads[count] = measure(
            {"torch": encode("torch", count=sweep), "onnx-int8": encode("onnx-int8", count=sweep)},
            1,
            sweep,
            "torch",
        )
    results["threads"] = threads
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
