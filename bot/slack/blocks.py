"""Renders an Answer as a Slack message: Block Kit blocks plus the plain-text fallback.

Pure functions, kept within Slack's limits: at most 50 blocks, 3000 characters of section
text, 2000 characters of button value, and MAX_BLOCKS_TEXT characters of text in all the
blocks of a message (quotes that don't fit are counted in a "…and N more" line). Every text
from an article or a remote server is escaped, in the blocks and in the fallback text: a
quote's "<!channel>" must not ping anyone.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from bot.answering.answers import Answer, Citation, PassageHit
from bot.slack import messages
from bot.slack.messages import escape

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
# A note in a context block (the LLM's check) is cut to this many characters.
MAX_NOTE_TEXT = 2000
MAX_BUTTON_VALUE = 2000
MAX_MESSAGE_TEXT = 40000
# The text of all a message's blocks together: Slack refuses a message at around 12,000
# to 13,000 characters in total (measured with 60 long quotes), whatever each block holds.
MAX_BLOCKS_TEXT = 11_000
# The plain-text fallback (notifications, screen readers) is kept short.
MAX_FALLBACK_TEXT = 3000
# A quoted passage (shown when nothing is cited) is cut to this many characters.
PASSAGE_CHARS = 600
# Longer links are shown without their text fragment, then without the link.
MAX_LINK_CHARS = 1500
# A sentence of more words is highlighted by its first and last FRAGMENT_WORDS words.
FRAGMENT_WORDS = 5

Block = dict[str, Any]


def answer_blocks(
    answer: Answer,
    answer_id: str,
    *,
    share: bool = False,
    asked_by: str | None = None,
    notes: tuple[str, ...] = (),
    feedback_element: bool = False,
) -> list[Block]:
    """The message for `answer`; its buttons carry `answer_id` so a click finds the answer.

    `share` adds the "Share to channel" button (for the private `/ask` answer);
    `asked_by` (a user id) puts "<@user> asked: question" on top (for a shared answer);
    `notes` (raw text, escaped here) go on top in small print: how a follow-up was read,
    which sources the channel answers from. `feedback_element` shows 👍 / 👎 with Slack's
    feedback buttons element (the assistant view) instead of two buttons.
    """
    head: list[Block] = []
    if asked_by:
        question = fit(_one_line(answer.question), MAX_SECTION_TEXT // 2)
        head.append(_section(messages.ASKED.format(user=asked_by, question=question)))
    head += [_context(fit(_one_line(note), MAX_NOTE_TEXT)) for note in notes]
    if answer.answered:
        head += _model_blocks(answer)
        quotes = [
            _citation_section(c, n if answer.summary else None)
            for n, c in enumerate(answer.citations, 1)
        ]
    else:
        head.append(_section(messages.NO_ANSWER if answer.passages else messages.NOTHING_FOUND))
        if answer.hint:
            head.append(_context(answer.hint))
        quotes = [_passage_section(p) for p in answer.passages]
    buttons = _feedback_element(answer_id) if feedback_element and not share else None
    tail = [_sources_footer(answer), buttons or _buttons(answer_id, share)]
    tail = [block for block in tail if block]
    return head + _fitting(quotes, head + tail) + tail


def _fitting(quotes: list[Block], others: list[Block]) -> list[Block]:
    """As many of `quotes` as fit in the message beside `others`, and a line saying how
    many more were left out."""
    room_blocks = MAX_BLOCKS - len(others)
    room_text = MAX_BLOCKS_TEXT - sum(map(block_text_length, others))
    note_room = len(messages.MORE_QUOTES.format(count=len(quotes)))
    kept: list[Block] = []
    used = 0
    for n, block in enumerate(quotes):
        last = n == len(quotes) - 1
        # Room for this quote, and for the "…and N more" line unless it is the last.
        blocks_needed = 1 if last else 2
        text_needed = block_text_length(block) + (0 if last else note_room)
        if len(kept) + blocks_needed > room_blocks or used + text_needed > room_text:
            left_out = len(quotes) - len(kept)
            return kept + [_context(messages.MORE_QUOTES.format(count=left_out))]
        kept.append(block)
        used += block_text_length(block)
    return kept


def block_text_length(block: Block) -> int:
    """The characters of every text in a block (what Slack's total limit counts)."""
    if isinstance(block, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else block_text_length(v)
            for k, v in block.items()
        )
    if isinstance(block, list):
        return sum(map(block_text_length, block))
    return 0


def answer_text(answer: Answer) -> str:
    """The plain-text fallback Slack shows in notifications and where blocks can't render.

    Escaped like the blocks, and cut (with "…and N more") to MAX_FALLBACK_TEXT."""
    if answer.answered:
        # The model's words go out escaped: a "<!channel>" in a reply must not ping anyone.
        head = [escape(answer.summary)] if answer.summary else []
        items = [
            f"“{escape(_one_line(c.text))}” ({escape(_one_line(c.title))})"
            for c in answer.citations
        ]
    else:
        head = [messages.NO_ANSWER if answer.passages else messages.NOTHING_FOUND]
        head += [answer.hint] if answer.hint else []
        items = [
            f"“{escape(_one_line(p.text)[:PASSAGE_CHARS])}” ({escape(_one_line(p.title))})"
            for p in answer.passages
        ]
    lines = [fit(line, MAX_FALLBACK_TEXT // 2, escaped=False) for line in head]
    used = sum(len(line) + 1 for line in lines)
    for n, item in enumerate(items):
        more = messages.MORE_QUOTES.format(count=len(items) - n)
        if used + len(item) + 1 + (len(more) + 1 if n < len(items) - 1 else 0) > MAX_FALLBACK_TEXT:
            lines.append(more)
            break
        lines.append(item)
        used += len(item) + 1
    return "\n".join(lines)


def text_fragment_url(url: str, sentence: str) -> str:
    """`url` with a `#:~:text=` fragment, so a browser opens it highlighting `sentence`."""
    words = sentence.split()
    if len(words) > 2 * FRAGMENT_WORDS:
        directive = (
            _fragment_part(" ".join(words[:FRAGMENT_WORDS]))
            + ","
            + _fragment_part(" ".join(words[-FRAGMENT_WORDS:]))
        )
    else:
        directive = _fragment_part(" ".join(words))
    # An existing fragment stays; the text directive follows it after ":~:".
    return url + (":~:" if "#" in url else "#:~:") + "text=" + directive


def fit(text: str, limit: int, escaped: bool = True) -> str:
    """`text` (raw), escaped for mrkdwn when `escaped`, cut with "…" to at most `limit` chars.

    Cuts the raw text, never an escape sequence in half.
    """
    render = escape if escaped else (lambda s: s)
    if len(render(text)) <= limit:
        return render(text)
    low, high = 0, len(text)
    while low < high:  # the longest prefix whose rendering fits, with room for "…"
        middle = (low + high + 1) // 2
        if len(render(text[:middle])) + 1 <= limit:
            low = middle
        else:
            high = middle - 1
    return render(text[:low].rstrip()) + "…"


# Copies of a quoted sentence in other articles named under it; the rest are counted.
MAX_OUTLETS = 4


def _citation_section(citation: Citation, number: int | None = None) -> Block:
    """The quote; `number` ("[2]") when an LLM summary refers to it."""
    sentence = _one_line(citation.text)
    link = _source_link(citation.title, citation.source, citation.url, quote_text=sentence)
    attribution = "— " + link + _date_suffix(citation.published)
    if citation.also_in:
        shown = citation.also_in[:MAX_OUTLETS]
        outlets = [_source_link(o.title, o.source, o.url, sentence) for o in shown]
        more = len(citation.also_in) - len(shown)
        attribution += "\nalso in: " + ", ".join(outlets) + (f" and {more} more" if more else "")
    prefix = f"[{number}] " if number else ""
    room = MAX_SECTION_TEXT - len(attribution) - len("> \n") - len(prefix)
    return _section("> " + prefix + fit(sentence, room) + "\n" + attribution)


def _model_blocks(answer: Answer) -> list[Block]:
    """The LLM's checked summary and a note on what it was checked against, or why the
    quotes stand alone."""
    report = answer.model
    if report is None:
        return []
    model = report.model[:100]  # escaped with the note
    if not answer.summary:
        failure = report.failure or ""
        return [
            _context(fit(messages.MODEL_FAILED.format(model=model, failure=failure), MAX_NOTE_TEXT))
        ]
    if report.left_out:
        count = len(report.left_out)
        sentences = "1 sentence" if count == 1 else f"{count} sentences"
        note = messages.MODEL_LEFT_OUT.format(model=model, count=sentences)
    else:
        note = messages.MODEL_CHECKED.format(model=model)
    return [_section(fit(answer.summary, MAX_SECTION_TEXT)), _context(fit(note, MAX_NOTE_TEXT))]


def _passage_section(passage: PassageHit) -> Block:
    text = _one_line(passage.text)
    attribution = "— " + _source_link(passage.title, passage.source, passage.url)
    attribution += _date_suffix(passage.published)
    room = min(PASSAGE_CHARS, MAX_SECTION_TEXT - len(attribution) - len("> \n"))
    return _section("> " + fit(text, room) + "\n" + attribution)


def _sources_footer(answer: Answer) -> Block | None:
    items = answer.citations if answer.answered else answer.passages
    seen: dict[tuple[str, str | None], str] = {}
    for item in items:
        key = (item.source, item.url)
        if key not in seen:
            seen[key] = _source_link(item.title, item.source, item.url) + _date_suffix(
                item.published, separator=" "
            )
    if not seen:
        return None
    text = f"*{messages.SOURCES}:* " + " · ".join(seen.values())
    if len(text) > MAX_SECTION_TEXT:  # links can't be cut safely; fall back to titles only
        titles = {(i.source, i.url): i.title for i in items}
        text = fit(f"{messages.SOURCES}: " + " · ".join(titles.values()), MAX_SECTION_TEXT)
    return _context(text)


def _buttons(answer_id: str, share: bool) -> Block:
    value = answer_id[:MAX_BUTTON_VALUE]
    elements = [
        _button(messages.HELPFUL, "feedback_up", value),
        _button(messages.NOT_HELPFUL, "feedback_down", value),
    ]
    if share:
        elements.append(_button(messages.SHARE, "share_answer", value) | {"style": "primary"})
    return {"type": "actions", "block_id": "citebot_answer", "elements": elements}


def _feedback_element(answer_id: str) -> Block:
    """👍 / 👎 as Slack's feedback buttons element; each value is "up:ID" or "down:ID"."""
    value = answer_id[: MAX_BUTTON_VALUE - 5]

    def side(label: str, vote: str, accessible: str) -> Block:
        return {
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "value": f"{vote}:{value}",
            "accessibility_label": accessible,
        }

    return {
        "type": "context_actions",
        "block_id": "citebot_answer",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": "feedback",
                "positive_button": side(messages.HELPFUL, "up", messages.HELPFUL_LABEL),
                "negative_button": side(messages.NOT_HELPFUL, "down", messages.NOT_HELPFUL_LABEL),
            }
        ],
    }


def _button(label: str, action_id: str, value: str) -> Block:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "action_id": action_id,
        "value": value,
    }


