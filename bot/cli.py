"""The `citebot` command: build the index, add sources, ask, serve the Slack bot."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from bot.render import render_answer
from index.errors import CitebotError
from index.report import IndexReport
from index.settings import Settings, load_settings


class CitebotGroup(click.Group):
    """Turns citebot's own errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CitebotError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=CitebotGroup)
@click.version_option(package_name="citebot")
def main() -> None:
    """citebot answers questions about news articles with quoted, cited sentences.

    \b
    Quick start:
      citebot index rebuild
      citebot ask "who denied the crematorium claim"
    """


@main.group(cls=CitebotGroup)
def index() -> None:
    """Build and inspect the index."""


@index.command("rebuild")
@click.option(
    "--sources",
    "sources",
    multiple=True,
    metavar="PATH_OR_URL",
    help="Index these instead of index.sources for this build (repeatable); sources added "
    "with `citebot add` stay.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also remove the articles of sources that are no longer configured.",
)
def index_rebuild(sources: tuple[str, ...], prune: bool) -> None:
    """Rebuild the index from the whole source library: the configured sources (or
    --sources) and every source added with `citebot add` or from Slack.

    Unchanged articles keep their vectors. An article leaves when its source was read
    and no longer holds it; a source that cannot be read keeps its articles (and is
    reported failed), and so does a folder no longer configured unless --prune.
    The new index replaces the old one only once it is complete.

    \b
    Example:
      citebot index rebuild --sources ~/articles --sources https://example.com/story
    """
    store = _store(load_settings())
    with _progress("Indexing") as (progress, on_total):
        report = store.rebuild(
            list(sources) or None, progress=progress, on_total=on_total, prune=prune
        )
    _finish(report)


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar="PATH_OR_URL...")
def add(sources: tuple[str, ...]) -> None:
    """Add or update articles (files, folders, http(s) URLs) in the index.

    \b
    Example:
      citebot add story.html exports/articles.jsonl https://example.com/story
    """
    store = _store(load_settings())
    with _progress("Adding") as (progress, on_total):
        report = store.add(list(sources), progress=progress, on_total=on_total)
    _finish(report)


@main.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Answer as if asked on this day (YYYY-MM-DD; default today): later articles are "
    'left out, and "this week" means the week before it.',
)
@click.option(
    "--no-llm", is_flag=True, help="Quotes only, even when an LLM is configured in [llm]."
)
def ask(question: tuple[str, ...], as_json: bool, as_of: datetime | None, no_llm: bool) -> None:
    """Answer QUESTION with sentences quoted from the indexed articles (and, when [llm] is
    configured, a short answer written by the model and checked against those quotes).

    \b
    Examples:
      citebot ask "who denied the crematorium claim"
      citebot ask --as-of 2022-06-16 "which automaker recalled cars this week?"
    """
    from bot.answering import Answerer
    from bot.llm import answer_function

    settings = load_settings()
    asked_on = as_of.date() if as_of else None
    answerer = Answerer(_store(settings), settings)
    answer = answer_function(answerer, settings, use_llm=not no_llm)(" ".join(question), asked_on)
    if as_json:
        click.echo(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_answer(answer), nl=False)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """Show what is indexed: articles, passages, model, data directory, last rebuild."""
    info = _store(load_settings()).status()
    if as_json:
        click.echo(json.dumps(info.to_json(), indent=2))
        return
    for label, value in (
        ("articles", info.articles),
        ("passages", info.passages),
        ("model", f"{info.model} ({info.backend})"),
        ("data directory", info.home),
        ("chroma", info.chroma),
        ("last rebuild", info.rebuilt_at or "never"),
        ("last change", info.updated_at or "never"),
    ):
        click.echo(f"{label + ':':<16}{value}")


index.add_command(status, "status")


@main.command()
@click.option(
    "--port", default=3000, show_default=True, help="HTTP port (not used in Socket Mode)."
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
def serve(port: int, host: str) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on
    /slack/events behind gunicorn. Needs SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET over HTTP).

    \b
    Example:
      SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... citebot serve --port 3000
    """
    from bot.llm import LlmConfig
    from bot.slack import SlackConfig, create_app
    from bot.slack import serve as serve_slack

    settings = load_settings()
    config = SlackConfig.from_settings(settings)
    LlmConfig.from_settings(settings)  # a bad [llm] table stops the start, not the first answer

    def make_app() -> Any:
        # Runs in the server's worker process: Chroma must not be opened before the fork.
        from bot.answering import Answerer
        from bot.llm import answer_function
        from bot.sources_admin import slack_adder, start_refreshing
        from index.embedding import set_torch_threads
        from index.store import ArticleIndex

        set_torch_threads(config.torch_threads)
        store = ArticleIndex(settings)
        start_refreshing(store, settings.refresh_minutes)
        return create_app(
            config,
            ask=answer_function(Answerer(store, settings), settings),
            add_sources=slack_adder(store, settings),
            add_upload=store.add_bytes,
            state_dir=settings.home / "slack",
        )

    serve_slack(config, make_app, port=port, host=host)


def _store(settings: Settings) -> Any:
    from index.store import ArticleIndex

    return ArticleIndex(settings)


class _progress:
    """A tqdm bar on stderr, sized once the index knows how many articles to embed."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def __enter__(self) -> tuple[Callable[[int], None], Callable[[int], None]]:
        from tqdm import tqdm

        def on_total(total: int) -> None:
            self.bar = tqdm(
                total=total,
                desc=self.label,
                unit="article",
                file=sys.stderr,
                disable=None if total else True,
            )

        def progress(done: int) -> None:
            if self.bar is not None:
                self.bar.update(done)

        return progress, on_total

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _finish(report: IndexReport) -> None:
    for line in report.lines(names=True):
        click.echo(line)
    if not report.ok:
        sys.exit(1)


from bot.evaluation.command import eval_command  # noqa: E402

main.add_command(eval_command, "eval")
from bot.training.command import train_reader_command  # noqa: E402

main.add_command(train_reader_command, "train-reader")


@main.command()
@click.argument("items", nargs=-1, required=True, metavar="SOURCE_OR_ARTICLE...")
def remove(items: tuple[str, ...]) -> None:
    """Remove sources (with their articles) or single articles from the index.

    A source added with `citebot add` or from Slack leaves the library; an article of a
    folder or feed that still holds it is remembered as removed, so a rebuild or a
    refresh does not bring it back (`citebot add` it to let it in again).

    \b
    Examples:
      citebot remove https://example.com/story
      citebot remove ~/news/wrong-story.txt
    """
    _finish(_store(load_settings()).remove(list(items)))


@main.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def sources_command(as_json: bool) -> None:
    """List the source library: each source's kind, location, articles, who added it and
    when, its last read, last change and last error.

    \b
    Example:
      citebot sources --json
    """
    from bot.sources_admin import sources_lines

    listed = _store(load_settings()).sources()
    if as_json:
        click.echo(json.dumps([s.to_json() for s in listed], indent=2))
        return
    if not listed:
        click.echo("The library has no sources yet: run `citebot index rebuild` or `citebot add`.")
    for line in sources_lines(listed):
        click.echo(line)


@main.command()
def refresh() -> None:
    """Re-read every URL, feed and sitemap in the library, with conditional requests:
    unchanged pages are neither downloaded nor embedded again, changed ones replace their
    old version, new feed entries are added.

    \b
    Example:
      citebot add https://example.com/news/rss.xml && citebot refresh
    """
    store = _store(load_settings())
    with _progress("Refreshing") as (progress, on_total):
        report = store.refresh(progress=progress, on_total=on_total)
    _finish(report)
