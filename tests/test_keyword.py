"""The keyword index on disk: BM25 against the formula written out, changed in place and
built whole, kept in step with a build across processes, and safe against kills."""

from __future__ import annotations

import logging
import math
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.store import keyword_runs
from index.store.keyword import KeywordFile, KeywordIndex, top_rows
from index.store.keyword_files import KeywordFiles
from index.text import terms

TEXTS = [
    "Syrian officials assure that this is a lie to justify the aggressive policy.",
    "The U.N. spokesman said the claim—first made on Monday—was well-founded.",
    "İstanbul's naïve_plan: ‘don’t panic’, said the mayor (again); 1973 oil crisis.",
    "Oil prices rose sharply in October 1973, when the embargo began.",
    "",
    "Apple growers in Kent expect a record harvest; the harvest starts in August.",
]
TITLES = ["Syria denies claim", "U.N. statement", "Istanbul", "1973 oil crisis", "Empty", "Kent"]
QUERIES = [
    "who denied the claim",
    "When did the 1973 oil crisis begin?",
    "İstanbul naïve plan don't panic",
    "record apple harvest in Kent",
    "well-founded U.N. claim",
    "nothing matches zyzzyva",
]


def reference_scores(texts: list[str], titles: list[str], query: str) -> list[float]:
    """Okapi BM25 (k1=1.2, b=0.75) over each text with its title, as the textbook has it."""
    k1, b = 1.2, 0.75
    docs = [Counter(terms(text) + terms(title)) for text, title in zip(texts, titles, strict=True)]
    average = sum(sum(d.values()) for d in docs) / len(docs)
    scores = []
    for doc in docs:
        length = sum(doc.values())
        score = 0.0
        for term in set(terms(query)):
            if doc[term]:
                df = sum(1 for other in docs if other[term])
                idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                score += (
                    idf * doc[term] * (k1 + 1) / (doc[term] + k1 * (1 - b + b * length / average))
                )
        scores.append(score)
    return scores


def reference_idf(texts: list[str], term: str) -> float:
    df = sum(1 for text in texts if term in terms(text))
    return math.log(1 + (len(texts) - df + 0.5) / (df + 0.5))


def assert_same_as_reference(index: KeywordIndex, texts: list[str], titles: list[str]) -> None:
    assert index.size == len(texts)
    for query in QUERIES:
        assert index.scores(query) == pytest.approx(
            reference_scores(texts, titles, query), rel=1e-5
        )
    for term in {t for text in texts for t in terms(text)} | {"zyzzyva", "unknown"}:
        assert index.idf(term) == pytest.approx(reference_idf(texts, term))


def passages(texts: list[str], titles: list[str], first: int = 0) -> list[tuple[str, str, dict]]:
    rows = enumerate(zip(texts, titles, strict=True))
    return [(f"p{first + i}", text, {"title": title}) for i, (text, title) in rows]


def view(file: KeywordFile) -> KeywordIndex:
    return KeywordIndex.of_ids(file, file.ids())


def test_scores_follow_bm25_with_titles_and_idf_of_texts_alone(tmp_path: Path) -> None:
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(TEXTS, TITLES), [], "g1")
    index = KeywordIndex.of_ids(file, [f"p{i}" for i in range(len(TEXTS))])

    assert_same_as_reference(index, TEXTS, TITLES)
    best, _ = index.top("When did the 1973 oil crisis begin?", 1)[0]
    assert best == 3
    assert index.top("nothing matches zyzzyva", 3) == []
    assert file.generation == "g1" and file.size == len(TEXTS)


def test_a_changed_index_equals_one_built_from_scratch(tmp_path: Path) -> None:
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(TEXTS[:4], TITLES[:4]), [], "g1")
    added_texts = ["Oil embargo ends; the crisis is over, officials said.", *TEXTS[4:]]
    added_titles = ["Embargo ends", *TITLES[4:]]

    file.change(passages(added_texts, added_titles, first=4), ["p1"], "g2")

    texts = [TEXTS[0], *TEXTS[2:4], *added_texts]
    titles = [TITLES[0], *TITLES[2:4], *added_titles]
    assert_same_as_reference(view(file), texts, titles)
    file.change([], file.ids(), "g3")
    assert view(file).size == 0 and view(file).top("oil", 5) == []


