"""What a rebuild or an add did, article by article, for the CLI and Slack to show."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The user name and password of a URL (`https://user:secret@host/`): a source's key keeps
# them to fetch it, nothing that shows it does.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s<>@]*@")


def redacted(text: str) -> str:
    """`text` with the credentials of every URL in it shown as `***`."""
    return _USERINFO.sub(r"\1***@", text)


@dataclass(frozen=True)
class Failure:
    source: str
    reason: str


@dataclass
class IndexReport:
    """Sources (paths or URLs) per outcome; `passages_embedded` counts the encoder's work."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    passages_embedded: int = 0
    # Articles that were not read but stay indexed, each with why (see index/store/planning.py).
    kept: list[Failure] = field(default_factory=list)
    # Pages and feeds downloaded (a refresh of unchanged feeds downloads only the feeds).
    downloads: int = 0
    # Each source read and how its read went ("not modified ... (HTTP 304)", "read, 3
    # articles"), shown with every article.
    sources: list[tuple[str, str]] = field(default_factory=list)
    # Articles of this change that another process writing to the same Chroma server at
    # the same time embedded (index/store/writers.py).
    shared: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, "
            f"{len(self.failed)} failed"
        )

    def lines(self, every_article: bool = False) -> list[str]:
        """The summary, each added, changed and removed article, why articles were kept,
        then one line per failure naming the source and the reason; with
        `every_article`, also how each source's read went and each unchanged article."""
        lines = [self.summary()]
        if self.shared:
            lines.append(
                f"{self.shared} article(s) embedded by another citebot process writing at "
                "the same time"
            )
        if every_article:
            lines += [f"source: {source}: {outcome}" for source, outcome in self.sources]
        outcomes = ("added", "changed") + (("unchanged",) if every_article else ()) + ("removed",)
        for outcome in outcomes:
            lines += [f"{outcome}: {source}" for source in getattr(self, outcome)]
        reasons: dict[str, int] = {}
        for kept in self.kept:
            reasons[kept.reason] = reasons.get(kept.reason, 0) + 1
        for reason, count in reasons.items():
            lines.append(f"kept {count} article(s): {reason}{_KEPT_HINTS.get(reason, '')}")
        lines += [f"failed: {f.source}: {f.reason}" for f in self.failed]
        return [redacted(line) for line in lines]


_KEPT_HINTS = {
    "its source is no longer configured or added": (
        " (run `citebot index rebuild --prune` to remove them, or `citebot remove` one)"
    ),
}
