"""The source library for admins: the lines of `citebot sources` (and of `/citebot
sources` in Slack), adding from Slack (public URLs only), and the scheduled refresh of
`citebot serve`. Nothing here talks to Slack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from index.report import IndexReport
from index.settings import Settings
from index.sources.fetch import FetchPolicy, public_policy
from index.store.refresh import Refresher
from index.store.status import SourceStatus

if TYPE_CHECKING:  # llama-index: seconds, which the Slack app's import needn't pay
    from index.store.article_index import ArticleIndex


def slack_policy(settings: Settings) -> FetchPolicy:
    """URLs from Slack: public http(s) addresses only, but for `sources.allowed_hosts`."""
    return public_policy(settings.allowed_hosts)


def add_from_slack(
    index: ArticleIndex, settings: Settings, urls: list[str], added_by: str, visible_in: str = ""
) -> IndexReport:
    """Adds URLs (pages or feeds) an admin gave in Slack: public addresses only, but for
    `sources.allowed_hosts`; recorded as added by the admin's user id, and answering only
    in the conversation `visible_in` when it is set (one that is not public)."""
    return index.add(urls, added_by=added_by, policy=slack_policy(settings), visible_in=visible_in)


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
        noun = "article" if status.indexed == 1 else "articles"
        lines.append(f"{source.kind:<8}{source.key}  ({status.indexed} {noun})")
        lines.append(
            f"        {who}; last read {source.last_read or 'never'}, "
            f"last change {source.last_change or 'never'}"
        )
        if source.visible_in:
            lines.append(
                f"        private: answers only in {source.visible_in}, where it was added "
                "(`/citebot share` makes it public)"
            )
        if source.last_error:
            lines.append(f"        last error: {source.last_error}")
    return lines


def start_refreshing(
    index: ArticleIndex, minutes: int, on_finished: Callable[[bool], None] | None = None
) -> Refresher | None:
    """Starts the scheduled refresh of `citebot serve` (None when `minutes` is 0);
    `on_finished` is told whether each refresh it ran succeeded."""
    if minutes <= 0:
        return None
    refresher = Refresher(index, minutes, on_finished)
    refresher.start()
    return refresher
