"""The source library for admins: the text of `citebot sources` and of the Slack commands
`/citebot sources` and `/citebot remove`, and the adder Slack uses (public URLs only).

The Slack listeners call these with the admin's user id and post the text they return;
nothing here talks to Slack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from index.errors import CitebotError
from index.fetch import FetchPolicy
from index.refresh import Refresher
from index.report import IndexReport
from index.settings import Settings
from index.status import SourceStatus


def slack_policy(settings: Settings) -> FetchPolicy:
    """URLs from Slack: public http(s) addresses only, but for `sources.allowed_hosts`."""
    return FetchPolicy(public_only=True, allowed_hosts=frozenset(settings.allowed_hosts))


def slack_adder(
    index: Any, settings: Settings, user: str = "slack"
) -> Callable[[list[str]], IndexReport]:
    """`add_sources` for the Slack app: adds URLs under the Slack fetch policy, recorded
    as added by `user` (pass the admin's user id when the listener has it)."""
    policy = slack_policy(settings)

    def add(urls: list[str], added_by: str = user) -> IndexReport:
        return index.add(urls, added_by=added_by, policy=policy)

    return add


def remove_text(index: Any, items: Sequence[str], user: str) -> str:
    """The reply to `/citebot remove SOURCE_OR_ARTICLE…` from admin `user`."""
    if not items:
        return "Usage: `/citebot remove SOURCE_OR_ARTICLE…` (see `/citebot sources`)"
    try:
        report = index.remove(list(items), removed_by=user)
    except CitebotError as err:  # its message says what to fix
        return f"I couldn't remove {', '.join(items)}: {err}"
    return "\n".join([f"Removed {', '.join(items)}: " + report.lines()[0], *report.lines()[1:]])


def sources_text(index: Any) -> str:
    """The reply to `/citebot sources`."""
    lines = sources_lines(index.sources())
    return "\n".join(lines) if lines else "The library has no sources yet."


def sources_lines(listed: Sequence[SourceStatus]) -> list[str]:
    """One line per source, then its details indented."""
    lines = []
    for status in listed:
        source = status.source
        who = (
            f"added by {source.added_by} at {source.added_at}"
            if source.origin == "added"
            else ("configured in index.sources")
        )
        lines.append(f"{source.kind:<8}{source.key}  ({status.indexed} articles)")
        lines.append(
            f"        {who}; last read {source.last_read or 'never'}, "
            f"last change {source.last_change or 'never'}"
        )
        if source.last_error:
            lines.append(f"        last error: {source.last_error}")
    return lines


def start_refreshing(index: Any, minutes: int) -> Refresher | None:
    """Starts the scheduled refresh of `citebot serve` (None when `minutes` is 0)."""
    if minutes <= 0:
        return None
    refresher = Refresher(index, minutes)
    refresher.start()
    return refresher
