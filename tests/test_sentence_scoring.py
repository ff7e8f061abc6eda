"""How sentences and passages are ranked: phrases of the question, retrieval evidence.

The articles here are written for these tests.
"""

from __future__ import annotations

import pytest
from conftest import make_settings

import bot.answering.answerer as answering
import bot.answering.scoring as scoring
from bot.answering.answerer import Answerer
from index.articles import Article
from index.store.article_index import ArticleIndex
from index.text import PREFIX_MATCH_CREDIT, TermMatcher, terms

QUESTION = "Where was the Grand Harbor Conference held?"
# The question's words in the question's order...
PHRASE = "The Grand Harbor Conference was held at the Lovely Lane Chapel in 1784."
# ...and scattered, in a passage that repeats them in every sentence.
SCATTERED = "Harbor officials held a grand conference on tides at the museum."
ARTICLES = [
    Article(
        "doc:chapel",
        "Lovely Lane Chapel",
        f"{PHRASE}\n\nThe chapel was later torn down.",
        "doc:chapel",
    ),
    Article(
        "doc:tides",
        "Harbor tides",
        f"{SCATTERED}\n\nThe harbor conference drew grand crowds, and the Grand Harbor was the "
        "talk of the conference for weeks.\n\nThe harbor held its grand tide conference again "
        "in spring.",
        "doc:tides",
    ),
    Article(
        "doc:fishing",
        "Fishing",
        "Fishing boats leave the harbor at dawn.\n\nThe catch is sold at the market.",
        "doc:fishing",
    ),
]


@pytest.fixture(scope="module")
def answerer(tmp_path_factory: pytest.TempPathFactory) -> Answerer:
    index = ArticleIndex(make_settings(tmp_path_factory.mktemp("scoring")))
    assert index.add_articles(ARTICLES).ok
    return Answerer(index, index.settings)


def test_a_phrase_of_the_question_counts_more_than_its_words_scattered(
    answerer: Answerer, monkeypatch: pytest.MonkeyPatch
) -> None:
    weight = scoring.PHRASE_WEIGHT
    assert weight > 0
    with_phrases = {s.text: s.support for s in answerer.rank(QUESTION).sentences}
    monkeypatch.setattr(scoring, "PHRASE_WEIGHT", 0.0)
    without = {s.text: s.support for s in answerer.rank(QUESTION).sentences}
    # All three word pairs of the question (grand harbor, harbor conference, conference
    # held) are in the phrase sentence; none is in the scattered one.
    assert with_phrases[PHRASE] == pytest.approx(without[PHRASE] + weight)
    assert with_phrases[SCATTERED] == pytest.approx(without[SCATTERED])
    assert answerer.answer(QUESTION).citations[0].text == PHRASE


def test_passages_are_ordered_by_their_best_sentence_and_their_retrieval_score(
    answerer: Answerer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def order(weight: float) -> tuple[list[str], list[str]]:
        monkeypatch.setattr(answering, "FUSED_ORDER_WEIGHT", weight)
        ranking = answerer.rank(QUESTION)
        return [p.metadata.article_id for p in ranking.passages], [
            s.text for s in ranking.sentences
        ]

    by_sentence, sentences = order(0.0)
    # The tides passage matches the question's words more often as a whole; the chapel
    # passage has the sentence that answers it.
    assert by_sentence[0] == "doc:chapel"
    by_retrieval, same_sentences = order(10.0)
    assert by_retrieval[0] == "doc:tides"
    assert same_sentences == sentences  # passage order never changes what is quoted
    # At the default weight a clearly better sentence still puts its passage first.
    default, _ = order(0.2)
    assert default[0] == "doc:chapel"


def test_term_matcher_credits_words_synonyms_and_close_variants() -> None:
    lie = set(terms("Syrian officials called the claim a lie."))
    talks = set(terms("The Syria talks broke down."))
    cats = set(terms("Cats nap."))
    matcher = TermMatcher(terms("denied Syria claim cat"), lie | talks | cats)
    assert matcher.match("syria", talks) == 1.0  # the word itself
    assert matcher.match("deni", lie) == 1.0  # a listed synonym ("lie" for "denied")
    assert matcher.match("syria", lie) == PREFIX_MATCH_CREDIT  # "syrian"
    assert matcher.match("cat", cats) == 1.0  # "cats", stemmed
    assert matcher.match("claim", talks) == 0.0
    assert matcher.match("deni", talks) == 0.0
