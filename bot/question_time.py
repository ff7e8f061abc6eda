"""When a question is asked, and what that says about which articles can answer it.

A news question is asked on a day: an article published after that day cannot be what it
is about, and "this week" or "recently" point at the articles of the days just before.
In Slack the day is today; an evaluation set gives each question its own date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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


@dataclass(frozen=True)
class QuestionTime:
    """The day a question is asked on and, when its words point at recent news, the first
    day of that recent period."""

    asked_on: date
    recent_from: date | None = None

    @property
    def latest(self) -> str:
        """The last publication date an answering article can have (YYYY-MM-DD): the
        day asked. (A day's slack for time zones let in the next day's newsletters that
        quote a news quiz's questions, and cost 0.01 of RealTime QA hit@1.)"""
        return self.asked_on.isoformat()

    @property
    def recent_dates(self) -> list[str]:
        """Every publication date of the recent period, oldest first (empty without one)."""
        if self.recent_from is None:
            return []
        days = (self.asked_on - self.recent_from).days
        return [(self.recent_from + timedelta(days=d)).isoformat() for d in range(days + 1)]

    @property
    def window(self) -> PublishedWindow:
        return PublishedWindow(self.latest, self.recent_dates)

    def is_recent(self, published: str | None) -> bool:
        return (
            bool(published)
            and self.recent_from is not None
            and (self.recent_from.isoformat() <= published[:10] <= self.latest)
        )


def question_time(question: str, asked_on: date) -> QuestionTime:
    """The time frame of `question` asked on `asked_on`; when several cues match ("this
    week" and "now"), the narrowest wins."""
    reaches = [days for pattern, days in _RECENT if pattern.search(question)]
    if not reaches:
        return QuestionTime(asked_on)
    return QuestionTime(asked_on, asked_on - timedelta(days=min(reaches)))
