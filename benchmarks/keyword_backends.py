"""Keyword indexes on disk against today's in-memory BM25 (benchmarks/bm25_memory.py, the
index every process held before): top-5 overlap with it, recall@5 of the gold passage
(SQuAD), query latency, build time, size on disk.

    python -m benchmarks.keyword_backends --data EVALDATA [--synthetic 100000] [--articles 20]

Backends: `sqlite` (citebot's, index/store/keyword.py: postings packed in SQLite, scores
from the stored counts; `--articles N` also times adding and removing N articles of 20
passages, one change each), `fts5` (SQLite FTS5's own `bm25()`), `tantivy` and `bm25s`
(memory-mapped loading) when installed. All index the same terms (index/text.py's
`terms` of each text and its title), so only the scoring and storage differ.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.bm25_memory import KeywordIndex as MemoryBM25
from benchmarks.common import add_data_argument, eval_data, squad_questions
from benchmarks.synthetic import TextGenerator
from index.text import terms

Search = Callable[[str], list[int]]


def squad_split_b(data: Path) -> tuple[list[str], list[str], list[tuple[str, int]]]:
    """SQuAD v1.1 dev, split B (docs/EVALUATION.md): paragraphs as passages, with their
    articles' titles, and each question with its paragraph's row."""
    articles = json.loads(squad_questions(data).read_text(encoding="utf-8"))["data"]
    chosen = set(sorted(a["title"] for a in articles)[1::2])
    texts, titles, questions = [], [], []
    for article in articles:
        if article["title"] not in chosen:
            continue
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append((qa["question"], len(texts)))
            texts.append(paragraph["context"])
            titles.append(article["title"].replace("_", " "))
    return texts, titles, questions


def synthetic(n: int, queries: int) -> tuple[list[str], list[str], list[tuple[str, int]]]:
    generator = TextGenerator(seed=1)
    texts = [generator.passage()[0] for _ in range(n)]
    titles = [generator.title() for _ in range(n)]
    rng = np.random.default_rng(2)
    rows = rng.choice(n, size=queries, replace=False)
    # A question shares a few words with its passage: 6 of one of its sentences.
    asked = []
    for row in rows:
        words = texts[row].split(". ")[int(rng.integers(0, 5))].split()
        asked.append((" ".join(rng.choice(words, min(6, len(words)), replace=False)), int(row)))
    return texts, titles, asked


class SqliteSearch:
    """citebot's keyword index, searched; it also times changes: `articles` added one
    change each (20 generated passages an article, as `citebot add` of one article), then
    removed one change each."""

    def __init__(self, folder: Path, texts: list[str], titles: list[str]) -> None:
        from index.store.keyword import KeywordFile, KeywordIndex

        self.file = KeywordFile.create(folder / "keywords.sqlite")
        ids = [str(i) for i in range(len(texts))]
        rows = zip(ids, texts, ({"title": title} for title in titles), strict=False)
        self.file.change(rows, [], "g")
        self.index = KeywordIndex.of_ids(self.file, ids)

    def __call__(self, query: str) -> list[int]:
        return [row for row, _ in self.index.top(query, 5)]

    def changes(self, articles: int) -> dict[str, float]:
        generator = TextGenerator(seed=3)
        added, removed = [], []
        for article in range(articles):
            title = generator.title()
            ids = [f"new{article}-{i}" for i in range(20)]
            start = time.perf_counter()
            rows = ((p, generator.passage()[0], {"title": title}) for p in ids)
            self.file.change(rows, [], "g")
            added.append((time.perf_counter() - start) * 1000)
        for article in range(articles):
            start = time.perf_counter()
            self.file.change([], [f"new{article}-{i}" for i in range(20)], "g")
            removed.append((time.perf_counter() - start) * 1000)
        return {
            "add_article_p50_ms": round(float(np.median(added)), 1),
            "add_article_max_ms": round(max(added), 1),
            "remove_article_p50_ms": round(float(np.median(removed)), 1),
            "remove_article_max_ms": round(max(removed), 1),
        }


def term_tokens(texts: list[str], titles: list[str]) -> tuple[list[list[str]], dict[str, str]]:
    """Each passage's terms (text, then title) as ASCII tokens no tokenizer splits."""
    names: dict[str, str] = {}
    docs = []
    for text, title in zip(texts, titles, strict=True):
        docs.append([names.setdefault(t, f"t{len(names)}") for t in terms(text) + terms(title)])
    return docs, names


def query_tokens(query: str, names: dict[str, str]) -> list[str]:
    return sorted({names[t] for t in terms(query) if t in names})


