"""The `citebot eval` command: read a set, index it (cached), ask it, print the numbers."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
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


READER_OFF_KEYS = (
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr",
    "best_sentence_hit@1",
    "citation_hit@1",
    "citation_hit@3",
    "answered",
    "unanswerable_answered",
    "min_confidence@90",
    "unanswerable_answered@90",
    "p50_ms",
    "p95_ms",
)


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["squad", "realtimeqa", "realtimeqa-weeks"]),
    required=True,
    help="squad: a SQuAD v1.1 JSON file; realtimeqa: a folder with qa/, gold/ and gcs/; "
    "realtimeqa-weeks: a folder with qa/ and gcs/ only (no gold articles), each week's "
    "questions asked against that week's search results.",
)
@click.option(
    "--weeks",
    type=click.IntRange(min=1),
    help="realtimeqa-weeks only: ask N weeks, sampled by --seed (default: every week).",
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
@click.option(
    "--followups",
    is_flag=True,
    help="SQuAD only: ask follow-up pairs instead (per paragraph, a question, then another "
    "with the subject it named replaced by a pronoun), each follow-up in the first one's "
    "thread and alone; --limit N asks N pairs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(
    path: Path,
    fmt: str,
    weeks: int | None,
    split: str | None,
    limit: int | None,
    seed: int,
    articles: int | None,
    distractors: int | None,
    unanswerable: int,
    baselines: bool,
    followups: bool,
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
      citebot eval --format realtimeqa-weeks realtimeqa_2023_2024/ --weeks 40 --baselines
      citebot eval --format squad dev-v1.1.json --split B --followups
    """
    from bot.evaluation.metrics import aggregate
    from bot.evaluation.readers import read_eval_set, read_realtimeqa_weeks
    from bot.evaluation.sampling import Sample, sample_weeks, select
    from bot.evaluation.splits import squad_split
    from index.errors import CitebotError
    from index.settings import load_settings

    settings = load_settings()
    if split and fmt != "squad":
        raise CitebotError("--split applies to SQuAD sets only (--format squad)")
    if weeks and fmt != "realtimeqa-weeks":
        raise CitebotError("--weeks applies to --format realtimeqa-weeks only")
    if followups and (fmt != "squad" or unanswerable or baselines):
        raise CitebotError(
            "--followups applies to SQuAD sets only (--format squad), without "
            "--unanswerable or --baselines"
        )
    if fmt == "realtimeqa-weeks":
        sets = sample_weeks(read_realtimeqa_weeks(path), weeks, seed)
    else:
        eval_set = read_eval_set(fmt, path)
        sets = [squad_split(eval_set, split) if split else eval_set]
    if followups:
        chosen = select(sets[0], Sample(seed, None, articles, distractors))
        summary = _follow_ups(chosen, settings, seed, limit) | {"path": str(path), "split": split}
        click.echo(json.dumps(summary, indent=2) if as_json else _follow_up_table(summary))
        return
    samples = [select(s, Sample(seed, limit, articles, distractors, unanswerable)) for s in sets]
    if not any(c.questions or c.unanswerable for c in samples):
        raise CitebotError(f"{path} has no questions to ask with these options")
    runs = [_run(chosen, settings, baselines) for chosen in samples]
    results = [r for run in runs for r in run.results]
    held_out = [r for run in runs for r in run.held_out]
    summary: dict[str, Any] = aggregate(results, held_out) | {
        "format": fmt,
        "path": str(path),
        "seed": seed,
        "split": split,
        "weeks": [run.name for run in runs] if fmt == "realtimeqa-weeks" else None,
        "articles": sum(run.articles for run in runs),
        "distractors": sum(run.distractors for run in runs),
        "passages": sum(run.passages for run in runs),
        "index_cached": all(run.cached for run in runs),
        "passages_embedded": sum(run.embedded for run in runs),
        "index_seconds": round(sum(run.index_seconds for run in runs), 1),
        "cache_dir": ", ".join(run.cache_dir for run in runs),
        "reader": settings.reader,
    }
    if baselines:
        from bot.evaluation.baselines import summarize

        summary["baselines"] = summarize([b for run in runs for b in run.baselines])
        if settings.reader != "none":
            off = aggregate(
                [r for run in runs for r in run.reader_off],
                [r for run in runs for r in run.reader_off_held_out],
            )
            summary["baselines"]["citebot with the reader off"] = {
                k: v for k, v in off.items() if k in READER_OFF_KEYS
            }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(_table(summary))


