"""The SQuAD split that keeps the reader's training data apart from what measures it."""

from __future__ import annotations

import pytest

from bot.evaluation.readers import EvalDataError, EvalQuestion, EvalSet
from bot.evaluation.splits import split_titles, squad_split
from index.articles import Article


def test_sorted_titles_even_positions_are_a_and_odd_are_b() -> None:
    titles = ["Warsaw", "Amazon_rainforest", "1973_oil_crisis", "Super_Bowl_50", "Kenya"]
    # sorted: 1973_oil_crisis, Amazon_rainforest, Kenya, Super_Bowl_50, Warsaw
    assert split_titles(titles, "A") == ["1973_oil_crisis", "Kenya", "Warsaw"]
    assert split_titles(titles, "B") == ["Amazon_rainforest", "Super_Bowl_50"]


def test_a_question_goes_with_its_article_and_no_b_text_reaches_a() -> None:
    articles = [Article(f"squad:{t}", t, f"text of {t}", f"squad:{t}") for t in "DCBA"]
    questions = [
        EvalQuestion(f"q{t}", f"about {t}?", [t], [f"squad:{t}"], [(f"squad:{t}", 0, 9)])
        for t in "ABCD"
    ]
    full = EvalSet(articles, questions)
    a, b = squad_split(full, "A"), squad_split(full, "B")
    assert [x.id for x in a.articles] == ["squad:C", "squad:A"]
    assert [q.id for q in a.questions] == ["qA", "qC"]
    assert {x.id for x in b.articles} == {"squad:B", "squad:D"}
    assert not {x.text for x in a.articles} & {x.text for x in b.articles}


def test_unknown_split_and_non_squad_sets_are_refused() -> None:
    with pytest.raises(EvalDataError, match="split 'C'"):
        split_titles(["x"], "C")
    news = EvalSet([Article("rtqa:https://a.example/x", "t", "x", "s")], [])
    with pytest.raises(EvalDataError, match="SQuAD sets only"):
        squad_split(news, "A")
