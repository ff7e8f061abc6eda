"""Where indexing time goes besides the encoder: a profiled rebuild of a small corpus.

Rebuilds the first `--articles` records of a corpus file (default: the news part of the
benchmark corpus) into a temporary data directory under cProfile, then encodes the same
texts with the encoder alone, once in one call (the encoder sorts them by length) and
once a batch at a time in corpus order (as the pipeline hands them over). With
`--threads 1` CPU seconds are a fair measure even when other processes share the machine.
`--device` and `--batch-size` are index.device and index.batch_size (unset: the device's).

    python -m benchmarks.pipeline_overhead --articles 300 --threads 1 [--batch-size 64]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import pstats
import tempfile
from pathlib import Path

from benchmarks.common import (
    DEFAULT_CORPUS,
    add_data_argument,
    bench_settings,
    ensure_corpus,
    machine,
    timed,
)


def main() -> None:
    from index.store.article_index import ArticleIndex

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS / "realtimeqa-2022.jsonl")
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--top", type=int, default=25, help="profile lines to print")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="unset: the device's")
    add_data_argument(parser)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ensure_corpus(args.corpus.parent, args.data)
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus.jsonl"
        with args.corpus.open(encoding="utf-8") as lines:
            records = [json.loads(line) for line in itertools.islice(lines, args.articles)]
        corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        settings = bench_settings(
            Path(scratch) / "home", device=args.device, batch_size=args.batch_size
        )
        index = ArticleIndex(settings)
        index.encoder.encode(["warm up"])
        profile = cProfile.Profile()
        with timed() as rebuild:
            profile.enable()
            report = index.rebuild([str(corpus)])
            profile.disable()
        passages = report.passages_embedded
        stored = index.stored_passages()
        page = stored.collection.get(include=["documents", "metadatas"])
        texts = [
            f"title: {meta['title']}\n\n{text}"
            for meta, text in zip(page["metadatas"], page["documents"], strict=True)
        ]

    encoder = index.encoder
    batch = encoder.embed_batch_size
    with timed() as whole:
        encoder.encode(texts)
    with timed() as chunked:
        for start in range(0, len(texts), batch):
            encoder.encode(texts[start : start + batch])

    def rates(timing) -> dict[str, float]:
        return {
            "seconds": round(timing.wall, 2),
            "cpu_seconds": round(timing.cpu, 2),
            "per_s": round(passages / timing.wall, 2),
            "per_cpu_s": round(passages / timing.cpu, 2),
        }

    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    result = {
        "machine": machine(),
        "articles": len(records),
        "passages": passages,
        "device": str(encoder._model.device),
        "precision": "bf16" if encoder._bf16 else "fp32",
        "batch_size": batch,
        "rebuild": rates(rebuild),
        "encoder_one_call": rates(whole),
        "encoder_a_batch_per_call": rates(chunked),
    }
    result["rebuild_to_encoder_one_call_cpu"] = round(
        result["rebuild"]["per_cpu_s"] / result["encoder_one_call"]["per_cpu_s"], 3
    )
    result["rebuild_to_encoder_a_batch_per_call_cpu"] = round(
        result["rebuild"]["per_cpu_s"] / result["encoder_a_batch_per_call"]["per_cpu_s"], 3
    )
    print(json.dumps(result, indent=2))
    print(out.getvalue())


if __name__ == "__main__":
    main()
