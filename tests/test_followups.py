"""Follow-ups derived from SQuAD (`citebot eval --followups`): the pronoun rewrite, the
pairing, and that the follow-up is asked with its thread's context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_settings

from bot.answering.answerer import Answerer
from bot.answering.context import QuestionContext
from bot.cli import main
from bot.evaluation.followups import ask_follow_ups, follow_up_pairs, pronoun_rewrite
from bot.evaluation.readers import read_squad
from bot.evaluation.runner import build_index

FOLLOW_UPS = Path(__file__).parent / "fixtures" / "eval" / "squad-followups.json"


# -- the pronoun rewrite -------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "follow_up", "title", "rewritten", "subject"),
    [
        (
            "When was the University of Chicago founded?",
            "Who founded the University of Chicago?",
            "University of Chicago",
            "Who founded it?",
            "the University of Chicago",
        ),
        (
            "Where did the Normans settle?",
            "What language did the Normans speak?",
            "Normans",
            "What language did they speak?",
            "the Normans",
        ),
        (
            "What is the population of Kenya?",
            "What is Kenya's capital?",
            "Kenya",
            "What is its capital?",
            "Kenya's",
        ),
        (
            "What is Fresno known for?",
            "In what year was Fresno incorporated?",
            "Fresno, California",
            "In what year was it incorporated?",
            "Fresno",
        ),
        (
            "Where did Huguenots settle in America?",
            "Huguenots fled from which country?",
            "Huguenot",
            "They fled from which country?",
            "Huguenots",
        ),
    ],
)
def test_the_subject_the_first_question_named_becomes_a_pronoun(
    first: str, follow_up: str, title: str, rewritten: str, subject: str
) -> None:
    assert pronoun_rewrite(follow_up, first, title) == (rewritten, subject)


def test_a_person_the_paragraph_calls_he_is_he() -> None:
    paragraph = "Isiah Bowman was a geographer. He advised President Wilson in Paris."
    assert pronoun_rewrite(
        "Where did Isiah Bowman work?", "Who was Isiah Bowman?", "Imperialism", paragraph
    ) == ("Where did he work?", "Isiah Bowman")


@pytest.mark.parametrize(
    ("first", "follow_up", "title"),
    [
        # The first question never names the follow-up's subject.
        ("What is the capital of Kenya?", "When was Fresno incorporated?", "Fresno"),
        # A word of the subject would be left ("rainforest" is the title's).
        (
            "How old is the Amazon rainforest?",
            "How big is the Amazon compared with other rainforest?",
            "Amazon rainforest",
        ),
        # The subject's words are not all in the first question or the title ("Tower").
        ("When did the theatre open?", "What does the Tower Theatre show?", "Fresno"),
        # Names a kind, or modifies a noun: no pronoun fits there.
        ("How big are chloroplasts?", "What kind of chloroplasts do diatoms have?", "Chloroplast"),
        ("What is the Dutch name for the Rhine?", "How long is the Rhine delta?", "Rhine"),
        ("What did the Germanic tribes claim?", "What did the first Germanic kings do?", "Rhine"),
    ],
)
def test_no_rewrite_when_the_subject_would_not_really_be_removed(
    first: str, follow_up: str, title: str
) -> None:
    assert pronoun_rewrite(follow_up, first, title) is None


# -- the pairing --------------------------------------------------------------------


def test_pairs_are_two_questions_of_one_paragraph_one_per_paragraph_and_seeded() -> None:
    eval_set = read_squad(FOLLOW_UPS)
    pairs = follow_up_pairs(eval_set, seed=1)
    # The theatre's and the teachers' paragraphs have no subject both questions name.
    assert [(p.first.id, p.follow_up.id) for p in pairs] == [
        ("f1", "f2:follow-up"),
        ("k1", "k2:follow-up"),
    ]
    fresno, kenya = pairs
    assert fresno.follow_up.question == "When was it incorporated?"
    assert fresno.written == "When was Fresno incorporated?"
    assert fresno.follow_up.gold_spans == fresno.first.gold_spans
    assert fresno.follow_up.answers == ["1885"]
    assert kenya.follow_up.question == "When did it become independent?"
    assert follow_up_pairs(eval_set, seed=1) == pairs
    assert [p.first.id for p in follow_up_pairs(eval_set, seed=0)] == ["f2", "k2"]
    assert len(follow_up_pairs(eval_set, seed=1, limit=1)) == 1


# -- asking them --------------------------------------------------------------------


class RecordingAnswerer(Answerer):
    """The real answerer, remembering the context each question was asked in."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple] = []

    def answer_and_rank(self, question, asked_on=None, context=None):
        answer, ranking = super().answer_and_rank(question, asked_on, context)
        self.asked.append((question, context, answer))
        return answer, ranking


def test_the_follow_up_is_asked_in_the_first_questions_thread_and_alone(tmp_path: Path) -> None:
    eval_set = read_squad(FOLLOW_UPS)
    pairs = follow_up_pairs(eval_set, seed=1)
    built = build_index(eval_set.articles, make_settings(tmp_path, min_confidence=0.0))
    answerer = RecordingAnswerer(built.index, built.index.settings)
    results = ask_follow_ups(answerer, pairs)
    assert [len(r) for r in (results.first, results.in_thread, results.alone)] == [2, 2, 2]
    for n, pair in enumerate(pairs):
        first, in_thread, alone, written = answerer.asked[4 * n : 4 * n + 4]
        assert first[:2] == (pair.first.question, None)
        # As the Slack thread path builds it: the first question, the articles it cited.
        cited = frozenset(c.article_id for c in first[2].citations)
        assert cited, "the fixture's first questions are answered"
        assert in_thread[:2] == (
            pair.follow_up.question,
            QuestionContext(earlier_questions=(pair.first.question,), cited_articles=cited),
        )
        assert alone[:2] == (pair.follow_up.question, None)
        assert written[:2] == (pair.written, None)


def test_eval_followups_reports_each_row_and_the_pair_count() -> None:
    result = CliRunner().invoke(
        main, ["eval", "--format", "squad", str(FOLLOW_UPS), "--followups", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 follow-up pairs; 3 articles")
    assert "follow-up, thread's context" in result.output
    result = CliRunner().invoke(
        main,
        ["eval", "--format", "squad", str(FOLLOW_UPS), "--followups", "--seed", "1", "--json"],
    )
    summary = json.loads(result.output)
    assert summary["followups"] == 2
    assert summary["index_cached"] is True
    assert set(summary["rows"]) == {"first", "written", "in_thread", "alone"}
    assert set(summary["rows"]["in_thread"]) >= {"best_sentence_hit@1", "recall@1"}


def test_followups_with_baselines_is_a_one_line_error() -> None:
    result = CliRunner().invoke(
        main, ["eval", "--format", "squad", str(FOLLOW_UPS), "--followups", "--baselines"]
    )
    assert result.exit_code == 1
    assert "--followups applies to SQuAD sets only" in result.output
