"""The SQuAD split that keeps the reader's training data apart from what measures it."""

from __future__ import annotations

import json

import pytest

from bot.evaluation.readers import EvalDataError, EvalQuestion, EvalSet, read_eval_set
from bot.evaluation.splits import of_role, split_titles, squad_split
from bot.training.datasets import read_squad_json, with_role
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


def test_a_squadshifts_role_keeps_the_articles_training_gives_that_role(tmp_path) -> None:
    # The same file read as training reads it and as an evaluation reads it: the
    # combiner-role articles (measured, never trained on) are the same ones.
    titles = ["Kenya", "Andes", "Saxophone", "Istanbul", "Warsaw", "Oxygen", "Normans", "Tesla"]
    data = {
        "data": [
            {
                "title": t,
                "paragraphs": [
                    {
                        "context": f"{t} is a topic. It has a history.",
                        "qas": [
                            {
                                "id": t,
                                "question": f"What is {t}?",
                                "answers": [{"text": "a topic", "answer_start": len(t) + 4}],
                            }
                        ],
                    }
                ],
            }
            for t in titles
        ]
    }
    path = tmp_path / "new_wiki.json"
    path.write_text(json.dumps(data))
    trained = with_role(read_squad_json(path, "squadshifts"), "combiner")
    measured = of_role(read_eval_set("squad", path), "squadshifts", "combiner")
    # sorted: Andes Istanbul Kenya Normans Oxygen Saxophone Tesla Warsaw; 1 and 5 mod 4
    assert sorted(q.title for q in trained) == ["Istanbul", "Saxophone"]
    assert sorted(a.title for a in measured.articles) == ["Istanbul", "Saxophone"]
    assert sorted(q.question for q in measured.questions) == [
        "What is Istanbul?",
        "What is Saxophone?",
    ]