@dataclass
class _Run:
    name: str
    results: list
    held_out: list
    baselines: list
    reader_off: list
    reader_off_held_out: list
    articles: int
    distractors: int
    passages: int
    cached: bool
    embedded: int
    index_seconds: float
    cache_dir: str


def _run(chosen, settings, baselines: bool) -> _Run:
    """Indexes one set (cached), asks its questions, and with `baselines` also the plain
    methods and citebot with the reader off, on the same index."""
    from bot.answering.answerer import Answerer
    from bot.evaluation.runner import ask_all, build_index

    started = time.perf_counter()
    with _bar(f"Indexing {chosen.name}".strip(), len(chosen.articles), "article") as bar:
        built = build_index(chosen.articles, settings, bar.update)
    index_seconds = time.perf_counter() - started
    answerer = Answerer(built.index, built.index.settings)
    total = len(chosen.questions) + len(chosen.unanswerable)
    with _bar("Asking", total, "question") as bar:
        results = ask_all(answerer, chosen.questions, bar.update)
        held_out = ask_all(answerer, chosen.unanswerable, bar.update)
    plain, off, off_held = [], [], []
    if baselines:
        from bot.evaluation.baselines import ask_baselines

        with _bar("Baselines", len(chosen.questions), "question") as bar:
            plain = ask_baselines(
                answerer.retriever, built.index.encoder, chosen.questions, bar.update
            )
        if answerer.reader is not None:
            without = Answerer(built.index, built.index.settings, reader=None)
            with _bar("Reader off", total, "question") as bar:
                off = ask_all(without, chosen.questions, bar.update)
                off_held = ask_all(without, chosen.unanswerable, bar.update)
    return _Run(
        name=chosen.name,
        results=results,
        held_out=held_out,
        baselines=plain,
        reader_off=off,
        reader_off_held_out=off_held,
        articles=len(chosen.articles) - len(chosen.distractor_ids),
        distractors=len(chosen.distractor_ids),
        passages=len(built.index.stored_passages().ids),
        cached=built.cached,
        embedded=built.passages_embedded,
        index_seconds=index_seconds,
        cache_dir=str(built.cache_dir),
    )


FOLLOW_UP_ROWS = {
    "first": "first question",
    "written": "follow-up as SQuAD wrote it",
    "in_thread": "follow-up, thread's context",
    "alone": "follow-up alone",
}
FOLLOW_UP_KEYS = ("recall@1", "recall@5", "mrr", "best_sentence_hit@1", "citation_hit@1")


def _follow_ups(chosen, settings, seed: int, limit: int | None) -> dict[str, Any]:
    """Indexes `chosen` (cached), derives its follow-up pairs and asks them."""
    from bot.answering.answerer import Answerer
    from bot.evaluation.followups import ask_follow_ups, follow_up_pairs
    from bot.evaluation.metrics import aggregate
    from bot.evaluation.runner import build_index
    from index.errors import CitebotError

    pairs = follow_up_pairs(chosen, seed, limit)
    if not pairs:
        raise CitebotError("no follow-up pairs: no paragraph has two questions on one subject")
    with _bar("Indexing", len(chosen.articles), "article") as bar:
        built = build_index(chosen.articles, settings, bar.update)
    answerer = Answerer(built.index, built.index.settings)
    with _bar("Asking", len(pairs), "pair") as bar:
        results = ask_follow_ups(answerer, pairs, bar.update)
    rows = {
        key: {k: v for k, v in aggregate(getattr(results, key)).items() if k in FOLLOW_UP_KEYS}
        for key in FOLLOW_UP_ROWS
    }
    return {
        "format": "squad",
        "followups": len(pairs),
        "seed": seed,
        "articles": len(chosen.articles),
        "passages": len(built.index.stored_passages().ids),
        "index_cached": built.cached,
        "cache_dir": str(built.cache_dir),
        "reader": settings.reader,
        "rows": rows,
    }


def _follow_up_table(summary: dict[str, Any]) -> str:
    reused = "reused from cache" if summary["index_cached"] else "built"
    head = (
        f"{summary['followups']} follow-up pairs; {summary['articles']} articles, "
        f"{summary['passages']} passages (index {reused}: {summary['cache_dir']})"
    )
    header = f"{'':<30}" + "".join(f"{LABELS[k]:>22}" for k in FOLLOW_UP_KEYS)
    rows = [
        f"{label:<30}" + "".join(f"{summary['rows'][key][k]:>22}" for k in FOLLOW_UP_KEYS)
        for key, label in FOLLOW_UP_ROWS.items()
    ]
    return "\n".join([head, header, *rows])


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
