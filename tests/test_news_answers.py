"""News questions are asked on a day: dates and headlines as evidence.

The articles here are written for these tests (no real news text).
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
from conftest import make_settings

from bot.answering.answerer import Answerer
from bot.answering.question_time import question_time
from index.articles import Article
from index.retrieval import HybridRetriever, PassageQuery, SourceScope
from index.store.article_index import ArticleIndex

OLD_RECALL = Article(
    id="news:old-recall",
    title="Carmaker widens airbag recall",
    text=(
        "Brightline Motors recalled 1.1 million vehicles this week over faulty airbags.\n\n"
        "The company said dealers would replace the inflators for free."
    ),
    source="news:old-recall",
    published="2014-12-19",
)
NEW_RECALL = Article(
    id="news:new-recall",
    title="Harbor Auto recalls vehicles over rear cameras",
    text=(
        "Harbor Auto recalled 2.9 million vehicles on Tuesday because their rear cameras "
        "can go dark.\n\nOwners will be notified by mail next month."
    ),
    source="news:new-recall",
    published="2022-06-14",
)
# The sentence that repeats the question's words names no show; the headline does.
SHOW = Article(
    id="news:show",
    title="'Lantern Street' is renewed",
    text=(
        "The streaming service said on Sunday that the wildly popular drama is renewed for a "
        "second season.\n\nLantern Street became the most watched series in the service's history "
        "within a month.\n\nFilming starts in the spring."
    ),
    source="news:show",
    published="2022-06-12",
)
SHOW_QUESTION = "Which wildly popular show was renewed for a new season?"


@pytest.fixture(scope="module")
def news_index(tmp_path_factory: pytest.TempPathFactory) -> ArticleIndex:
    index = ArticleIndex(make_settings(tmp_path_factory.mktemp("news")))
    assert index.add_articles([OLD_RECALL, NEW_RECALL, SHOW]).ok
    return index


def test_question_time_reads_recent_cues() -> None:
    asked = date(2022, 6, 16)
    assert question_time("Who won the 1998 final?", asked).recent_from is None
    week = question_time("Which automaker recalled vehicles this week?", asked)
    assert week.recent_from == date(2022, 6, 6)
    assert week.latest == asked
    assert week.recent_dates[0] == "2022-06-06" and week.recent_dates[-1] == "2022-06-16"
    assert not week.is_recent("2022-06-17")
    assert week.is_recent("2022-06-14") and not week.is_recent("2014-12-19")
    assert not week.is_recent(None) and not week.is_recent("")
    # Several cues: the narrowest wins.
    both = question_time("What did the mayor say yesterday about recent floods?", asked)
    assert both.recent_from == date(2022, 6, 13)
    assert question_time("What happened this year?", asked).recent_from == date(2021, 6, 15)


def test_this_week_prefers_the_articles_of_the_week(news_index: ArticleIndex) -> None:
    answerer = Answerer(news_index, news_index.settings)
    question = "Which automaker recalled vehicles this week?"
    answer = answerer.answer(question, asked_on=date(2022, 6, 16))
    assert answer.answered
    assert answer.citations[0].article_id == NEW_RECALL.id


def test_articles_published_after_the_question_are_left_out(news_index: ArticleIndex) -> None:
    answerer = Answerer(news_index, news_index.settings)
    ranking = answerer.rank("Which automaker recalled vehicles this week?", date(2014, 12, 20))
    passages, sentences = ranking.passages, ranking.sentences
    assert sentences[0].text.startswith("Brightline Motors recalled")
    assert NEW_RECALL.id not in {p.metadata.article_id for p in passages}


def test_a_headline_names_what_the_question_asks_for(news_index: ArticleIndex) -> None:
    # The feature scorer's headline credit, without the reader (whose small news weight
    # can overturn it: tests/test_reader.py).
    answerer = Answerer(news_index, dataclasses.replace(news_index.settings, reader="none"))
    sentences = answerer.rank(SHOW_QUESTION, date(2022, 6, 16)).sentences
    assert sentences[0].text.startswith("Lantern Street became")


def test_an_undated_title_is_not_taken_for_a_headline(tmp_path: Path) -> None:
    undated = Article(SHOW.id, SHOW.title, SHOW.text, SHOW.source)
    index = ArticleIndex(make_settings(tmp_path / "home"))
    assert index.add_articles([undated]).ok
    sentences = Answerer(index, index.settings).rank(SHOW_QUESTION, date(2022, 6, 16)).sentences
    assert sentences[0].text.startswith("The streaming service said")


def test_dates_and_headlines_do_not_raise_the_confidence(news_index: ArticleIndex) -> None:
    """The confidence is the support, calibrated: the ranking bonuses stay out of it."""
    answerer = Answerer(news_index, news_index.settings)
    answer, ranking = answerer.answer_and_rank(SHOW_QUESTION, date(2022, 6, 16))
    sentences = ranking.sentences
    assert sentences[0].score > sentences[0].support
    support = max(s.support for s in sentences)
    assert answer.confidence == pytest.approx(answerer.calibration.probability(support, True))


def test_recent_passages_are_fused_in_from_rankings_of_their_own(
    news_index: ArticleIndex,
) -> None:
    retriever = HybridRetriever(news_index)
    question = "Which automaker recalled vehicles this week?"
    query = news_index.encoder.get_query_embedding(question)
    plain = {
        p.metadata.article_id: p.score
        for p in retriever.search(PassageQuery(question, query, 5)).passages
    }
    week = question_time(question, date(2022, 6, 16))
    found = retriever.search(PassageQuery(question, query, 5, week)).passages
    dated = {p.metadata.article_id: p.score for p in found}
    # Found by the dense and keyword rankings of all passages and of the week's passages.
    assert dated[NEW_RECALL.id] > plain[NEW_RECALL.id]
    assert dated[OLD_RECALL.id] == pytest.approx(plain[OLD_RECALL.id])


def test_a_scoped_query_finds_only_its_sources_and_the_snapshot_works_the_scope_out_once(
    news_index: ArticleIndex,
) -> None:
    retriever = HybridRetriever(news_index)
    question = "Which automaker recalled vehicles?"
    vector = news_index.encoder.get_query_embedding(question)
    everywhere = retriever.search(PassageQuery(question, vector, 5)).passages
    assert {p.metadata.source for p in everywhere} >= {OLD_RECALL.source, NEW_RECALL.source}
    scope = SourceScope(("news:new-*",))
    stored = news_index.stored_passages()
    found = retriever.search(PassageQuery(question, vector, 5, scope=scope), stored)
    assert {p.metadata.source for p in found.passages} == {NEW_RECALL.source}
    assert found.keyword_index is stored.keywords
    # A second scope with the same patterns is the same column of the same snapshot.
    assert stored.column(SourceScope(("news:new-*",)), bool) is stored.column(scope, bool)


def test_the_llama_index_retriever_interface_returns_scored_nodes(
    news_index: ArticleIndex,
) -> None:
    nodes = HybridRetriever(news_index, depth=2).retrieve("Which automaker recalled vehicles?")
    assert 0 < len(nodes) <= 2
    assert all(n.score > 0 and n.node.metadata["article_id"] for n in nodes)
    assert "recalled" in nodes[0].node.get_content()


def test_this_week_is_not_answered_from_an_older_article(tmp_path: Path) -> None:
    index = ArticleIndex(make_settings(tmp_path / "home"))
    assert index.add_articles([OLD_RECALL]).ok
    answerer = Answerer(index, index.settings)
    question = "Which automaker recalled 1.1 million vehicles over faulty airbags this week?"
    then = answerer.answer(question, date(2014, 12, 20))
    assert then.answered and then.citations[0].article_id == OLD_RECALL.id
    later = answerer.answer(question, date(2022, 6, 16))
    assert not later.answered and later.confidence == 0.0
    assert later.passages[0].title == OLD_RECALL.title  # still shown as the closest
    # Without "this week" the old article answers whenever it is asked.
    assert answerer.answer(question.replace(" this week", ""), date(2022, 6, 16)).answered
