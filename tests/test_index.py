"""The index and the answers, against a real Chroma store and the real embedding model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DEMO_ARTICLES, REFERENCE_QUOTE, make_settings, stored_texts
from test_keyword import reference_scores

from bot.answering.answerer import Answerer
from bot.render import NOT_ANSWERED, render_answer
from index.embedding.encoder import Encoder, load_encoder
from index.embedding.vectors import SENTENCE_VECTORS
from index.errors import IndexMissingError
from index.retrieval import PassageQuery
from index.store.article_index import ArticleIndex
from index.store.passage_info import PassageInfo
from index.store.snapshot import StoredPassages, load_passages

TEXTS = {
    "harbour.txt": "New harbour opens in Tallinn\n\nThe new ferry harbour in Tallinn opened on "
    "Monday after four years of construction. The harbour can berth six ferries at once.",
    "orchard.txt": "Orchard growers expect record apple harvest\n\nApple growers in Kent expect "
    "a record harvest this autumn. Warm spring weather helped the blossom.",
}


def write_articles(folder: Path, texts: dict[str, str] = TEXTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_reference_question_quotes_the_denial_first(demo_index: ArticleIndex) -> None:
    answer = Answerer(demo_index, demo_index.settings).answer("who denied the crematorium claim")

    assert answer.answered
    first = answer.citations[0]
    assert first.text == REFERENCE_QUOTE
    assert first.title == "Syria denies burning prisoners' bodies claim"
    assert first.source.endswith("syria-denies-burning-prisoners-bodies-claim.txt")
    assert 1 <= len(answer.citations) <= 3


def test_the_keyword_index_on_disk_scores_the_stored_passages_by_bm25(
    demo_index: ArticleIndex,
) -> None:
    stored = demo_index.stored_passages()
    titles = [m.title for m in stored.metadatas]
    for question in ("who denied the crematorium claim", "When did the 1973 oil crisis begin?"):
        assert stored.keywords.scores(question) == pytest.approx(
            reference_scores(stored_texts(stored), titles, question), rel=1e-5
        )
    assert (demo_index.settings.home / "keywords" / f"{stored.key[0]}.sqlite").is_file()


class CountingReads:
    """A collection that records the ids and fields of every `get`."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.reads: list[tuple[int, tuple[str, ...]]] = []

    def get(self, ids: list[str] | None = None, **kwargs: Any) -> Any:
        self.reads.append((len(ids or []), tuple(kwargs.get("include", ()))))
        return self.collection.get(ids=ids, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)


def test_a_new_process_reads_where_passages_come_from_from_the_keyword_file(
    demo_index: ArticleIndex,
) -> None:
    stored = demo_index.stored_passages()
    counting = CountingReads(stored.collection)
    keywords = demo_index.keyword_files.synced(stored.collection, stored.key[1])

    fresh = load_passages(counting, stored.key, None, keywords)

    assert counting.reads == [], "the store's metadata (with the sentence vectors) is not read"
    page = stored.collection.get(include=["metadatas"])
    assert sorted(fresh.ids) == sorted(page["ids"])
    for pid, metadata in zip(page["ids"], page["metadatas"], strict=True):
        bare = PassageInfo.from_metadata(metadata | {"sentences": "", SENTENCE_VECTORS: ""})
        assert fresh.metadatas[fresh.ids.position(pid)] == bare


def test_an_answer_reads_its_candidates_texts_and_sentences_in_one_call(
    demo_index: ArticleIndex,
) -> None:
    stored = demo_index.stored_passages()
    assert all(m.sentences == () and not m.sentence_vectors_packed for m in stored.metadatas)
    counting = CountingReads(stored.collection)
    answerer = Answerer(demo_index, demo_index.settings)
    question = "who denied the crematorium claim"
    embedding = demo_index.encoder.get_query_embedding(question)
    query = PassageQuery(question, embedding, demo_index.settings.candidate_passages)

    found = answerer.retriever.search(query, replace(stored, collection=counting)).passages

    assert counting.reads == [(len(found), ("documents", "metadatas", "embeddings"))]
    assert found == answerer.retriever.search(query, stored).passages
    assert all(p.metadata.sentences and p.metadata.sentence_vectors().size for p in found)


def test_every_citation_is_verbatim_at_its_offsets(demo_index: ArticleIndex) -> None:
    answerer = Answerer(demo_index, demo_index.settings)
    for question in ("who denied the crematorium claim", "When did the 1973 oil crisis begin?"):
        for citation in answerer.answer(question).citations:
            article = next(DEMO_ARTICLES.glob(f"*{Path(citation.article_id).name}"), None)
            text = article.read_text(encoding="utf-8") if article else None
            assert text is not None and citation.text in text
            stored = "".join(_texts_of(demo_index, citation.article_id))
            assert citation.text in stored


