"""The judge's training data: each set's reader on a tiny fixture of its format, the roles
that keep training, fitting and choosing apart, and the examples with no answer."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from bot.evaluation.readers import EvalDataError
from bot.training.datasets import (
    NewsStory,
    TrainQuestion,
    detokenize,
    news_questions,
    read_current_events,
    read_qed,
    read_selqa,
    read_squad_json,
    read_wikinews,
    role_of,
    sample_per_source,
    with_role,
    without_titles,
)
from bot.training.examples import judge_examples
from bot.training.twins import twin_question, unanswerable_twins

CONTEXT = (
    "The Normans were a people of Normandy. They gave their name to Normandy in the 10th "
    "century. Their leader Rollo swore fealty to King Charles III."
)


def _squad(path: Path, impossible: bool) -> Path:
    qas = [
        {
            "id": "q1",
            "question": "Who did Rollo swear fealty to?",
            "answers": [{"text": "King Charles III", "answer_start": CONTEXT.index("King")}],
        }
    ]
    if impossible:
        qas.append(
            {"id": "q2", "question": "Who did Rollo betray?", "is_impossible": True, "answers": []}
        )
    data = {"data": [{"title": "Normans", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}
    path.write_text(json.dumps(data))
    return path


def test_squad2_marks_the_answering_sentence_and_none_for_the_unanswerable(tmp_path) -> None:
    answered, unanswerable = read_squad_json(_squad(tmp_path / "s.json", True), "squad2")
    assert answered.sentences[min(answered.answers)] == (
        "Their leader Rollo swore fealty to King Charles III."
    )
    assert answered.answer_text == "King Charles III" and answered.article == "squad2:Normans"
    assert not unanswerable.answerable and unanswerable.sentences == answered.sentences


def test_qed_tokenised_text_is_mapped_back_to_its_answer_sentence(tmp_path) -> None:
    text = "Webbed toes is the common name for syndactyly . It is n't rare ( 1 in 2,000 ) ."
    record = {
        "example_id": 7,
        "paragraph_text": text,
        "question_text": "how common are webbed toes",
        "title_text": "Webbed toes",
        "answer_spans": [[text.index("1 in"), text.index("1 in") + 11]],
        "answer_text": ["1 in 2,000"],
        "sentence_starts": [0, text.index("It")],
    }
    path = tmp_path / "qed.jsonlines"
    path.write_text(json.dumps(record) + "\n")
    (question,) = read_qed(path)
    assert question.sentences == (
        "Webbed toes is the common name for syndactyly.",
        "It isn't rare (1 in 2,000).",
    )
    assert question.answers == {1} and question.question == "How common are webbed toes?"
    assert detokenize("the firm 's `` best '' year") == 'the firm\'s "best" year'


def test_qed_reports_a_broken_record_by_file_and_line(tmp_path) -> None:
    path = tmp_path / "qed.jsonlines"
    path.write_text('{"example_id": 1}\n')
    with pytest.raises(EvalDataError, match=r"qed.jsonlines, line 1: not a QED record"):
        read_qed(path)


def test_selqa_keeps_its_candidates_and_answers(tmp_path) -> None:
    record = {
        "article": "Israel",
        "section": "Museums",
        "question": "Where is the Israel Museum?",
        "answers": [1],
        "candidates": ["Israel has museums.", "The Israel Museum is in Jerusalem."],
    }
    path = tmp_path / "selqa-ass-dev.json"
    path.write_text(json.dumps([record]))
    (question,) = read_selqa(path)
    assert question.answers == {1} and question.title == "Israel: Museums"


def test_news_text_gives_cloze_questions_and_their_unanswered_twins(tmp_path) -> None:
    path = tmp_path / "wikinews_2019.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "date", "title", "text"])
        writer.writerow(
            ["u1", "2019-01-04", "Building collapses", "Friday, January 4, 2019\n\n"
             "An apartment building collapsed on Monday in Magnitogorsk. "
             "A total of 39 people are confirmed dead, officials told state media."]
        )  # fmt: skip
        writer.writerow(
            ["u2", "2019-01-05", "Vote held", "Voters in Lower Saxony elected a new council."]
        )
    stories = read_wikinews(path)
    assert stories[0].sentences[0].startswith("An apartment building")  # dateline dropped
    pairs = list(news_questions(stories, per_story=2, seed=0))
    asked, elsewhere = next(p for p in pairs if "how many" in p[0].question)
    assert asked.question == (
        "A total of how many people are confirmed dead, officials told state media?"
    )
    answer = asked.sentences[min(asked.answers)]
    assert "39" in answer and asked.answer_text == "39"
    assert "A total of several people are confirmed dead" in " ".join(asked.sentences)
    assert elsewhere.article == stories[1].id and not elsewhere.answerable


def test_current_events_days_are_stories_of_their_summaries(tmp_path) -> None:
    (tmp_path / "2026-03-10-index.md").write_text(
        "---\ntitle: 2026 March 10\n---\n#### Armed conflicts\n\n"
        '* [Sudanese civil war](https://en.wikipedia.org/wiki/Sudan_(war) "Sudan (war)")\n'
        "  * Forty people are killed in a drone strike near "
        '[Abu Zabad](https://en.wikipedia.org/wiki/Abu_Zabad "Abu Zabad"), Sudan. '
        "[(Arab News)](https://www.arabnews.com/node/1)\n"
    )
    (story,) = read_current_events(tmp_path)
    assert story.published == "2026-03-10"
    assert story.sentences == ("Forty people are killed in a drone strike near Abu Zabad, Sudan.",)


def test_judge_examples_have_a_none_of_these_group_for_unanswerable_questions(tmp_path) -> None:
    questions = read_squad_json(_squad(tmp_path / "s.json", True), "squad2")
    examples = list(judge_examples(questions, seed=0, removed_share=1.0))
    answered, removed, unanswerable = examples
    assert answered.positive.startswith("Their leader Rollo swore fealty to King Charles III.")
    # The answering sentence with the answer replaced is a negative: it restates the
    # question without answering it.
    assert any(
        n.startswith("Their leader Rollo swore fealty to someone.") for n in answered.negatives
    )
    assert removed.positive is None and removed.texts == answered.negatives
    assert unanswerable.positive is None and unanswerable.texts


def _question(source: str, article: str) -> TrainQuestion:
    return TrainQuestion(f"{article}:1", source, article, "q?", "t", ("s.",), frozenset({0}))


def test_roles_split_by_article_and_squad2_keeps_a_third_for_choosing() -> None:
    articles = [f"squad2:{n:02d}" for n in range(17)]
    roles = [role_of("squad2", a, articles) for a in articles]
    assert roles.count("dev") == 6 and roles.count("combiner") == 6 and roles.count("reader") == 5
    questions = [_question("squad2", a) for a in articles for _ in range(2)]
    by_role = {role: with_role(questions, role) for role in ("reader", "combiner", "dev")}
    seen = [{q.article for q in qs} for qs in by_role.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sum(map(len, by_role.values())) == len(questions)


def test_split_b_titles_are_never_trained_on() -> None:
    questions = [_question("squad2", "squad2:A"), _question("squad2", "squad2:B")]
    questions = [
        TrainQuestion(q.id, q.source, q.article, q.question, title, q.sentences, q.answers)
        for q, title in zip(questions, ["Normans", "Super Bowl 50"], strict=True)
    ]
    kept = without_titles(questions, ["Super_Bowl_50"])
    assert [q.title for q in kept] == ["Normans"]


def test_sampling_per_source_is_seeded_and_bounded() -> None:
    questions = [_question("qed", f"qed:{n}") for n in range(10)] + [_question("selqa", "selqa:x")]
    first = sample_per_source(questions, 3, seed=1)
    assert first == sample_per_source(questions, 3, seed=1)
    assert (
        sum(q.source == "qed" for q in first) == 3 and sum(q.source == "selqa" for q in first) == 1
    )


def test_news_story_roles_hold_back_the_last_month_and_wikinews_2020() -> None:
    days = ["current_events:2026-07-31", "current_events:2026-08-01"]
    assert [role_of("current_events", d, days) for d in days] == ["reader", "combiner"]
    news = ["wikinews:wikinews_2019:0", "wikinews:wikinews_2020:0"]
    assert [role_of("wikinews", a, news) for a in news] == ["reader", "combiner"]


def _asked(question: str, sentences: tuple[str, ...], answers: set[int]) -> TrainQuestion:
    return TrainQuestion(
        "squadshifts:q",
        "squadshifts",
        "squadshifts:a",
        question,
        "t",
        sentences,
        frozenset(answers),
    )


PARAGRAPH = (
    "Tesla was born in Smiljan in 1856.",
    "He moved to Prague in 1880 to study.",
    "In 1884 he sailed to New York, where he met Edison.",
)


def test_a_twin_swaps_a_number_for_another_of_the_paragraph_of_the_same_shape() -> None:
    asked = _asked("Where did Tesla move in 1880?", PARAGRAPH, {1})
    twin = twin_question(asked, random.Random(0))
    # 1856 is in the sentence before the answer: only 1884 leaves the answer unsaid.
    assert twin == "Where did Tesla move in 1884?"


def test_a_twin_swaps_a_name_the_answering_sentences_lack() -> None:
    asked = _asked("When did Tesla sail to New York?", PARAGRAPH, {2})
    twins = {twin_question(asked, random.Random(seed)) for seed in range(20)}
    assert twins <= {
        "When did Smiljan sail to New York?",
        "When did Prague sail to New York?",
        "When did Tesla sail to Smiljan?",
        "When did Tesla sail to Prague?",
    }
    assert twins


def test_without_a_name_or_number_a_twin_takes_an_antonym_or_a_negation() -> None:
    sentences = ("the first ship sailed at dawn.", "it sank.")
    assert twin_question(_asked("what was the first ship?", sentences, {0}), random.Random(0)) == (
        "what was the last ship?"
    )
    negated = {
        twin_question(_asked("what does a ship carry?", sentences, {0}), random.Random(seed))
        for seed in range(40)
    }
    assert negated == {None, "what doesn't a ship carry?"}


def test_twins_are_unanswerable_seeded_and_only_of_answerable_questions(tmp_path) -> None:
    answered, unanswerable = read_squad_json(_squad(tmp_path / "s.json", True), "squad2")
    twins = unanswerable_twins([answered, unanswerable], share=1.0, seed=0)
    assert twins == unanswerable_twins([answered, unanswerable], share=1.0, seed=0)
    (twin,) = twins
    # Normandy is named in the sentence before the answer: "Normans" is the swap left.
    assert twin.question == "Who did Normans swear fealty to?"
    assert twin.id == answered.id + ":twin" and twin.article == answered.article
    assert not twin.answerable and twin.sentences == answered.sentences
    # Its original answering sentence is among its negatives: the hardest one.
    (example,) = judge_examples(twins, seed=0)
    assert example.positive is None
    assert any(n.startswith("Their leader Rollo swore fealty") for n in example.negatives)
    assert unanswerable_twins([answered], share=0.0, seed=0) == []


def _twins(question: str, sentences: tuple[str, ...], answers: set[int]) -> set[str | None]:
    return {
        twin_question(_asked(question, sentences, answers), random.Random(s)) for s in range(30)
    }


def test_a_change_a_sentence_of_the_paragraph_answers_is_not_taken() -> None:
    # "When did the war end?" is answered by the sentence that answered "... start?".
    war = ("The war began in 1939 and ended in 1945.", "It was long.")
    assert _twins("When did the war start?", war, {0}) <= {None, "When didn't the war start?"}
    # 1943 is another sentence's year, and that sentence says who led an army then.
    armies = ("In 1944 Eisenhower led the army.", "Montgomery led the army in 1943.")
    assert "Who led the army in 1943?" not in _twins("Who led the army in 1944?", armies, {0})


def test_a_twin_keeps_the_question_well_formed() -> None:
    # Not the "won" of "won't"; a negated question is not negated again; a possessive
    # stays one; a year moves by years, not centuries.
    assert _twins("Why won't the car start?", ("The car will not start.",), {0}) == {
        "Why won't the car end?"
    }
    assert _twins("Why didn't he go?", ("He did not go.", "It rained."), {0}) == {None}
    books = ("Obama's first book was Dreams.", "Later came, from Biden, a book.")
    assert _twins("What was Obama's first book?", books, {0}) == {"What was Biden's first book?"}
    years = {t for t in _twins("What did Apple buy in 2010?", ("Apple bought Siri in 2010.",), {0})}
    assert years and all(1995 <= int(t.split()[-1].rstrip("?")) <= 2025 for t in years)


def test_a_news_question_is_asked_elsewhere_only_of_a_story_of_its_own_role() -> None:
    # Wikinews 2019 trains the reader, 2020 fits the confidence: a 2020 story's question
    # asked against a 2019 story would take its question and sentence into training.
    def story(year: int, n: int) -> NewsStory:
        sentences = (f"A storm killed 12 people in Porto on day {n}.", "Roads were closed.")
        return NewsStory(f"wikinews:wikinews_{year}:{n}", "wikinews", "Storm", f"{year}", sentences)

    stories = [story(2019, n) for n in range(4)] + [story(2020, n) for n in range(4)]
    pairs = list(news_questions(stories, per_story=1, seed=0))
    assert len(pairs) == 8 and all(elsewhere for _, elsewhere in pairs)
    for asked, elsewhere in pairs:
        assert asked.article.split(":")[1] == elsewhere.article.split(":")[1]
