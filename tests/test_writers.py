"""Several writers sharing one Chroma server (index/store/writers.py): processes with data
directories of their own, adding at once, during a rebuild, or after a writer was killed.
Each passage is embedded once (the reports' `passages_embedded` count the encoder's
work) and nothing any of them added is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_settings
from test_index import write_articles

from index.sources.formats import load_sources
from index.store.article_index import ArticleIndex
from index.store.writers import WRITER_LEASE, claim_id, records

pytestmark = pytest.mark.slow

PLACES = ["Tallinn", "Kent", "Oslo", "Porto", "Gdansk", "Bergen", "Turku", "Cork"]
THINGS = ["harbour", "library", "bridge", "market", "museum", "school"]

# One writer: loads the model, says it is ready, waits for the other, then adds.
WRITER = """
import json, sys, time
from pathlib import Path
from index.settings import load_settings
from index.sources.formats import load_sources
from index.store.article_index import ArticleIndex
index = ArticleIndex(load_settings())
index.encoder
ready = Path(sys.argv[1])
ready.touch()
while len(list(ready.parent.glob("*.ready"))) < 2:
    time.sleep(0.02)
report = index.add(sys.argv[2:])
print(json.dumps({"embedded": report.passages_embedded, "shared": report.shared,
                  "added": report.added, "unchanged": report.unchanged}))
"""


def news(folder: Path, first: int, count: int) -> Path:
    """`count` short articles of three sentences (one passage each), numbered from `first`."""
    texts = {}
    for n in range(first, first + count):
        place, thing = PLACES[n % len(PLACES)], THINGS[n % len(THINGS)]
        texts[f"story-{n:03}.txt"] = (
            f"{place} opens its new {thing} number {n}\n\n"
            f"The new {thing} in {place} opened on Monday after {n} months of work. "
            f"It cost {n * 3} million euros, the council said. "
            f"Residents queued for {n + 1} hours to see it."
        )
    return write_articles(folder, texts)


def start_writer(home: Path, url: str, barrier: Path, *sources: Path) -> subprocess.Popen:
    env = os.environ | {"CITEBOT_HOME": str(home), "CITEBOT_CHROMA_URL": url}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(barrier / f"{home.name}.ready"), *map(str, sources)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(writer: subprocess.Popen) -> dict:
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    return json.loads(out)


def article_files(index: ArticleIndex) -> set[str]:
    return {Path(m["article_id"]).name for m in index.active_collection().get()["metadatas"]}


def test_two_processes_adding_at_once_embed_each_article_once(
    tmp_path: Path, empty_server: str
) -> None:
    both = news(tmp_path / "both", 0, 24)
    only_a = news(tmp_path / "only-a", 100, 3)
    only_b = news(tmp_path / "only-b", 200, 3)
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    writers = [
        start_writer(tmp_path / "home-a", empty_server, barrier, both, only_a),
        start_writer(tmp_path / "home-b", empty_server, barrier, both, only_b),
    ]
    a, b = (finished(w) for w in writers)

    index = ArticleIndex(make_settings(tmp_path / "reader", chroma_url=empty_server))
    passages = index.active_collection().count()
    assert a["embedded"] + b["embedded"] == passages, "each passage was embedded once"
    assert a["embedded"] and b["embedded"], "both writers did part of the work"
    assert a["shared"] + b["shared"] == 24, "each shared article was embedded by one writer"
    assert article_files(index) == {p.name for p in [*both.iterdir(), *only_a.iterdir()]} | {
        p.name for p in only_b.iterdir()
    }
    assert {s.key for s in index.library.sources()} == {str(both), str(only_a), str(only_b)}
    assert records(index.client).count() == 0, "the writers released their claims"


def test_an_add_during_a_rebuild_stays_without_being_embedded_again(
    tmp_path: Path, empty_server: str
) -> None:
    folder = news(tmp_path / "articles", 0, 6)
    settings = make_settings(tmp_path / "home", chroma_url=empty_server, sources=(str(folder),))
    rebuilding = ArticleIndex(settings)
    assert rebuilding.rebuild().ok
    news(folder, 6, 2)  # the next rebuild has something to embed
    extra = news(tmp_path / "extra", 50, 2)
    added: list[dict] = []

    def meanwhile(done: int) -> None:
        if not added:  # another process adds while the rebuild embeds
            env = os.environ | {
                "CITEBOT_HOME": str(tmp_path / "other"),
                "CITEBOT_CHROMA_URL": empty_server,
            }
            done_add = subprocess.run(
                [sys.executable, "-c", "from bot.cli import main; main()", "add", str(extra)],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done_add.returncode == 0, done_add.stderr
            added.append({"stdout": done_add.stdout})

    report = rebuilding.rebuild(progress=meanwhile)

    assert report.added and added[0]["stdout"].startswith("2 added")
    assert article_files(rebuilding) == {f"story-{n:03}.txt" for n in [*range(8), 50, 51]}
    # The added articles' passages were copied into the new build, not embedded again.
    assert rebuilding.add([str(extra)]).passages_embedded == 0


def test_an_add_whose_build_a_rebuild_replaced_is_written_again(
    tmp_path: Path, empty_server: str
) -> None:
    folder = news(tmp_path / "articles", 0, 4)
    adding = ArticleIndex(make_settings(tmp_path / "home", chroma_url=empty_server))
    assert adding.add([str(folder)]).ok
    extra = news(tmp_path / "extra", 50, 3)
    other = ArticleIndex(make_settings(tmp_path / "other", chroma_url=empty_server, sources=()))
    passages_of_one = []

    def meanwhile(done: int) -> None:
        if not passages_of_one:  # one article written: another process rebuilds
            passages_of_one.append(adding.active_collection().count())
            assert other.rebuild().ok

    report = adding.add([str(extra)], progress=meanwhile)

    assert report.added == [str(extra / name) for name in sorted(os.listdir(extra))]
    assert article_files(adding) == {f"story-{n:03}.txt" for n in [*range(4), 50, 51, 52]}
    # The article written before the switch was brought over by the rebuild; the other
    # two were written into the new build: three passages, each embedded once.
    assert report.passages_embedded == 3


def test_the_claims_of_a_killed_writer_are_taken_over(tmp_path: Path, empty_server: str) -> None:
    index = ArticleIndex(make_settings(tmp_path / "home", chroma_url=empty_server))
    assert index.add([str(news(tmp_path / "first", 90, 1))]).ok
    folder = news(tmp_path / "articles", 0, 3)
    build = index.active_collection().name
    # A writer killed while embedding these articles: its heartbeat stopped long ago.
    store = records(index.client)
    stopped = time.time() - WRITER_LEASE.total_seconds() - 60
    claims = [claim_id(build, (a, "")) for a in load_sources([str(folder)]).articles]
    store.add(
        ids=["writer:killed", *claims],
        embeddings=[[0.0]] * (1 + len(claims)),
        metadatas=[{"record": "writer", "writer": "killed", "heartbeat": stopped}]
        + [{"record": "claim", "writer": "killed"}] * len(claims),
    )

    report = index.add([str(folder)])

    assert len(report.added) == 3 and report.passages_embedded == 3
    assert store.count() == 0, "the killed writer's records went with its claims"
