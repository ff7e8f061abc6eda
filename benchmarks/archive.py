"""A newsroom's archive with synthetic vectors: how one answering process's memory, start
and answer time grow with the number of passages.

    python -m benchmarks.archive --passages N [--home DIR] [--server]

Builds a store of N passages in DIR (a temporary folder by default) without an encoder:
generated sentences (benchmarks/synthetic.py), random unit vectors for passages and
sentences, stored as `citebot index rebuild` stores them (a build, its keyword index,
the switch). Then a fresh process opens the index and answers questions made of words of
random passages (reader off, the question's vector a random unit vector), and prints one
JSON line: passages, serve_peak_rss_mb (that process's peak RSS), open_seconds (its first
read of the index), first_answer_seconds (from the process's start, imports included, to
its first answer, which loads the vector index), answer_p50_ms, answer_p95_ms,
keyword_recall_at_5_vs_memory (top-5 overlap of the on-disk keyword index with today's
in-memory BM25, benchmarks/bm25_memory.py). `--server` keeps the store in a Chroma server
(`chroma run`, its data in DIR/chroma-server) instead of the embedded store; the server's
own peak RSS (`server_peak_rss_mb`, the build's included when this run built the store)
and its RSS after the answers (`server_rss_mb`) are then reported too, and the build's
`build_seconds`. A DIR that already holds a store of N passages is reused (a fresh
server then only opens it and serves); `--serve-from` answers with another commit's code
(docs/BENCHMARKS.md, "A newsroom's archive").
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks.common import bench_settings, chroma_server, machine, peak_rss_mb, rss_mb
from benchmarks.synthetic import TextGenerator

DIMENSIONS = 384  # the bundled all-MiniLM-L6-v2's
ARTICLE_PASSAGES = 20  # passages per generated article
QUESTION_SEED = 7


class RandomQueries:
    """Stands in for the encoder at question time: a unit vector from the question's hash."""

    def get_query_embedding(self, question: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
        return (vector / np.linalg.norm(vector)).tolist()


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build(home: Path, passages: int, url: str | None) -> None:
    """A store of `passages` generated passages in `home` (or the server `url`), made
    active."""
    from index.embedding.vectors import SENTENCE_VECTORS, pack
    from index.store.article_index import ArticleIndex

    index = ArticleIndex(bench_settings(home, chroma_url=url), encoder=RandomQueries())
    generator = TextGenerator(seed=0)
    rng = np.random.default_rng(0)
    collection = index.builds.create()
    # A server refuses a request of tens of MB (the sentence vectors are ~5 KB a passage).
    batch = min(index.client.get_max_batch_size(), 500 if url else 1 << 30)
    ids, texts, vectors, metadatas = [], [], [], []
    for row in range(passages):
        article, number = divmod(row, ARTICLE_PASSAGES)
        if number == 0:
            title = generator.title()
            published = f"20{10 + article % 15:02d}-{1 + article % 12:02d}-{1 + article % 28:02d}"
        text, spans = generator.passage()
        ids.append(f"archive-{article}#{number}")
        texts.append(text)
        metadatas.append(
            {
                "article_id": f"archive/{article}",
                "title": title,
                "source": f"archive/{article}",
                "url": "",
                "published": published,
                "content_hash": "synthetic",
                "number": number,
                "start": 0,
                "end": len(text),
                "sentences": json.dumps(spans),
                # One vector per sentence, then one per sentence with the one before.
                SENTENCE_VECTORS: pack(unit_vectors(rng, 2 * len(spans))),
                "origin": "",
                "passages": ARTICLE_PASSAGES,
            }
        )
        vectors.append(unit_vectors(rng, 1)[0])
        if len(ids) == batch or row == passages - 1:
            collection.add(ids=ids, embeddings=vectors, documents=texts, metadatas=metadatas)
            ids, texts, vectors, metadatas = [], [], [], []
    index.keyword_files.prepare(collection)
    index.builds.switch(collection, rebuilt=True)
    index.keyword_files.synced(collection, index.connection.synced or "")


def questions(home: Path, url: str | None, count: int) -> list[str]:
    """Questions of 6 words from a sentence of a random passage each."""
    from index.store.article_index import ArticleIndex

    collection = ArticleIndex(bench_settings(home, chroma_url=url)).active_collection()
    total = collection.count()
    rng = np.random.default_rng(QUESTION_SEED)
    asked = []
    for offset in rng.choice(total, size=count, replace=False):
        text = collection.get(limit=1, offset=int(offset), include=["documents"])["documents"][0]
        words = text.split(". ")[int(rng.integers(0, 5))].rstrip(".").split()
        asked.append("who " + " ".join(rng.choice(words, min(6, len(words)), replace=False)))
    return asked


def serve(home: Path, url: str | None, asked: list[str], began: float) -> dict:
    """In this (fresh) process, started at `began` (perf_counter): opens the index,
    answers `asked`; times and peak RSS."""
    from bot.answering.answerer import Answerer
    from index.store.article_index import ArticleIndex

    settings = bench_settings(home, reader="none", chroma_url=url)
    start = time.perf_counter()
    index = ArticleIndex(settings, encoder=RandomQueries())
    index.stored_passages()
    opened = time.perf_counter() - start
    answerer = Answerer(index, settings)
    answerer.answer(asked[0])
    first = time.perf_counter() - began
    times = []
    for question in asked:
        start = time.perf_counter()
        answerer.answer(question)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "open_seconds": round(opened, 2),
        "first_answer_seconds": round(first, 2),
        "answer_p50_ms": round(float(np.percentile(times, 50)), 1),
        "answer_p95_ms": round(float(np.percentile(times, 95)), 1),
        # Not getrusage's ru_maxrss: Linux carries the parent's peak (at the fork) into it.
        "serve_peak_rss_mb": peak_rss_mb(os.getpid()),
    }