def test_a_passage_added_again_replaces_its_earlier_self(tmp_path: Path) -> None:
    # What a change killed after the collection's write and before the index's leaves.
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(TEXTS, TITLES), [], "g1")
    changed = ["Oil embargo ends; the crisis is over, officials said.", *TEXTS[1:]]

    file.change(passages(changed[:1], ["Embargo ends"]), [], "g2")

    in_order = KeywordIndex.of_ids(file, [f"p{i}" for i in range(len(TEXTS))])
    assert_same_as_reference(in_order, changed, ["Embargo ends", *TITLES[1:]])


def test_a_change_interrupted_halfway_leaves_the_index_as_it_was(tmp_path: Path) -> None:
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(TEXTS[:3], TITLES[:3]), [], "g1")

    def interrupted():
        yield from passages(TEXTS[3:5], TITLES[3:5], first=3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        file.change(interrupted(), ["p0"], "g2")

    reopened = KeywordFile(file.path)
    assert reopened.generation == "g1"
    assert_same_as_reference(view(reopened), TEXTS[:3], TITLES[:3])


KILLED_WRITER = """
import sys, time
from pathlib import Path
from index.store.keyword import KeywordFile

def slow():
    for i in range(100000):
        if i == 50:
            print("writing", flush=True)
        time.sleep(0.001)
        yield f"x{i}", "Oil prices rose again", {"title": "Oil"}

KeywordFile(Path(sys.argv[1])).change(slow(), ["p0"], "g2")
"""


def test_a_process_killed_mid_change_leaves_the_index_as_it_was(tmp_path: Path) -> None:
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(TEXTS, TITLES), [], "g1")
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(file.path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    writer.kill()
    writer.wait(timeout=30)

    reopened = KeywordFile(file.path)
    assert reopened.generation == "g1"
    assert_same_as_reference(view(reopened), TEXTS, TITLES)


class FakeBuild:
    """A build's collection as the keyword index reads it, counting what is read."""

    def __init__(self, name: str, texts: list[str], titles: list[str]) -> None:
        self.name = name
        self.rows = {pid: (text, meta["title"]) for pid, text, meta in passages(texts, titles)}
        self.documents_read = 0
        self.listings = 0
        self.fail_after: int | None = None

    def get(
        self,
        ids: list[str] | None = None,
        include: list[str] = (),
        limit: int | None = None,
        offset: int = 0,
        where: Any = None,
    ) -> dict[str, list]:
        chosen = list(self.rows) if ids is None else [i for i in ids if i in self.rows]
        chosen = chosen[offset : offset + limit if limit else None]
        if "documents" not in include:
            self.listings += 1
            return {"ids": chosen}
        if self.fail_after is not None and self.documents_read + len(chosen) > self.fail_after:
            raise KeyboardInterrupt
        self.documents_read += len(chosen)
        return {
            "ids": chosen,
            "documents": [self.rows[p][0] for p in chosen],
            "metadatas": [{"title": self.rows[p][1]} for p in chosen],
        }


def test_a_new_process_opens_the_index_without_reading_the_collection(tmp_path: Path) -> None:
    build = FakeBuild("passages-1", TEXTS, TITLES)
    KeywordFiles(tmp_path).synced(build, "g1")
    assert build.documents_read == len(TEXTS)

    again = FakeBuild("passages-1", TEXTS, TITLES)
    file = KeywordFiles(tmp_path).synced(again, "g1")
    assert (again.documents_read, again.listings) == (0, 0)
    assert_same_as_reference(view(file), TEXTS, TITLES)


def test_a_change_in_another_process_reads_only_its_passages(tmp_path: Path) -> None:
    build = FakeBuild("passages-1", TEXTS[:4], TITLES[:4])
    serving = KeywordFiles(tmp_path)
    serving.synced(build, "g1")
    build.documents_read = 0

    # Another process adds two passages and removes one (a new generation).
    build.rows |= {pid: (t, m["title"]) for pid, t, m in passages(TEXTS[4:], TITLES[4:], first=4)}
    del build.rows["p1"]
    file = serving.synced(build, "g2")

    assert build.documents_read == 2 and build.listings == 1
    texts, titles = [TEXTS[0], *TEXTS[2:]], [TITLES[0], *TITLES[2:]]
    assert_same_as_reference(KeywordIndex.of_ids(file, list(build.rows)), texts, titles)


def test_a_damaged_index_is_rebuilt_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build = FakeBuild("passages-1", TEXTS, TITLES)
    path = KeywordFiles(tmp_path).synced(build, "g1").path
    path.write_bytes(b"not a database" * 100)

    with caplog.at_level(logging.WARNING):
        file = KeywordFiles(tmp_path).synced(build, "g1")

    assert "rebuilding the keyword index" in caplog.text
    assert_same_as_reference(view(file), TEXTS, TITLES)


def test_a_failed_making_leaves_the_active_index_serving(tmp_path: Path) -> None:
    files = KeywordFiles(tmp_path)
    active = files.synced(FakeBuild("passages-1", TEXTS, TITLES), "g1")
    new = FakeBuild("passages-2", TEXTS[:2], TITLES[:2])
    new.fail_after = 1

    with pytest.raises(KeyboardInterrupt):
        files.prepare(new)

    assert not files.path("passages-2").exists()
    assert_same_as_reference(view(KeywordFile(active.path)), TEXTS, TITLES)
    new.fail_after = None
    files.prepare(new)
    assert files.path("passages-1").exists(), "the active build's index stays until the switch"
    files.synced(new, "g2")
    left = {p.name.partition(".")[0] for p in files.folder.glob("*.sqlite*")}
    assert left == {"passages-2"} and not list(files.folder.glob("*.tmp"))


def test_no_passages(tmp_path: Path) -> None:
    file = KeywordFiles(tmp_path).synced(FakeBuild("passages-1", [], []), "g1")
    index = view(file)
    assert index.size == 0
    assert index.scores("oil").shape == (0,)
    assert index.top("oil", 5) == []
    assert index.idf("oil") == pytest.approx(math.log(2))


def test_the_killed_writer_really_writes(tmp_path: Path) -> None:
    """The kill test's writer, left to run a little, does change the index (so that the
    kill test's unchanged index is the rollback's doing)."""
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(TEXTS, TITLES), [], "g1")
    script = KILLED_WRITER.replace("range(100000)", "range(60)")
    subprocess.run([sys.executable, "-c", script, str(file.path)], check=True, timeout=60)
    assert KeywordFile(file.path).generation == "g2"


