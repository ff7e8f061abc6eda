"""Answer latency of a warm process, with its breakdown, and the process's peak memory.

Answers SQuAD dev questions from the benchmark index (built by `benchmarks.indexing`),
or RealTime QA questions on their own dates (`--realtimeqa DIR`, for an index of news
such as the one `citebot eval --format realtimeqa` builds), timing `Answerer.answer` as
a whole and, inside it, the query embedding, the dense search, the keyword scoring, the
candidate passages' read from the store and the reader. Each question is also answered
with the reader off (`answer_ms_reader_off`), in the same run.

    python -m benchmarks.latency --questions 200 --threads 1 --data ~/evaldata
    python -m benchmarks.latency --home ~/.local/share/citebot/eval-cache/KEY \
        --realtimeqa $CITEBOT_EVAL_DATA/realtimeqa_2022 --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    DEFAULT_HOME,
    add_data_argument,
    bench_settings,
    eval_data,
    machine,
    squad_questions,
    timed,
)


class Stopwatch:
    """Adds up the time spent in wrapped callables, per label, for the current question."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.current[label] += time.perf_counter() - start

        return timed


class TimedEncoder:
    """The index's encoder, with its query and batch calls timed."""

    def __init__(self, encoder: Any, stopwatch: Stopwatch) -> None:
        self._encoder = encoder
        self.get_query_embedding = stopwatch.wrap("query embedding", encoder.get_query_embedding)
        self.encode = stopwatch.wrap("sentence encoding", encoder.encode)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)


def questions(
    count: int, realtimeqa: Path | None, data: Path | None
) -> list[tuple[str, date | None]]:
    """`count` questions (all of RealTime QA's when there are fewer), with their dates."""
    if realtimeqa:
        from bot.evaluation.readers import read_realtimeqa

        pool = [
            (q.question, date.fromisoformat(q.question_date) if q.question_date else None)
            for q in read_realtimeqa(realtimeqa).questions
        ]
        return random.Random(0).sample(pool, min(count, len(pool)))
    squad = json.loads(squad_questions(eval_data(data)).read_text(encoding="utf-8"))["data"]
    pool = [(qa["question"], None) for a in squad for p in a["paragraphs"] for qa in p["qas"]]
    return random.Random(0).sample(pool, count)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1)


def main() -> None:
    from bot.answering.answerer import Answerer
    from index.store.article_index import ArticleIndex

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--realtimeqa", type=Path, help="ask RealTime QA questions instead")
    add_data_argument(parser)
    parser.add_argument("--reader-candidates", type=int, help="answer.reader_candidates")
    parser.add_argument("--reader-precision", help="answer.reader_precision")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    changes: dict[str, object] = {}
    if args.reader_precision:
        changes["reader_precision"] = args.reader_precision
    if args.reader_candidates:
        changes["reader_candidates"] = args.reader_candidates
    settings = bench_settings(args.home, **changes)
    index = ArticleIndex(settings)
    answerer = Answerer(index, settings)
    without_reader = Answerer(index, settings, reader=None)
    if answerer.reader is not None:
        answerer.reader.load()
    asked = questions(args.questions + args.warmup, args.realtimeqa, args.data)
    rss_start = rss_mb()
    with timed() as load:
        index.stored_passages()  # the passages and the keyword index, as after a change
    for question, asked_on in asked[: args.warmup]:
        answerer.answer(question, asked_on)
    rss_warm = rss_mb()

    stopwatch = Stopwatch()
    index._encoder = TimedEncoder(index.encoder, stopwatch)
    stored = index.stored_passages()
    # The snapshot is a frozen dataclass; timing wrappers go on this one instance only.
    object.__setattr__(stored, "dense_search", stopwatch.wrap("dense search", stored.dense_search))
    object.__setattr__(stored, "read", stopwatch.wrap("candidate reads", stored.read))
    stored.keywords.scores = stopwatch.wrap("keyword scoring", stored.keywords.scores)
    index.stored_passages = stopwatch.wrap("index state checks", index.stored_passages)
    if answerer.reader is not None:
        answerer.reader.score = stopwatch.wrap("reader", answerer.reader.score)
    labels = ("query embedding", "dense search", "keyword scoring", "candidate reads", "reader")

    totals: list[float] = []
    reader_off: list[float] = []
    parts: dict[str, list[float]] = defaultdict(list)
    answered = 0
    for question, asked_on in asked[args.warmup :]:
        start = time.perf_counter()
        without_reader.answer(question, asked_on)
        reader_off.append(time.perf_counter() - start)
        stopwatch.current.clear()
        start = time.perf_counter()
        answered += answerer.answer(question, asked_on).answered
        totals.append(time.perf_counter() - start)
        for label in labels:
            parts[label].append(stopwatch.current[label])
        parts["index state checks"].append(stopwatch.current["index state checks"])
        parts["other"].append(totals[-1] - sum(stopwatch.current.values()))

    status = index.status()
    query_p50 = percentile(parts["query embedding"], 50)
    print(
        json.dumps(
            {
                "machine": machine(),
                "backend": settings.backend,
                "torch_threads": torch_threads(),
                "chroma": "server" if settings.chroma_url else "embedded",
                "articles": status.articles,
                "passages": status.passages,
                "questions": len(totals),
                "answered": answered,
                "reader": settings.reader,
                "reader_candidates": settings.reader_candidates,
                "reader_precision": answerer.reader.precision if answerer.reader else None,
                "answer_ms": {"p50": percentile(totals, 50), "p95": percentile(totals, 95)},
                "answer_ms_reader_off": {
                    "p50": percentile(reader_off, 50),
                    "p95": percentile(reader_off, 95),
                },
                "breakdown_ms": {
                    label: {"p50": percentile(v, 50), "p95": percentile(v, 95)}
                    for label, v in parts.items()
                },
                "keyword_index_load_s": round(load.wall, 2),
                "answer_p50_to_query_embedding_p50": round(percentile(totals, 50) / query_p50, 2),
                "rss_mb": {
                    "index_opened": round(rss_start),
                    "after_warmup": round(rss_warm),
                    "end": round(rss_mb()),
                    "peak": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