def read_all(collection) -> Iterator[tuple[str, tuple[str, str]]]:
    """(passage id, (text, title)) of every stored passage."""
    from index.store.build_records import pages

    for page in pages(collection, include=["documents", "metadatas"]):
        for pid, text, meta in zip(page["ids"], page["documents"], page["metadatas"], strict=True):
            yield pid, (text, meta["title"])


def keyword_recall(home: Path, url: str | None, asked: list[str]) -> float:
    """Mean share of today's in-memory BM25 top 5 that the on-disk index's top 5 has."""
    from benchmarks.bm25_memory import KeywordIndex as MemoryBM25
    from index.store.article_index import ArticleIndex

    settings = bench_settings(home, chroma_url=url)
    stored = ArticleIndex(settings, encoder=RandomQueries()).stored_passages()
    texts = dict(read_all(stored.collection))
    memory = MemoryBM25([texts[p][0] for p in stored.ids], [texts[p][1] for p in stored.ids])
    shares = []
    for question in asked:
        expected = {row for row, _ in memory.top(question, 5)}
        found = {row for row, _ in stored.keywords.top(question, 5)}
        shares.append(len(expected & found) / len(expected) if expected else 1.0)
    return round(float(np.mean(shares)), 4)


def main() -> None:
    began = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, required=True)
    parser.add_argument("--home", type=Path, help="where the store is built (default: a temp)")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--server", action="store_true", help="a Chroma server's store")
    parser.add_argument(
        "--no-recall", action="store_true", help="skip the in-memory BM25 comparison"
    )
    parser.add_argument(
        "--serve-from",
        type=Path,
        help="answer with the code in this folder (an export of another commit, with this "
        "script and benchmarks/synthetic.py copied in): the 'before' of a comparison",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--chroma-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:  # the answering process, started below
        asked = json.loads(sys.stdin.read())
        print(json.dumps(serve(args.home, args.chroma_url, asked, began)))
        return
    home = args.home or Path(tempfile.mkdtemp(prefix="citebot-archive-"))
    try:
        store = home / ("chroma-server" if args.server else "chroma")
        with chroma_server(store) if args.server else contextlib.nullcontext() as server:
            url = server[0] if server else None
            result = measure(args, home, store, url)
            if server:
                result["server_peak_rss_mb"] = peak_rss_mb(server[1])
                result["server_rss_mb"] = rss_mb(server[1])
        print(json.dumps(result | {"machine": machine()}))
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path, store: Path, url: str | None) -> dict:
    marker = home / ("archive-passages-server" if url else "archive-passages")
    built: dict[str, float] = {}
    if not marker.is_file() or marker.read_text() != str(args.passages):
        if url is None:
            shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(home / "keywords", ignore_errors=True)
        start = time.perf_counter()
        build(home, args.passages, url)
        marker.write_text(str(args.passages))
        built["build_seconds"] = round(time.perf_counter() - start)
        print(f"built in {built['build_seconds']} s", file=sys.stderr)
    asked = questions(home, url, args.questions)
    command = [sys.executable, "-m", "benchmarks.archive", "--passages", str(args.passages)]
    command += ["--home", str(home), "--serve"] + (["--chroma-url", url] if url else [])
    env = dict(os.environ)
    if args.serve_from:  # its code, not this checkout's
        env.pop("PYTHONPATH", None)
    served = subprocess.run(
        command, input=json.dumps(asked), capture_output=True, text=True, check=False,
        cwd=args.serve_from, env=env,
    )  # fmt: skip
    if served.returncode != 0:
        raise SystemExit(f"the answering process failed:\n{served.stderr[-3000:]}")
    result = {"passages": args.passages, "store": "server" if url else "embedded"} | built
    result |= json.loads(served.stdout.splitlines()[-1])
    if not args.no_recall:
        result["keyword_recall_at_5_vs_memory"] = keyword_recall(home, url, asked)
    return result


if __name__ == "__main__":
    main()