def runs_and_marks(file: KeywordFile, term: str) -> tuple[int, int]:
    """How many runs hold the postings of `term`, and how many of them are marked removed
    (what a query reads for it: docs/BENCHMARKS.md, "The keyword index on disk")."""
    with sqlite3.connect(file.path) as db:
        (runs,) = db.execute("SELECT count(*) FROM runs WHERE term = ?", (term,)).fetchone()
        (marks,) = db.execute("SELECT count(*) FROM removed WHERE term = ?", (term,)).fetchone()
    db.close()
    return runs, marks


OIL = [f"Oil prices moved {i} times in week {i}, traders said." for i in range(40)]


def test_passages_added_one_change_at_a_time_leave_a_term_few_runs(tmp_path: Path) -> None:
    file = KeywordFile.create(tmp_path / "k.sqlite")
    titles = [f"Oil {i}" for i in range(len(OIL))]
    for i, text in enumerate(OIL):
        file.change(passages([text], [titles[i]], first=i), [], f"g{i}")
        assert runs_and_marks(file, "oil")[0] <= keyword_runs.RUNS_PER_TERM

    assert_same_as_reference(view(file), OIL, titles)


def test_removed_postings_leave_their_runs_when_their_marks_pile_up(tmp_path: Path) -> None:
    many = 10 * (keyword_runs.REMOVED_PER_TERM // 10 + 4)
    texts = [f"Oil prices moved {i} times, traders said." for i in range(many)]
    titles = ["Oil"] * many
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(texts, titles), [], "g1")

    for first in range(0, many - 10, 10):  # article by article: 10 passages a change
        file.change([], [f"p{i}" for i in range(first, first + 10)], f"r{first}")
        assert runs_and_marks(file, "oil")[1] <= keyword_runs.REMOVED_PER_TERM

    kept = view(file)
    assert kept.size == 10 and runs_and_marks(file, "oil")[1] > 0, "some marks stay"
    assert_same_as_reference(kept, texts[-10:], titles[-10:])


