"""`citebot chat`: many questions in one process, each a follow-up of the ones before."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_index import write_articles

from bot.answering.answerer import Answerer
from bot.answering.answers import Answer, Citation
from bot.answering.context import THREAD_TURNS_KEPT, QuestionContext
from bot.chat import Conversation
from bot.cli import main
from bot.terminal import open_store
from index.settings import load_settings


def test_three_questions_in_one_process_each_read_with_the_earlier(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    assert CliRunner().invoke(main, ["index", "rebuild", "--sources", str(folder)]).exit_code == 0
    questions = [
        "How many ferries can the harbour berth?",
        "When did it open?",
        "/new",
        "What do apple growers in Kent expect?",
    ]

    result = CliRunner().invoke(main, ["chat", "--json"], input="\n".join(questions) + "\n\n")

    assert result.exit_code == 0, result.stderr
    first, second, third = [json.loads(line) for line in result.stdout.splitlines()]
    assert first["citations"][0]["text"] == "The harbour can berth six ferries at once."
    assert first["earlier_questions"] == []
    assert second["earlier_questions"] == [questions[0]]
    assert second["answered"] and "harbour.txt" in second["citations"][0]["source"]
    assert third["earlier_questions"] == []  # /new started over
    assert "record harvest" in third["citations"][0]["text"]


def test_chat_prints_each_answer_as_ask_does(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles")
    CliRunner().invoke(main, ["index", "rebuild", "--sources", str(folder)])

    result = CliRunner().invoke(
        main, ["chat"], input="How many ferries can the harbour berth?\n/quit\nignored?\n"
    )

    assert result.exit_code == 0, result.stderr
    assert "\u201cThe harbour can berth six ferries at once.\u201d" in result.stdout
    assert result.stdout.count("\u201c") == 1  # nothing after /quit


def test_after_the_first_question_nothing_is_loaded_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_articles(tmp_path / "articles")
    assert CliRunner().invoke(main, ["index", "rebuild", "--sources", str(folder)]).exit_code == 0
    settings = load_settings()
    conversation = Conversation(Answerer(open_store(settings), settings))
    caplog.set_level(logging.INFO)

    conversation.ask("How many ferries can the harbour berth?")
    assert any("passage(s) of the index" in r.getMessage() for r in caplog.records)
    caplog.clear()
    conversation.ask("When did it open?")
    conversation.ask("What do apple growers in Kent expect?")

    # Each load says so at INFO (the models, the reader, the passages, a reopened store).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []


class RecordingAnswerer:
    """Answers every question citing the article named after it; records the contexts."""

    def __init__(self) -> None:
        self.contexts: list[QuestionContext] = []

    def answer(self, question: str, asked_on: object, context: QuestionContext) -> Answer:
        self.contexts.append(context)
        citation = Citation(
            text="A sentence.", title="t", source="s", url=None, published=None, score=1.0,
            article_id=f"article-of-{question}", start=0, end=11,
        )  # fmt: skip
        return Answer(question, True, [citation])


def test_a_follow_up_carries_the_last_questions_and_the_articles_they_cited() -> None:
    answerer = RecordingAnswerer()
    conversation = Conversation(answerer)
    for question in ("q1", "q2", "q3", "q4", "q5"):
        conversation.ask(question)

    first, second, *_, last = answerer.contexts
    assert first == QuestionContext()
    assert second.earlier_questions == ("q1",)
    assert second.cited_articles == {"article-of-q1"}
    assert last.earlier_questions == ("q2", "q3", "q4")[-THREAD_TURNS_KEPT:]
    assert last.cited_articles == {f"article-of-{q}" for q in ("q2", "q3", "q4")}

    conversation.start_over()
    conversation.ask("q6")
    assert answerer.contexts[-1] == QuestionContext()


class RewritingAnswerer(RecordingAnswerer):
    """Answers as the checked LLM answer does in a thread: a follow-up is rewritten into a
    standalone question, which is the answer's `question`."""

    def answer(self, question: str, asked_on: object, context: QuestionContext) -> Answer:
        if context.earlier_questions:
            question = f"{question.rstrip('?')} (about {context.earlier_questions[-1]})?"
        return super().answer(question, asked_on, context)


def test_a_follow_up_the_answerer_rewrote_is_shown_and_remembered_as_rewritten() -> None:
    answerer = RewritingAnswerer()
    conversation = Conversation(answerer)
    assert conversation.ask("who denied the claim?").read_as is None
    second = conversation.ask("why?")
    assert second.read_as == "why (about who denied the claim?)?"
    assert second.to_json()["read_as"] == second.read_as
    conversation.ask("when?")
    assert answerer.contexts[-1].earlier_questions == ("who denied the claim?", second.read_as)