def _source_link(title: str, source: str, url: str | None, quote_text: str | None = None) -> str:
    """The title linked to the article (at the quoted sentence), or with the file name."""
    label = fit(_one_line(title) or _file_name(source), 300)
    if url:
        target = text_fragment_url(url, quote_text) if quote_text else url
        if len(target) > MAX_LINK_CHARS:
            target = url
        if len(target) <= MAX_LINK_CHARS:
            return f"<{_link_safe(target)}|{label}>"
        return f"*{label}*"
    name = _file_name(source)
    return f"*{label}* ({fit(name, 200)})" if name and name != title else f"*{label}*"


def _date_suffix(published: str | None, separator: str = ", ") -> str:
    if not published:
        return ""
    # An ISO timestamp reads better as its day.
    day = published[:10] if re.match(r"\d{4}-\d{2}-\d{2}T", published) else published
    text = fit(day, 40)
    return f" ({text})" if separator == " " else separator + text


def _file_name(source: str) -> str:
    return PurePath(source.split("#", 1)[0]).name or source


def _fragment_part(text: str) -> str:
    # "-", "," and "&" are syntax inside a text directive, so they must be percent-encoded;
    # quote() leaves "-" alone as an unreserved character.
    return quote(text, safe="").replace("-", "%2D")


def _link_safe(url: str) -> str:
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