def test_a_change_larger_than_its_buffer_writes_it_in_several_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A change holds a bounded number of postings at a time: here each passage's.
    monkeypatch.setattr(keyword_runs, "BUFFERED_POSTINGS", 4)
    count = keyword_runs.RUNS_PER_TERM  # as many runs as a term keeps unmerged
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(OIL[:count], ["Oil"] * count), [], "g1")

    assert runs_and_marks(file, "oil") == (count, 0)
    assert_same_as_reference(view(file), OIL[:count], ["Oil"] * count)
    file.change(passages(OIL[count:], ["Oil"] * (len(OIL) - count), first=count), [], "g2")
    assert runs_and_marks(file, "oil")[0] <= keyword_runs.RUNS_PER_TERM
    assert_same_as_reference(view(file), OIL, ["Oil"] * len(OIL))


def test_a_passage_added_twice_in_one_change_keeps_the_second(tmp_path: Path) -> None:
    file = KeywordFile.create(tmp_path / "k.sqlite")
    again = ("p0", "Oil embargo ends today.", {"title": "Embargo"})
    file.change([*passages(TEXTS, TITLES), again], [], "g1")

    in_order = KeywordIndex.of_ids(file, [f"p{i}" for i in range(len(TEXTS))])
    assert_same_as_reference(
        in_order, ["Oil embargo ends today.", *TEXTS[1:]], ["Embargo", *TITLES[1:]]
    )


def test_an_index_of_an_earlier_layout_is_rebuilt_on_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build = FakeBuild("passages-1", TEXTS, TITLES)
    path = KeywordFiles(tmp_path).synced(build, "g1").path
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.close()

    with caplog.at_level(logging.WARNING):
        file = KeywordFiles(tmp_path).synced(build, "g1")

    assert "schema '1'" in caplog.text and build.documents_read == 2 * len(TEXTS)
    assert_same_as_reference(view(file), TEXTS, TITLES)


def test_counts_past_what_a_posting_holds_are_held_at_its_most(tmp_path: Path) -> None:
    # 65,537 repeats of a word: past the 65,535 a posting's count and length hold. Wrapped
    # around, the count would be 1, as if the passage said it once.
    texts = ["harvest " * 65_537, "harvest festival in Kent", "apple orchard"]
    titles = ["Long", "Short", "Other"]
    file = KeywordFile.create(tmp_path / "k.sqlite")
    file.change(passages(texts, titles), [], "g1")
    index = view(file)

    scores = index.scores("harvest")
    expected = reference_scores(texts, titles, "harvest")
    assert scores[0] > scores[1] > 0 == scores[2]
    assert scores[0] == pytest.approx(expected[0], rel=1e-3)  # BM25 has saturated by then
    with sqlite3.connect(file.path) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == 65536
    db.close()


@pytest.mark.parametrize("size", [0, 5, 3000, 200_000])
def test_top_rows_are_the_best_positive_scores_and_the_earlier_of_equal_ones(size: int) -> None:
    rng = np.random.default_rng(size)
    # Few distinct values, most of them 0: ties everywhere, as a common word gives.
    scores = rng.choice(np.array([0, 0, 0, 0.5, 1.25, 2.0, 7.5], np.float32), size)
    for k in (1, 10, 30):
        expected = sorted(((-float(s), row) for row, s in enumerate(scores.tolist()) if s > 0))[:k]
        assert top_rows(scores, k) == [(row, -s) for s, row in expected]
    assert top_rows(scores, 0) == []