def _texts_of(index: ArticleIndex, article_id: str) -> list[str]:
    stored = index.stored_passages()
    return [
        text
        for text, meta in zip(stored_texts(stored), stored.metadatas, strict=True)
        if meta.article_id == article_id
    ]


def test_unanswerable_question_is_not_answered(demo_index: ArticleIndex) -> None:
    answer = Answerer(demo_index, demo_index.settings).answer("What is the capital of Australia?")

    assert not answer.answered
    assert answer.citations == []
    assert answer.passages, "the closest passages are always shown"


# SQuAD 2.0's way of writing a question the article cannot answer: a real name or number
# of the article swapped for another (the Amazon's nine nations, the 1973 embargo, the
# Panthers' coach in Super Bowl 50).
SWAPPED = [
    "How many nations does the Congo rainforest cover?",
    "Which country did OPEC embargo in 1980?",
    "Who coached the Carolina Panthers in Super Bowl 40?",
]


@pytest.mark.parametrize("question", SWAPPED)
def test_a_question_with_a_name_swapped_is_not_answered_and_shows_the_closest_passages(
    demo_index: ArticleIndex, question: str
) -> None:
    answerer = Answerer(demo_index, demo_index.settings)
    answer = answerer.answer(question)

    assert not answer.answered and answer.citations == []
    assert answer.confidence < answerer.min_confidence
    shown = render_answer(answer)
    assert shown.startswith(NOT_ANSWERED)
    assert answer.passages and "Closest passages:\n\n" in shown
    assert answer.passages[0].title in shown


def test_sentences_are_chosen_not_just_the_first_of_the_passage(
    demo_index: ArticleIndex,
) -> None:
    answer = Answerer(demo_index, demo_index.settings).answer("When did the 1973 oil crisis begin?")

    assert answer.answered
    assert "October 1973" in answer.citations[0].text


def test_rebuild_reports_and_skips_unchanged_articles(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))

    first = index.rebuild()
    assert sorted(Path(s).name for s in first.added) == ["harbour.txt", "orchard.txt"]
    assert first.passages_embedded > 0

    build = index.status().collection
    again = index.rebuild()
    assert len(again.unchanged) == 2 and again.passages_embedded == 0
    assert index.status().collection == build, "nothing changed: nothing is copied"

    (folder / "orchard.txt").write_text(TEXTS["orchard.txt"] + " Pickers arrive in August.")
    (folder / "harbour.txt").unlink()
    changed = index.rebuild()
    assert [Path(s).name for s in changed.changed] == ["orchard.txt"]
    assert [Path(s).name for s in changed.removed] == ["harbour.txt"]
    assert changed.passages_embedded == 1

    answer = Answerer(index, index.settings).answer("Where did the ferry harbour open?")
    assert all("harbour" not in c.text for c in answer.citations)
    assert index.status().articles == 1


def test_add_is_incremental(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", {"orchard.txt": TEXTS["orchard.txt"]})
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))
    index.rebuild()
    extra = write_articles(tmp_path / "extra", {"harbour.txt": TEXTS["harbour.txt"]})

    added = index.add([str(extra / "harbour.txt")])
    assert [Path(s).name for s in added.added] == ["harbour.txt"]
    unchanged = index.add([str(extra / "harbour.txt"), str(folder / "orchard.txt")])
    assert len(unchanged.unchanged) == 2 and unchanged.passages_embedded == 0

    answer = Answerer(index, index.settings).answer(
        "How many ferries can the Tallinn harbour berth?"
    )
    assert answer.answered
    assert answer.citations[0].text == "The harbour can berth six ferries at once."
    assert index.status().articles == 2


def test_changed_article_replaces_its_old_passages(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))
    index.rebuild()
    (folder / "harbour.txt").write_text(
        "New harbour opens in Tallinn\n\nThe harbour can berth nine ferries at once."
    )

    report = index.add([str(folder / "harbour.txt")])

    assert [Path(s).name for s in report.changed] == ["harbour.txt"]
    texts = stored_texts(index.stored_passages())
    assert not any("six ferries" in t for t in texts)
    assert any("nine ferries" in t for t in texts)


BAD_FILES = {
    "binary.txt": b"\x00\x01\x02\x03binary\x00",
    "empty.md": b"   \n",
    "latin1.txt": "Caf\xe9 title\n\nNa\xefve text".encode("latin-1"),
    "broken.html": b"<html><head><script>var x = 1;</script></head><body></body></html>",
    "broken.pdf": b"%PDF-1.4\n this is not really a pdf",
}


