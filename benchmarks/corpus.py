"""Writes the benchmark corpus as JSON Lines exports into a folder outside the repository.

The text comes from the evaluation data folder (--data or CITEBOT_EVAL_DATA; its layout is
in docs/EVALUATION.md, "The data") and is never copied into the repository: SQuAD v1.1
dev paragraphs (CC BY-SA) are one article each, and the RealTime QA 2022 search results
(news articles, internal evaluation material only) are cut at paragraph breaks into parts
of about `--part-chars` characters, each part an article, so that the corpus has about
10,000 articles and 20,000 passages.

    python -m benchmarks.corpus /tmp/citebot-bench-corpus --data ~/evaldata
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import add_data_argument, eval_data, squad_questions

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def squad_records(data: Path) -> Iterator[dict[str, str]]:
    """One record per SQuAD dev paragraph, titled by its Wikipedia article."""
    squad = json.loads(squad_questions(data).read_text(encoding="utf-8"))["data"]
    for article in squad:
        title = article["title"].replace("_", " ")
        for number, paragraph in enumerate(article["paragraphs"]):
            yield {
                "title": title,
                "text": paragraph["context"],
                "url": f"https://en.wikipedia.org/wiki/{article['title']}#p{number}",
            }


def realtimeqa_articles(data: Path) -> Iterator[dict[str, str]]:
    """Unique non-empty RealTime QA search results, in file order."""
    seen: set[str] = set()
    for path in sorted((data / "realtimeqa_2022" / "gcs").glob("*_gcs.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                for result in json.loads(line)["search_result"]:
                    url = result["url"].split("#")[0]
                    if url in seen or not result.get("text", "").strip():
                        continue
                    seen.add(url)
                    yield {
                        "title": result.get("title") or url,
                        "text": result["text"],
                        "url": url,
                        "published": result.get("publish_date", "").replace("/", "-"),
                    }


def parts(text: str, part_chars: int) -> list[str]:
    """`text` cut at paragraph breaks into runs of about `part_chars` characters."""
    out: list[str] = []
    current = ""
    for paragraph in _PARAGRAPH_BREAK.split(text):
        if current and len(current) + len(paragraph) > part_chars:
            out.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current.strip():
        out.append(current)
    return out


def write_corpus(folder: Path, data: Path, news_parts: int, part_chars: int) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"squad": 0, "news": 0}
    with (folder / "squad-dev.jsonl").open("w", encoding="utf-8") as out:
        for record in squad_records(data):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            counts["squad"] += 1
    if news_parts <= 0:
        return counts
    with (folder / "realtimeqa-2022.jsonl").open("w", encoding="utf-8") as out:
        for article in realtimeqa_articles(data):
            for number, text in enumerate(parts(article["text"], part_chars)):
                if counts["news"] >= news_parts:
                    return counts
                suffix = f" (part {number + 1})" if number else ""
                record = article | {
                    "title": article["title"] + suffix,
                    "text": text,
                    "url": f"{article['url']}#part-{number + 1}",
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                counts["news"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write the .jsonl files")
    parser.add_argument("--news-parts", type=int, default=8000, help="news articles to write")
    parser.add_argument("--part-chars", type=int, default=1200, help="size of a news part")
    add_data_argument(parser)
    args = parser.parse_args()
    counts = write_corpus(args.folder, eval_data(args.data), args.news_parts, args.part_chars)
    print(json.dumps({"folder": str(args.folder), "articles": counts}))


if __name__ == "__main__":
    main()
