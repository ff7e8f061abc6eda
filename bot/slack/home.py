"""The Home tab and the "Add a URL or feed" modal, as Block Kit views: pure functions.

Everyone sees how to ask and what is indexed; admins also see the library's sources (each
with its last error, added ones with a Remove button), an "Add a URL or feed" button, the
latest change made from Slack, the latest rebuild or refresh, and the latest 👎 answers
with their questions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.slack import messages
from bot.slack.backend import IndexedSource, Overview
from bot.slack.blocks import MAX_SECTION_TEXT, fit
from bot.slack.messages import escape
from bot.slack.state import Feedback, Report
from index.sources.library import LibraryReport

View = dict[str, Any]
ADD_SOURCE_MODAL = "citebot_add_source"
# A Home tab holds at most 100 blocks; sources beyond this many blocks (a source takes
# one, a private one two) are counted, not listed.
SOURCE_BLOCKS = 60
MAX_BUTTON_VALUE = 2000


def home_view(
    overview: Overview | None,
    admin: bool,
    report: Report | None = None,
    down_votes: Sequence[Feedback] = (),
) -> View:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(messages.HOME_TITLE)},
        _section(messages.HOME_HOW_TO_ASK),
        _section(_indexed(overview)),
    ]
    if admin:
        blocks += [{"type": "divider"}, {"type": "header", "text": _plain(messages.HOME_ADMIN)}]
        blocks += _sources(overview)
        blocks.append(
            {
                "type": "actions",
                "block_id": "home_admin",
                "elements": [
                    {
                        "type": "button",
                        "text": _plain(messages.HOME_ADD),
                        "action_id": "home_add_source",
                        "style": "primary",
                    }
                ],
            }
        )
        blocks.append(_section(_report(report)))
        if overview is not None and overview.last_report is not None:
            blocks.append(_section(_library_report(overview.last_report)))
        blocks.append(_section(messages.HOME_DOWN_VOTES))
        blocks += [_section(_down_vote(f)) for f in down_votes] or [
            _context(messages.HOME_NO_DOWN_VOTES)
        ]
    return {"type": "home", "blocks": blocks}


def add_source_modal() -> View:
    return {
        "type": "modal",
        "callback_id": ADD_SOURCE_MODAL,
        "title": _plain(messages.MODAL_TITLE),
        "submit": _plain(messages.MODAL_SUBMIT),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "urls",
                "label": _plain(messages.MODAL_LABEL),
                "hint": _plain(messages.MODAL_HINT),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "urls",
                    "multiline": True,
                    "placeholder": _plain("https://example.com/news/story"),
                },
            }
        ],
    }


def _indexed(overview: Overview | None) -> str:
    if overview is None:
        return messages.HOME_UNREACHABLE
    rebuilt = (
        messages.HOME_REBUILT.format(rebuilt=_day(overview.rebuilt_at))
        if overview.rebuilt_at
        else ""
    )
    return messages.HOME_INDEXED.format(
        articles=f"{overview.articles:,}",
        sources=f"{len(overview.sources):,}",
        updated=_day(overview.updated_at) or "never",
        rebuilt=rebuilt,
    )


def _sources(overview: Overview | None) -> list[dict[str, Any]]:
    if overview is None:
        return []
    blocks = [_section(messages.HOME_SOURCES)]
    shown = 0
    for source in overview.sources:
        more = _source_blocks(source)
        if len(blocks) + len(more) > SOURCE_BLOCKS:
            break
        blocks += more
        shown += 1
    if len(overview.sources) > shown:
        more_count = len(overview.sources) - shown
        blocks.append(_context(messages.HOME_MORE_SOURCES.format(count=more_count)))
    return blocks


def _source_blocks(source: IndexedSource) -> list[dict[str, Any]]:
    """The source's section (with a Remove button when it was added), and for a private
    one, its Make public button."""
    block = _section(_source(source))
    blocks = [block]
    if source.visible_in and len(source.source) <= MAX_BUTTON_VALUE:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": _plain(messages.HOME_SHARE),
                        "action_id": "home_share_source",
                        "value": source.source,
                        "confirm": {
                            "title": _plain(messages.HOME_SHARE),
                            "text": _plain(
                                fit(
                                    messages.HOME_SHARE_CONFIRM.format(source=source.source),
                                    300,
                                    escaped=False,
                                )
                            ),
                            "confirm": _plain(messages.HOME_SHARE),
                            "deny": _plain("Cancel"),
                        },
                    }
                ],
            }
        )
    if not source.configured and len(source.source) <= MAX_BUTTON_VALUE:
        block["accessory"] = {
            "type": "button",
            "text": _plain(messages.HOME_REMOVE),
            "action_id": "home_remove_source",
            "value": source.source,
            "style": "danger",
            "confirm": {
                "title": _plain(messages.HOME_REMOVE),
                "text": _plain(
                    fit(
                        messages.HOME_REMOVE_CONFIRM.format(
                            source=source.source, articles=source.articles
                        ),
                        300,
                        escaped=False,
                    )
                ),
                "confirm": _plain(messages.HOME_REMOVE),
                "deny": _plain("Cancel"),
                "style": "danger",
            },
        }
    return blocks


def _source(source: IndexedSource) -> str:
    if source.configured:
        how = messages.HOME_CONFIGURED
    elif source.kind:
        how = messages.HOME_ADDED.format(who=_person(source.added_by))
    else:
        how = messages.HOME_INDEXED_ONLY
    text = messages.HOME_SOURCE.format(
        source=fit(source.source, 500),
        kind=escape(source.kind or "article"),
        articles=source.articles,
        how=how,
    )
    if source.visible_in:
        text += messages.HOME_PRIVATE.format(where=_conversation(source.visible_in))
    if source.last_error:
        text += messages.HOME_SOURCE_ERROR.format(error=fit(source.last_error, 1000))
    return text


def _conversation(channel: str) -> str:
    """A channel as a link Slack names; a DM (which no link names) as what it is."""
    if re.fullmatch(r"[CG][A-Z0-9]{2,}", channel):
        return f"<#{channel}>"
    return messages.HOME_DM.format(channel=escape(channel))


def _person(added_by: str) -> str:
    """A Slack user id as a mention (Slack shows the name); anyone else (a local user
    who ran `citebot add`) by name."""
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", added_by):
        return f"<@{added_by}>"
    return escape(added_by or "someone")


def _library_report(report: LibraryReport) -> str:
    lines = fit("\n".join(report.lines), MAX_SECTION_TEXT - 200)
    return messages.HOME_LIBRARY_REPORT.format(
        what=escape(report.what), when=_day(report.at), lines=lines
    )


def _report(report: Report | None) -> str:
    if report is None:
        return messages.HOME_NO_REPORT
    # The report is mrkdwn already, its remote parts escaped when it was made.
    text = messages.HOME_REPORT.format(when=_day(_iso(report.time)), report=report.text)
    return text if len(text) <= MAX_SECTION_TEXT else text[: MAX_SECTION_TEXT - 1] + "…"


def _down_vote(vote: Feedback) -> str:
    answer = json.loads(vote.answer_json)
    quotes = [c["text"] for c in answer.get("citations", [])] or [
        p["text"] for p in answer.get("passages", [])[:1]
    ]
    shown = "> " + fit(" ".join(quotes[0].split()), 600) if quotes else "(no passage found)"
    text = messages.HOME_DOWN_VOTE.format(
        user=escape(vote.user),
        when=_day(_iso(vote.time)),
        question=fit(" ".join(vote.question.split()), 500),
        answer=shown,
    )
    return text[:MAX_SECTION_TEXT]


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="minutes")


def _day(iso: str | None) -> str:
    return escape(iso.replace("T", " ")[:16]) if iso else ""


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
