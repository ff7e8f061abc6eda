"""A conversation in the terminal (`citebot chat`): many questions in one process, each
read with the ones before it and the articles their answers cited, as a follow-up in a
Slack thread is (bot/answering/context.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.answering.answers import Answer
from bot.answering.context import THREAD_TURNS_KEPT, QuestionContext


@dataclass(frozen=True)
class Reply:
    """An answer, the earlier questions it was read with, and, with an LLM, the question as
    the model rewrote the follow-up."""

    answer: Answer
    earlier_questions: tuple[str, ...]
    read_as: str | None = None

    def to_json(self) -> dict[str, Any]:
        extra = {"read_as": self.read_as} if self.read_as else {}
        return self.answer.to_json() | {"earlier_questions": list(self.earlier_questions)} | extra


@dataclass
class Conversation:
    """A thread of questions: `ask` answers one as the follow-up of the earlier ones,
    `start_over` forgets them. `llm_answerer`: a CheckedAnswerer, when [llm] is configured."""

    answerer: Any  # bot.answering.answerer.Answerer
    llm_answerer: Any = None
    asked_on: date | None = None
    turns: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def ask(self, question: str) -> Reply:
        kept = self.turns[-THREAD_TURNS_KEPT:]
        context = QuestionContext(
            earlier_questions=tuple(q for q, _ in kept),
            cited_articles=frozenset(a for _, ids in kept for a in ids),
        )
        read_as = None
        if self.llm_answerer is None:
            answer = self.answerer.answer(question, self.asked_on, context)
        else:
            if context.earlier_questions:
                read_as = self.llm_answerer.rewrite_follow_up(question, context.earlier_questions)
            answer = self.llm_answerer.answer(read_as or question, self.asked_on, context)
        cited = tuple(dict.fromkeys(c.article_id for c in answer.citations))
        self.turns.append((read_as or question, cited))
        return Reply(answer, context.earlier_questions, read_as)

    def start_over(self) -> None:
        self.turns.clear()
