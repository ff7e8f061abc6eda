"""The `citebot eval` command: read a set, index it (cached), ask it, print the numbers."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

LABELS = {
    "recall@1": "passage recall@1",
    "recall@5": "passage recall@5",
    "recall@10": "passage recall@10",
    "mrr": "MRR@10",
    "citation_hit@1": "citation hit@1",
    "citation_hit@3": "citation hit@3",
    "citation_hit@1_when_answered": "hit@1 when answered",
    "best_sentence_hit@1": "best sentence hit@1",
    "answered": "answered",
    "unanswerable_answered": "unanswerable answered",
    "p50_ms": "latency p50 (ms)",
    "p95_ms": "latency p95 (ms)",
}


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["squad", "realtimeqa"]),
    required=True,
    help="squad: a SQuAD v1.1 JSON file; realtimeqa: a folder with qa/, gold/ and gcs/.",
)
@click.option(
    "--split",
    type=click.Choice(["A", "B"]),
    help="SQuAD only: index and ask only the articles of split A (sorted titles, even "
    "positions: what the reader trains on) or B (odd positions: what measures it).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Ask N questions, sampled by --seed.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every sample.")
@click.option("--articles", type=click.IntRange(min=1), help="Index only N gold articles.")
@click.option("--distractors", type=click.IntRange(min=0), help="Index at most N distractors.")
@click.option(
    "--unanswerable",
    type=click.IntRange(min=0),
    default=0,
    help="Also ask K questions whose gold articles are left out of the index.",
)
@click.option(
    "--baselines",
    is_flag=True,
    help="Also measure the plain methods (BM25, dense, their fusion; first / closest "
    "sentence) on the same index.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(
    path: Path,
    fmt: str,
    split: str | None,
    limit: int | None,
    seed: int,
    articles: int | None,
    distractors: int | None,
    unanswerable: int,
    baselines: bool,
    as_json: bool,
) -> None:
    """Measure retrieval and citations on a question set (SQuAD v1.1 or RealTime QA).

    Indexes the set's articles into an index of its own, cached under the data
    directory's eval-cache/ and reused while the articles and index settings are the
    same, then asks every question as `citebot ask` does. Prints passage recall@1/5/10
    and MRR, citation hit@1/3 (a cited sentence contains a gold answer), the share
    answered and the latency of each answer.

    \b
    Examples:
      citebot eval --format squad dev-v1.1.json --limit 300
      citebot eval --format realtimeqa realtimeqa_2022/ --distractors 300 --json
    """
    from bot.answering import Answerer
    from bot.evaluation.metrics import aggregate
    from bot.evaluation.readers import read_eval_set
    from bot.evaluation.runner import ask_all, build_index
    from bot.evaluation.sampling import Sample, select
    from bot.evaluation.splits import squad_split
    from index.errors import CitebotError
    from index.settings import load_settings

    settings = load_settings()
    eval_set = read_eval_set(fmt, path)
    if split:
        eval_set = squad_split(eval_set, split)
    chosen = select(eval_set, Sample(seed, limit, articles, distractors, unanswerable))
    if not chosen.questions and not chosen.unanswerable:
        raise CitebotError(f"{path} has no questions to ask with these options")
    started = time.perf_counter()
    with _bar("Indexing", len(chosen.articles), "article") as bar:
        built = build_index(chosen.articles, settings, bar.update)
    index_seconds = time.perf_counter() - started
    answerer = Answerer(built.index, built.index.settings)
    total = len(chosen.questions) + len(chosen.unanswerable)
    with _bar("Asking", total, "question") as bar:
        results = ask_all(answerer, chosen.questions, bar.update)
        held_out = ask_all(answerer, chosen.unanswerable, bar.update)
    summary: dict[str, Any] = aggregate(results, held_out) | {
        "format": fmt,
        "path": str(path),
        "seed": seed,
        "split": split,
        "articles": len(chosen.articles) - len(chosen.distractor_ids),
        "distractors": len(chosen.distractor_ids),
        "passages": len(built.index.stored_passages().ids),
        "index_cached": built.cached,
        "passages_embedded": built.passages_embedded,
        "index_seconds": round(index_seconds, 1),
        "cache_dir": str(built.cache_dir),
    }
    if baselines:
        from bot.evaluation.baselines import ask_baselines, summarize

        with _bar("Baselines", len(chosen.questions), "question") as bar:
            plain = ask_baselines(
                answerer.retriever, built.index.encoder, chosen.questions, bar.update
            )
        summary["baselines"] = summarize(plain)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(_table(summary))


def _table(summary: dict[str, Any]) -> str:
    reused = "reused from cache" if summary["index_cached"] else "built"
    head = (
        f"{summary['questions']} questions; {summary['articles']} articles and "
        f"{summary['distractors']} distractors, {summary['passages']} passages "
        f"(index {reused}: {summary['cache_dir']})"
    )
    rows = [f"{label:<24}{summary[key]}" for key, label in LABELS.items() if key in summary]
    for name, figures in summary.get("baselines", {}).items():
        rows.append(f"baseline {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return "\n".join([head, *rows])


def _bar(label: str, total: int, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit=unit, file=sys.stderr, disable=None)