def build_fts5(folder: Path, texts: list[str], titles: list[str]) -> Search:
    docs, names = term_tokens(texts, titles)
    db = sqlite3.connect(folder / "fts5.sqlite")
    db.execute("CREATE VIRTUAL TABLE passages USING fts5(body, tokenize='ascii')")
    db.executemany(
        "INSERT INTO passages (rowid, body) VALUES (?, ?)",
        ((i + 1, " ".join(d)) for i, d in enumerate(docs)),
    )
    db.commit()

    def search(query: str) -> list[int]:
        tokens = query_tokens(query, names)
        if not tokens:
            return []
        found = db.execute(
            "SELECT rowid FROM passages WHERE passages MATCH ? ORDER BY bm25(passages) LIMIT 5",
            (" OR ".join(tokens),),
        )
        return [rowid - 1 for (rowid,) in found]

    return search


def build_tantivy(folder: Path, texts: list[str], titles: list[str]) -> Search:
    import tantivy

    docs, names = term_tokens(texts, titles)
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    builder.add_integer_field("row", stored=True, fast=True)
    schema = builder.build()
    index = tantivy.Index(schema, path=str(folder))
    writer = index.writer(heap_size=200_000_000, num_threads=1)
    for row, doc in enumerate(docs):
        writer.add_document(tantivy.Document(body=" ".join(doc), row=row))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()

    def search(query: str) -> list[int]:
        tokens = query_tokens(query, names)
        if not tokens:
            return []
        parsed = index.parse_query(" ".join(tokens), ["body"])
        hits = searcher.search(parsed, 5).hits
        return [searcher.doc(address)["row"][0] for _, address in hits]

    return search


def build_bm25s(folder: Path, texts: list[str], titles: list[str]) -> Search:
    import bm25s

    docs, names = term_tokens(texts, titles)
    model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    model.index(docs, show_progress=False)
    model.save(str(folder / "bm25s"))
    loaded = bm25s.BM25.load(str(folder / "bm25s"), mmap=True, show_progress=False)

    def search(query: str) -> list[int]:
        tokens = query_tokens(query, names)
        if not tokens:
            return []
        rows, scores = loaded.retrieve([tokens], k=5, show_progress=False, n_threads=1)
        return [int(r) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    return search


BACKENDS = {"sqlite": SqliteSearch, "fts5": build_fts5, "tantivy": build_tantivy}
BACKENDS["bm25s"] = build_bm25s


def measure(
    name: str,
    texts: list[str],
    titles: list[str],
    questions: list[tuple[str, int]],
    truth: list,
    articles: int = 0,
) -> dict:
    folder = Path(tempfile.mkdtemp(prefix=f"citebot-kw-{name}-"))
    try:
        start = time.perf_counter()
        search = BACKENDS[name](folder, texts, titles)
        built = time.perf_counter() - start
        times, overlap, hits = [], [], 0
        for (question, gold), expected in zip(questions, truth, strict=True):
            start = time.perf_counter()
            found = search(question)
            times.append((time.perf_counter() - start) * 1000)
            hits += gold in found
            overlap.append(len(set(found) & set(expected)) / len(expected) if expected else 1.0)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        changes = search.changes(articles) if articles and hasattr(search, "changes") else {}
        return changes | {
            "backend": name,
            "top5_overlap_with_memory": round(float(np.mean(overlap)), 4),
            "gold_recall_at_5": round(hits / len(questions), 4),
            "query_p50_ms": round(float(np.percentile(times, 50)), 2),
            "query_p95_ms": round(float(np.percentile(times, 95)), 2),
            "build_seconds": round(built, 1),
            "disk_mb": round(size / 1e6, 1),
        }
    except ImportError as missing:
        return {"backend": name, "skipped": f"not installed ({missing.name})"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(parser)
    parser.add_argument("--synthetic", type=int, default=0, help="N generated passages instead")
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--articles", type=int, default=0, help="then time adding and removing N articles (sqlite)"
    )
    args = parser.parse_args()
    if args.synthetic:
        texts, titles, questions = synthetic(args.synthetic, args.questions)
        corpus = f"synthetic, {args.synthetic} passages"
    else:
        texts, titles, questions = squad_split_b(eval_data(args.data))
        questions = questions[: args.questions]
        corpus = "SQuAD v1.1 dev split B paragraphs"
    memory = MemoryBM25(texts, titles)
    start = time.perf_counter()
    truth = [[row for row, _ in memory.top(q, 5)] for q, _ in questions]
    memory_ms = (time.perf_counter() - start) * 1000 / len(questions)
    gold = sum(g in t for (_, g), t in zip(questions, truth, strict=True)) / len(questions)
    print(
        json.dumps(
            {
                "corpus": corpus,
                "passages": len(texts),
                "questions": len(questions),
                "memory": {"gold_recall_at_5": round(gold, 4), "query_ms": round(memory_ms, 2)},
            }
        ),
        flush=True,
    )
    for name in args.backends.split(","):
        found = measure(name, texts, titles, questions, truth, args.articles)
        print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
