"""What the CLI's commands share at the terminal: one echo that takes out control
characters, a note or a progress bar while something slow runs, a report's lines and exit
status, and the index a command opens."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from bot.render import printable
from index.report import IndexReport
from index.settings import Settings


def echo(text: str, err: bool = False, nl: bool = True) -> None:
    """Every line citebot prints: article text, titles, file names and URLs come from
    outside, so what a terminal would act on is taken out."""
    click.echo(printable(text), err=err, nl=nl)


def open_store(settings: Settings) -> Any:
    """The index of `settings`, opened for one command (its models load when first used)."""
    from index.store.article_index import ArticleIndex

    return ArticleIndex(settings)


@contextmanager
def note(message: str) -> Iterator[None]:
    """`message` on a terminal's stderr while something slow runs, then erased."""
    shown = bool(message) and sys.stderr.isatty()
    if shown:
        sys.stderr.write(message)
        sys.stderr.flush()
    try:
        yield
    finally:
        if shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


class Progress:
    """A tqdm bar on stderr, sized once the index knows how many articles to embed; it says
    the model is loading until the first article is done."""

    LOADING = "loading the embedding model"

    def __init__(self, label: str, file: Any = None) -> None:
        self.label = label
        self.file = file
        self.bar: Any = None

    def __enter__(self) -> tuple[Callable[[int], None], Callable[[int], None]]:
        from tqdm import tqdm

        def on_total(total: int) -> None:
            self.bar = tqdm(
                total=total,
                desc=self.label,
                unit="article",
                file=self.file or sys.stderr,
                disable=None if total else True,
                postfix=self.LOADING,
                mininterval=0.2,
            )

        def progress(done: int) -> None:
            if self.bar is not None:
                first = self.bar.n == 0
                if first:
                    self.bar.set_postfix_str("", refresh=False)
                self.bar.update(done)
                if first:
                    self.bar.refresh()  # the loading note goes at once

        return progress, on_total

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def finish(report: IndexReport, verbose: bool = False) -> None:
    for line in report.lines(verbose):
        echo(line)
    if not report.ok:
        sys.exit(1)
