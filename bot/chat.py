"""`citebot chat`, a conversation in the terminal: many questions in one process, each
read with the ones before it and the articles their answers cited, as a follow-up in a
Slack thread is (bot/answering/context.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import click

from bot.answering.answers import Answer, QuestionAnswerer
from bot.answering.context import THREAD_TURNS_KEPT, QuestionContext
from bot.render import render_answer
from bot.terminal import note, open_store
from index.settings import load_settings


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
    `start_over` forgets them. `answerer`: the extractive Answerer, or the checked LLM
    answer over it when [llm] is configured (which may rewrite a follow-up first)."""

    answerer: QuestionAnswerer
    asked_on: date | None = None
    turns: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def ask(self, question: str) -> Reply:
        kept = self.turns[-THREAD_TURNS_KEPT:]
        context = QuestionContext(
            earlier_questions=tuple(q for q, _ in kept),
            cited_articles=frozenset(a for _, ids in kept for a in ids),
        )
        answer = self.answerer.answer(question, self.asked_on, context)
        read_as = answer.question if answer.question != " ".join(question.split()) else None
        cited = tuple(dict.fromkeys(c.article_id for c in answer.citations))
        self.turns.append((read_as or question, cited))
        return Reply(answer, context.earlier_questions, read_as)

    def start_over(self) -> None:
        self.turns.clear()


@click.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Read questions from stdin, one a line; write one JSON answer a line.",
)
@click.option(
    "--no-llm", is_flag=True, help="Quotes only, even when an LLM is configured in [llm]."
)
def chat_command(as_json: bool, no_llm: bool) -> None:
    """Ask question after question in one process: the models load once. Each question
    is read as a follow-up of the ones before it (the last three) and favours the
    articles their answers cited, as in a Slack thread; `/new` starts over, `/quit` or
    Ctrl-D ends.

    \b
    Examples:
      citebot chat
      printf 'who denied the crematorium claim\\nwhat did the UN say\\n' | citebot chat --json
    """
    from bot.answering.answerer import Answerer
    from bot.answering.checked_llm import CheckedAnswerer, LlmConfig, make_llm

    settings = load_settings()
    answerer = Answerer(open_store(settings), settings)
    config = None if no_llm else LlmConfig.from_settings(settings)
    checked = config and CheckedAnswerer(answerer, make_llm(config), config)
    conversation = Conversation(checked or answerer)
    prompting = not as_json and sys.stdin.isatty()
    if prompting:
        try:
            import readline  # noqa: F401  (line editing and history at the prompt)
        except ImportError:  # pragma: no cover - Windows
            pass
        click.echo(CHAT_WELCOME, err=True)
    for question in _questions(prompting):
        if question == "/quit":
            break
        if question == "/new":
            conversation.start_over()
            if prompting:
                click.echo("(a new thread)", err=True)
            continue
        with note("Loading the models and answering…" if not conversation.turns else ""):
            reply = conversation.ask(question)
        if as_json:
            click.echo(json.dumps(reply.to_json(), ensure_ascii=False))
            continue
        if reply.read_as:
            click.echo(f"(read as: {reply.read_as})")
        click.echo(render_answer(reply.answer))


CHAT_WELCOME = "Ask a question about the indexed articles. /new starts over, /quit or Ctrl-D ends."


def _questions(prompting: bool) -> Iterator[str]:
    """The questions typed at a `> ` prompt, or read from stdin one a line; blank lines
    are skipped."""
    while True:
        try:
            line = input("> ") if prompting else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            if prompting:
                click.echo(err=True)
            return
        if not prompting and not line:
            return
        if line.strip():
            yield " ".join(line.split())
