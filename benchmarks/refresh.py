"""A refresh of a feed whose entries did not change: what it downloads and embeds.

Serves an RSS feed of `--entries` pages on loopback, adds it to a fresh data directory,
then runs `refresh` twice with nothing changed and once after one new entry, and
prints, per step, the seconds, the requests the site received, the pages downloaded and
the passages embedded.

    python -m benchmarks.refresh --entries 50
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from benchmarks.common import bench_settings, machine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

PAGE = "Story {n} from the wire\n\nThe council of town {n} met on Monday. It voted {n} to 3."


def main() -> None:
    from fake_site import fake_site, rss

    from index.store.article_index import ArticleIndex

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/citebot-bench-refresh"))
    args = parser.parse_args()
    shutil.rmtree(args.scratch, ignore_errors=True)
    index = ArticleIndex(bench_settings(args.scratch / "home", sources=()))
    results: dict[str, object] = {"machine": machine(), "entries": args.entries}
    with fake_site() as site:
        entries = [(f"/story-{n}.txt", f"Story {n}") for n in range(args.entries)]
        for path, _ in entries:
            site.put(path, PAGE.format(n=path))
        feed = site.put("/feed.xml", rss(site, entries), content_type="application/rss+xml")

        def step(name: str, work) -> None:  # noqa: ANN001
            before = len(site.requests)
            start = time.perf_counter()
            report = work()
            results[name] = {
                "seconds": round(time.perf_counter() - start, 3),
                "requests": len(site.requests) - before,
                "downloads": report.downloads,
                "added": len(report.added),
                "changed": len(report.changed),
                "passages_embedded": report.passages_embedded,
            }
            print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)

        step("add the feed", lambda: index.add([feed]))
        step("refresh, nothing changed", index.refresh)
        step("refresh again, nothing changed", index.refresh)
        site.put("/story-new.txt", PAGE.format(n="new"))
        entries.insert(0, ("/story-new.txt", "Story new"))
        site.put("/feed.xml", rss(site, entries), content_type="application/rss+xml")
        step("refresh, one new entry", index.refresh)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
