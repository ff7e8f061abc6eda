"""Memory of the passages' metadata as a process holds it: Chroma's dicts against the
`PassageInfo` records the snapshot decodes them into, for 38,000 synthetic passages
shaped like the news index's (5 sentences, 10 packed sentence vectors of 384 dimensions).

    python -m benchmarks.metadata_memory
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from index.embedding.vectors import pack
from index.store.passage_info import PassageInfo

PASSAGES = 38_000
PACKED = pack(np.random.default_rng(0).normal(size=(10, 384)))


def metadata(i: int) -> dict[str, Any]:
    """Fresh objects per passage, as Chroma returns them."""
    spans = [[j * 180, j * 180 + 170] for j in range(5)]
    return {
        "article_id": f"/news/story-{i // 8}.txt",
        "title": f"Story {i // 8} headline here",
        "source": f"/news/story-{i // 8}.txt",
        "url": "",
        "published": f"2022-06-1{i % 10}",
        "content_hash": f"{i:064x}",
        "number": i % 8,
        "start": 1000 + i % 8 * 900,
        "end": 1900 + i % 8 * 900,
        "sentences": json.dumps(spans),
        "sentence_vectors": PACKED[:-1] + chr(65 + i % 26),
        "passages": 8,
        "origin": "/news",
    }


def held(make: Callable[[int], object]) -> int:
    tracemalloc.start()
    items = [make(i) for i in range(PASSAGES)]
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del items
    return current


def main() -> None:
    for label, make in (
        ("dict", metadata),
        ("PassageInfo", lambda i: PassageInfo.from_metadata(metadata(i))),
    ):
        size = held(make)
        print(f"{label}: {size / PASSAGES:.0f} bytes per passage, {size / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
