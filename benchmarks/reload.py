"""What a running process pays to bring its passages and keyword index up to date.

On a copy of the benchmark index (built by `benchmarks.indexing`, 21,305 passages), in
one warm process: the first load (reading every passage from Chroma, then building the
keyword index, each also timed alone, the build twice: the first build also stems every
distinct word); the reload after another process's `citebot add`
(and whether the dense search then finds the new article: the embedded store must be
reopened for that); an add in this process and the reload after it; with `--rebuild`,
the reload after another process's rebuild that changed one article (a new build).

    python -m benchmarks.reload [--home DIR] [--rebuild]

The scripts only use what older commits have too, so the same command measures a
checkout of another commit (see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DEFAULT_CORPUS,
    DEFAULT_HOME,
    bench_settings,
    machine,
    run_timed,
    timed,
)
from benchmarks.incremental import write_article

QUESTION = "When does the ferry service to Saltholm resume after the winter break?"


def found_by_dense_search(index: Any, stored: Any, source: Path) -> bool:
    """Whether `source`'s passage is among the 5 nearest to QUESTION by the dense search
    alone (the new articles differ only in their day, so any of them may come first)."""
    embedding = index.encoder.get_query_embedding(QUESTION)
    nearest = [
        stored.metadatas[stored.ids.position(pid)] for pid, _ in stored.dense_search(embedding, 5)
    ]
    return any(Path(metadata.source).name == source.name for metadata in nearest)


def read_all(collection: Any) -> tuple[list[str], list[str]]:
    """Every passage's text and title, read in pages as the index reads them."""
    texts, titles, offset = [], [], 0
    while True:
        page = collection.get(include=["documents", "metadatas"], limit=2000, offset=offset)
        if not page["ids"]:
            return texts, titles
        texts += page["documents"]
        titles += [m["title"] for m in page["metadatas"]]
        offset += len(page["ids"])


def main() -> None:
    from index.store.article_index import ArticleIndex
    from index.store.keyword import KeywordFile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/citebot-bench-reload"))
    parser.add_argument("--rebuild", action="store_true", help="also time a rebuild's reload")
    args = parser.parse_args()
    shutil.rmtree(args.scratch, ignore_errors=True)
    home = args.scratch / "home"
    shutil.copytree(args.home, home)
    settings = bench_settings(home)
    env = {"CITEBOT_HOME": str(home)}
    citebot = [sys.executable, "-c", "from bot.cli import main; main()"]
    results: dict[str, Any] = {"machine": machine()}

    index = ArticleIndex(settings)
    index.encoder.encode(["warm up"])
    with timed() as reading:
        texts, titles = read_all(index.active_collection())
    metadatas = ({"title": title} for title in titles)
    rows = [(str(i), *row) for i, row in enumerate(zip(texts, metadatas, strict=False))]
    with timed() as building:
        KeywordFile.create(args.scratch / "keywords-1.sqlite").change(rows, [], "")
    with timed() as building_again:
        KeywordFile.create(args.scratch / "keywords-2.sqlite").change(rows, [], "")
    del texts, titles, rows
    with timed() as first:
        stored = index.stored_passages()
    results["passages"] = len(stored.ids)
    results["first_load"] = {
        "seconds": round(first.wall, 2),
        "cpu_seconds": round(first.cpu, 2),
        "read_passages_seconds": round(reading.wall, 2),
        "build_keyword_index_seconds": round(building.wall, 2),
        "build_keyword_index_again_seconds": round(building_again.wall, 2),
        "note": "read and build (a keyword file) timed alone, before the load, which "
        "finds the build's keyword file made by the rebuild",
    }

    monday = write_article(args.scratch / "new", "Monday")
    run_timed([*citebot, "add", str(monday)], env)
    with timed() as reload:
        stored = index.stored_passages()
    results["reload_after_other_process_add"] = {
        "seconds": round(reload.wall, 2),
        "cpu_seconds": round(reload.cpu, 2),
        "dense_search_finds_it": found_by_dense_search(index, stored, monday),
    }

    tuesday = write_article(args.scratch / "new", "Tuesday")
    with timed() as add:
        index.add([str(tuesday)])
    with timed() as reload:
        stored = index.stored_passages()
    results["add_in_process"] = {"seconds": round(add.wall, 2)}
    results["reload_after_own_add"] = {
        "seconds": round(reload.wall, 2),
        "cpu_seconds": round(reload.cpu, 2),
        "dense_search_finds_it": found_by_dense_search(index, stored, tuesday),
    }
    print(json.dumps(results), file=sys.stderr, flush=True)

    if args.rebuild:
        wednesday = write_article(args.scratch / "new", "Wednesday")
        sources = ["--sources", str(args.corpus), "--sources", str(wednesday)]
        rebuild, _ = run_timed([*citebot, "index", "rebuild", *sources], env)
        with timed() as reload:
            stored = index.stored_passages()
        results["reload_after_other_process_rebuild"] = {
            "rebuild_seconds": round(rebuild.wall, 2),
            "seconds": round(reload.wall, 2),
            "cpu_seconds": round(reload.cpu, 2),
            "dense_search_finds_it": found_by_dense_search(index, stored, wednesday),
        }
    print(json.dumps(results, indent=2))
    shutil.rmtree(args.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
