"""Indexing throughput: `citebot index rebuild` against the bare encoder, in one run.

Builds the benchmark index from scratch in `--home` (the data directory the latency,
incremental and memory benchmarks reuse), timing the real command, then encodes a sample
of the very texts the pipeline embedded (title line plus passage) with the encoder alone.

    python -m benchmarks.indexing --fresh
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from benchmarks.common import (
    CITEBOT,
    DEFAULT_CORPUS,
    DEFAULT_HOME,
    add_data_argument,
    bench_settings,
    ensure_corpus,
    machine,
    run_timed,
    timed,
)


def embedded_texts(corpus: Path, settings) -> list[str]:
    """What the ingestion pipeline hands the encoder for every passage of the corpus."""
    from llama_index.core.schema import MetadataMode

    from index.embedding.passages import passage_node, split_passages
    from index.sources.formats import load_sources

    articles = load_sources([str(corpus)], settings.json_keys).articles
    return [
        passage_node(passage).get_content(metadata_mode=MetadataMode.EMBED)
        for article in articles
        for passage in split_passages(article, settings.passage_sentences, settings.passage_chars)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--fresh", action="store_true", help="delete --home first")
    parser.add_argument("--sample", type=int, default=2000, help="passages for the encoder")
    add_data_argument(parser)
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(args.home, ignore_errors=True)
    if (args.home / "chroma").exists():
        raise SystemExit(f"{args.home} already holds an index: pass --fresh to rebuild it")
    corpus = ensure_corpus(args.corpus, args.data)
    settings = bench_settings(args.home)
    env = {"CITEBOT_HOME": str(args.home)}

    rebuild, _ = run_timed([str(CITEBOT), "index", "rebuild", "--sources", str(corpus)], env)
    _, status_out = run_timed([str(CITEBOT), "index", "status", "--json"], env)
    status = json.loads(status_out)

    from index.embedding.encoder import Encoder

    texts = embedded_texts(corpus, settings)
    sample = random.Random(0).sample(texts, min(args.sample, len(texts)))
    encoder = Encoder.from_settings(settings)
    encoder.encode(sample[:32])  # warm up
    with timed() as raw:
        encoder.encode(sample)

    pipeline_rate = status["passages"] / rebuild.wall
    raw_rate = len(sample) / raw.wall
    print(
        json.dumps(
            {
                "machine": machine(),
                "backend": settings.backend,
                "device": str(encoder._model.device),
                "batch_size": encoder.embed_batch_size,
                "articles": status["articles"],
                "passages": status["passages"],
                "rebuild_seconds": round(rebuild.wall, 1),
                "rebuild_cpu_seconds": round(rebuild.cpu, 1),
                "rebuild_passages_per_s": round(pipeline_rate, 2),
                "encoder_sample": len(sample),
                "encoder_seconds": round(raw.wall, 1),
                "encoder_passages_per_s": round(raw_rate, 2),
                "pipeline_to_encoder": round(pipeline_rate / raw_rate, 3),
                "pipeline_to_encoder_cpu": round(
                    (status["passages"] / rebuild.cpu) / (len(sample) / raw.cpu), 3
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
