"""What a rebuild or an add did, article by article, for the CLI and Slack to show."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        """The summary, then one line per failure naming the source and the reason (and
        with `every_article`, first a line per article saying what happened to it)."""
        lines = [self.summary()]
        if every_article:
            for outcome in ("added", "changed", "unchanged", "removed"):
                lines += [f"{outcome}: {source}" for source in getattr(self, outcome)]
        return lines + [f"failed: {f.source}: {f.reason}" for f in self.failed]