def test_bad_files_are_reported_and_the_rest_indexed(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", {"orchard.txt": TEXTS["orchard.txt"]})
    for name, data in BAD_FILES.items():
        (folder / name).write_bytes(data)
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))

    report = index.rebuild()

    assert [Path(s).name for s in report.added] == ["orchard.txt"]
    failed = {Path(f.source).name: f.reason for f in report.failed}
    assert sorted(failed) == sorted(BAD_FILES)
    assert "binary" in failed["binary.txt"]
    assert "empty" in failed["empty.md"]
    assert "UTF-8" in failed["latin1.txt"]
    assert "PDF" in failed["broken.pdf"]
    assert not report.ok


def test_a_source_that_breaks_keeps_what_was_indexed(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    index = ArticleIndex(make_settings(tmp_path / "home", sources=(str(folder),)))
    index.rebuild()
    (folder / "harbour.txt").write_bytes(b"\x00\x00 now binary")

    report = index.rebuild()

    assert [Path(f.source).name for f in report.failed] == ["harbour.txt"]
    assert report.removed == []
    assert any("six ferries" in t for t in stored_texts(index.stored_passages()))


_encoder_calls = [0]


class _FailingEncoder(Encoder):
    """Fails on the second batch, like a rebuild killed halfway."""

    def encode_in_context(self, texts, spans):  # noqa: ANN001, ANN201
        _encoder_calls[0] += 1
        if _encoder_calls[0] > 1:
            raise KeyboardInterrupt("killed")
        return super().encode_in_context(texts, spans)


def test_interrupted_rebuild_leaves_the_previous_index_serving(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    settings = make_settings(tmp_path / "home", sources=(str(folder),), batch_size=1)
    ArticleIndex(settings).rebuild()
    # Seven more and one changed: two pipeline runs of four (BATCHES_PER_RUN batches of 1).
    write_articles(folder, {f"more-{i}.txt": f"Story {i}\n\nLine {i}." for i in range(7)})
    (folder / "orchard.txt").write_text("Orchard\n\nApples everywhere, changed.")
    failing = _FailingEncoder(load_encoder(settings.model_path), batch_size=1)

    with pytest.raises(KeyboardInterrupt):
        ArticleIndex(settings, encoder=failing).rebuild()

    index = ArticleIndex(settings)
    assert index.status().articles == 2
    answer = Answerer(index, settings).answer("How many ferries can the harbour berth?")
    assert answer.citations[0].text == "The harbour can berth six ferries at once."
    report = index.rebuild()
    assert len(report.added) == 7 and len(report.changed) == 1
    builds = [c.name for c in index.client.list_collections() if c.name.startswith("passages-")]
    assert len(builds) == 1, "the abandoned build is cleaned up"


def test_asking_without_an_index_says_what_to_do(tmp_path: Path) -> None:
    index = ArticleIndex(make_settings(tmp_path / "home"))
    with pytest.raises(IndexMissingError, match="citebot index rebuild"):
        Answerer(index, index.settings).answer("anything?")


def test_a_snapshot_brought_up_to_date_equals_a_fresh_load(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    settings = make_settings(tmp_path / "home", sources=(str(folder),))
    reader = ArticleIndex(settings)
    reader.rebuild()
    reader.stored_passages()
    writer = ArticleIndex(settings)

    # An add that replaces an article's passages and adds another article's ...
    (folder / "harbour.txt").write_text(TEXTS["harbour.txt"] + " Cruise ships may call too.")
    extra = write_articles(tmp_path / "extra", {"bakery.txt": "Bakery\n\nThe bakery sells rye."})
    assert writer.add([str(folder / "harbour.txt"), str(extra)]).ok
    assert_same_passages(reader.stored_passages(), ArticleIndex(settings).stored_passages())

    # ... and a rebuild, which makes a new build.
    (folder / "orchard.txt").write_text("Orchard\n\nThe apple harvest failed after a frost.")
    assert writer.rebuild().ok
    assert_same_passages(reader.stored_passages(), ArticleIndex(settings).stored_passages())


def assert_same_passages(stored: StoredPassages, fresh: StoredPassages) -> None:
    assert stored.key == fresh.key
    assert sorted(stored.ids) == sorted(fresh.ids)
    for pid in fresh.ids:
        assert (
            stored.metadatas[stored.ids.position(pid)] == fresh.metadatas[fresh.ids.position(pid)]
        )
    order = [stored.ids.position(pid) for pid in fresh.ids]
    for query in ("harbour cruise ships", "apple harvest frost", "rye bakery", "Kent"):
        assert stored.keywords.scores(query)[order] == pytest.approx(fresh.keywords.scores(query))
    for term in ("harbour", "appl", "rye", "ferri"):
        assert stored.keywords.idf(term) == pytest.approx(fresh.keywords.idf(term))
