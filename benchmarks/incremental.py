"""Incremental updates of the benchmark index: a rebuild where nothing changed, one add.

Works on a copy of `--home` (built by `benchmarks.indexing`, about 10,000 articles), so
the shared index stays as built. Each step runs in this process, with the encoder already
loaded, and as the `citebot` command a person would type.

    python -m benchmarks.incremental
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from benchmarks.common import (
    CITEBOT,
    DEFAULT_CORPUS,
    DEFAULT_HOME,
    bench_settings,
    machine,
    run_timed,
    timed,
)

NEW_ARTICLE = """Ferry service to Saltholm resumes

The ferry service between Kastrup and the island of Saltholm resumed on {day} after
a winter break. The operator said two crossings a day would run until October.
"""


def write_article(folder: Path, day: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"saltholm-{day.lower()}.txt"
    path.write_text(NEW_ARTICLE.format(day=day), encoding="utf-8")
    return path


def _progress(results: dict[str, object]) -> None:
    """The figures so far on stderr: the whole run takes long on a big index."""
    print(json.dumps(results, default=str), file=sys.stderr, flush=True)


def main() -> None:
    from index.store.article_index import ArticleIndex

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/citebot-bench-incremental"))
    args = parser.parse_args()
    shutil.rmtree(args.scratch, ignore_errors=True)
    home = args.scratch / "home"
    shutil.copytree(args.home, home)
    articles = args.scratch / "new"
    settings = bench_settings(home)
    index = ArticleIndex(settings)
    index.encoder.encode(["warm up"])
    results: dict[str, object] = {"machine": machine(), "before": index.status().to_json()}

    with timed() as rebuild:
        report = index.rebuild([str(args.corpus)])
    results["rebuild_unchanged_in_process"] = {
        "seconds": round(rebuild.wall, 2),
        "passages_embedded": report.passages_embedded,
        "summary": report.summary(),
    }
    monday = write_article(articles, "Monday")
    with timed() as add:
        report = index.add([str(monday)])
    results["add_one_in_process"] = {
        "seconds": round(add.wall, 2),
        "passages_embedded": report.passages_embedded,
        "summary": report.summary(),
    }

    _progress(results)
    env = {"CITEBOT_HOME": str(home)}
    sources = ["--sources", str(args.corpus), "--sources", str(monday)]
    cli_rebuild, out = run_timed([str(CITEBOT), "index", "rebuild", *sources], env)
    results["rebuild_unchanged_cli"] = {
        "seconds": round(cli_rebuild.wall, 2),
        "cpu_seconds": round(cli_rebuild.cpu, 2),
        "output": out,
    }
    tuesday = write_article(articles, "Tuesday")
    cli_add, out = run_timed([str(CITEBOT), "add", str(tuesday)], env)
    _progress(results)
    results["add_one_cli"] = {
        "seconds": round(cli_add.wall, 2),
        "cpu_seconds": round(cli_add.cpu, 2),
        "output": out,
    }
    cli_start, _ = run_timed([str(CITEBOT), "--version"], env)
    results["cli_start_seconds"] = round(cli_start.wall, 2)
    results["after"] = ArticleIndex(settings).status().to_json()
    print(json.dumps(results, indent=2))
    shutil.rmtree(args.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
