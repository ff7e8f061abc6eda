"""When a question is asked, and what that says about which articles can answer it.

A news question is asked on a day: an article published after that day cannot be what it
is about, and "this week" or "recently" point at the articles of the days just before.
In Slack the day is today; an evaluation set gives each question its own date.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from index.retrieval import PublishedWindow

# Words that point at recent news, and how many days back they reach. "This week" in a
# question asked on a Thursday reaches back to the weekend before, hence 10.
_RECENT = (
    (re.compile(r"\b(today|tonight|yesterday|this morning)\b", re.I), 3),
    (
        re.compile(
            r"\b(this|last|past) (week|weekend)\b|\bthis past\b|\bin recent days\b|\bdays ago\b",
            re.I,
        ),
        10,
    ),
    (re.compile(r"\bthis month\b|\brecent(ly)?\b|\blatest\b|\bjust\b|\bnow\b", re.I), 31),
    (re.compile(r"\bthis year\b", re.I), 366),
)


def question_time(question: str, asked_on: date) -> PublishedWindow:
    """The publication dates `question`, asked on `asked_on`, allows and prefers; when
    several cues match ("this week" and "now"), the narrowest wins."""
    reaches = [days for pattern, days in _RECENT if pattern.search(question)]
    if not reaches:
        return PublishedWindow(asked_on)
    return PublishedWindow(asked_on, asked_on - timedelta(days=min(reaches)))
