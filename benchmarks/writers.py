"""Two `citebot add` writers against one Chroma server, each with a data directory of its
own, adding the same generated articles at once, against one writer adding them alone
(docs/BENCHMARKS.md, "Several writers"). Each writer loads its model first and starts
adding when all are ready, so the figures are the adds' own time. Prints one JSON line.

    python -m benchmarks.writers --articles 100 --repeat 2 [--two-threads]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import bench_settings, chroma_server, machine, offline_env
from benchmarks.synthetic import TextGenerator

SEED = 26
# Sentences per article: two passages of the default five sentences, and one of three.
SENTENCES = 13


def write_articles(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = TextGenerator(seed=SEED, vocabulary=20_000)
    for n in range(count):
        body = " ".join(text.sentence() for _ in range(SENTENCES))
        (folder / f"article-{n:04}.txt").write_text(f"{text.title()}\n\n{body}\n", "utf-8")
    return folder


def one_writer() -> None:
    """A writer process: READY_FILE WRITERS THREADS SOURCE..., prints its report."""
    ready, writers, threads, *sources = sys.argv[1:]
    from index.embedding.encoder import set_torch_threads
    from index.settings import load_settings
    from index.store.article_index import ArticleIndex

    set_torch_threads(int(threads))
    index = ArticleIndex(load_settings())
    index.encoder  # noqa: B018 - loaded before the clock starts
    Path(ready).touch()
    while len(list(Path(ready).parent.glob("*.ready"))) < int(writers):
        time.sleep(0.01)
    started = time.time()
    report = index.add(sources)
    ended = time.time()
    out = {"embedded": report.passages_embedded, "shared": report.shared}
    print(json.dumps(out | {"started": started, "ended": ended, "added": len(report.added)}))


def run_writers(
    url: str, folder: Path, articles: Path, writers: int, threads: int, attempt: int
) -> dict:
    barrier = folder / f"barrier-{attempt}"
    barrier.mkdir()
    command = [sys.executable, "-c", "from benchmarks.writers import one_writer; one_writer()"]
    processes = [
        subprocess.Popen(
            [*command, str(barrier / f"{n}.ready"), str(writers), str(threads), str(articles)],
            env=offline_env(folder / f"home-{attempt}-{n}") | {"CITEBOT_CHROMA_URL": url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    reports = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a writer failed:\n{err[-3000:]}")
        reports.append(json.loads(out))
    seconds = max(r["ended"] for r in reports) - min(r["started"] for r in reports)
    return {
        "writers": writers,
        "torch_threads_each": threads,
        "seconds": round(seconds, 2),
        "passages_embedded": [r["embedded"] for r in reports],
        "articles_shared": [r["shared"] for r in reports],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def emptied(url: str, folder: Path) -> str:
    """The server at `url`, every collection of the run before deleted."""
    from index.store.chroma import open_chroma

    client = open_chroma(bench_settings(folder / "cleaner", chroma_url=url))
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of one writer and two, alternated"
    )
    parser.add_argument(
        "--two-threads", action="store_true", help="also one writer with two torch threads"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citebot-writers-") as temporary:
        folder = Path(temporary)
        articles = write_articles(folder / "articles", args.articles)
        runs: list[dict[str, Any]] = []
        with chroma_server(folder / "data", timeout=60) as (url, _):
            # One writer with one thread against two with one each (the machine's two
            # CPUs), alternated; and one writer with both CPUs' threads.
            plan = [(1, 1), (2, 1)] * args.repeat + ([(1, 2)] if args.two_threads else [])
            for attempt, (writers, threads) in enumerate(plan):
                run = run_writers(emptied(url, folder), folder, articles, writers, threads, attempt)
                runs.append(run)
    passages = sum(runs[0]["passages_embedded"])
    one = sorted(r["seconds"] for r in runs if r["writers"] == 1 and r["torch_threads_each"] == 1)
    two = sorted(r["seconds"] for r in runs if r["writers"] == 2)
    print(
        json.dumps(
            {
                "benchmark": "writers",
                "command": " ".join(["python -m benchmarks.writers", *sys.argv[1:]]),
                "articles": args.articles,
                "passages": passages,
                "runs": runs,
                # Medians: the runs alternate, so both see the same spread of load.
                "two_writers_speedup": round(one[len(one) // 2] / two[len(two) // 2], 2),
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
