"""Plain-text rendering of answers and reports for the terminal."""

from __future__ import annotations

import re
import textwrap

from bot.answering.answers import Answer, Citation, Outlet, PassageHit
from index.report import redacted

NOT_ANSWERED = "The indexed articles don't answer this question."
LEFT_OUT = "Left out of the model's answer, not supported by the quotes it cited:"
MODEL_FAILED = "No answer from the model ({failure}); the quotes alone:"


# C0 controls but tab and newline, DEL, C1 controls, and the marks that reorder text: a
# terminal obeys ESC and CSI sequences (colours, window titles, OSC 8 links, clearing the
# screen), and an article, a file name or a URL may hold any of them.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without the characters a terminal would act on instead of showing, and
    without the credentials of any URL in it."""
    return redacted(_CONTROL.sub("", text))


def render_answer(answer: Answer, width: int = 88) -> str:
    lines: list[str] = []
    if answer.summary:
        lines += textwrap.wrap(answer.summary, width=width) + [""]
    elif answer.model and answer.model.failure and answer.answered:
        lines += textwrap.wrap(MODEL_FAILED.format(failure=answer.model.failure), width) + [""]
    if answer.answered:
        for number, citation in enumerate(answer.citations, 1):
            lines += _quote(f"[{number}] \u201c{citation.text}\u201d", width)
            lines.append(f"    \u2014 {_attribution(citation)}")
            if citation.also_in:
                also = "; ".join(_attribution(outlet) for outlet in citation.also_in)
                lines += textwrap.wrap(
                    f"also in: {also}", width, initial_indent="      ", subsequent_indent="      "
                )
            lines.append("")
    else:
        lines.append(NOT_ANSWERED)
        if answer.hint:
            lines += textwrap.wrap(answer.hint, width)
        if answer.passages:
            lines.append("Closest passages:")
            lines.append("")
            for passage in answer.passages:
                lines += _quote(_shorten(passage.text, 300), width)
                lines.append(f"    \u2014 {_attribution(passage)}")
                lines.append("")
    if answer.model and answer.model.left_out:
        lines.append(LEFT_OUT)
        lines += [f"  - {claim}" for claim in answer.model.left_out]
    return "\n".join(lines).rstrip() + "\n"


def _attribution(item: Citation | PassageHit | Outlet) -> str:
    parts = [item.title, item.source]
    if item.published:
        parts.append(item.published)
    return ", ".join(parts)


def _quote(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent="  ", subsequent_indent="  ")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "\u2026"
