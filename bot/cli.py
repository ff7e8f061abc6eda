"""The `citebot` command: build the index, add sources, ask, serve the Slack bot."""

from __future__ import annotations

import errno
import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from bot.render import render_answer
from bot.terminal import Progress, echo, finish, note, open_store
from index.errors import CitebotError
from index.settings import (
    EXAMPLE_CONFIG,
    SETTINGS,
    load_settings,
    settings_file,
    settings_markdown,
)

CONTEXT = {"help_option_names": ["-h", "--help"]}
VERBOSE_HELP = "Say how each source was read, and list every article and what happened to it."


def _environment_help() -> str:
    """The epilog of `citebot --help`: every environment variable, from the settings."""
    rows = [("CITEBOT_CONFIG", "the settings file (see `citebot config`)")]
    rows += [(s.env, s.name) for s in SETTINGS.values() if s.env]
    rows += [
        ("CITEBOT_PORT", "citebot serve --port"),
        ("CITEBOT_BIND_HOST", "citebot serve --host"),
    ]
    width = max(len(name) for name, _ in rows) + 2  # the longest name still gets a gap
    names = [f"{name:<{width}}{what}" for name, what in rows]
    names += [
        "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, SLACK_CLIENT_SECRET: for "
        "citebot serve"
    ]
    return "\b\nEnvironment (each overrides the setting named beside it):\n  " + "\n  ".join(names)


class CitebotGroup(click.Group):
    """Turns citebot's own errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CitebotError as exc:
            echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except _connection_errors() as exc:  # the Chroma server went away mid-command
            from index.store.chroma import unreachable

            url = load_settings().chroma_url or "chroma.url"
            echo(f"Error: {unreachable(url)} ({type(exc).__name__})", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException):
            raise  # a nested group's own exit, its error already shown
        except Exception as exc:
            from index.store.chroma import disk_full

            full = disk_full(exc, load_settings().home)
            if full is None:
                raise
            echo(f"Error: {full}", err=True)
            ctx.exit(1)


def _connection_errors() -> tuple[type[Exception], ...]:
    """What Chroma's HTTP client raises when its server stops answering."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - chromadb depends on it
        return ()
    return (httpx.TransportError,)


@click.group(cls=CitebotGroup, context_settings=CONTEXT, epilog=_environment_help())
@click.version_option(package_name="citebot")
def main() -> None:
    """citebot answers questions about news articles with quoted, cited sentences.

    \b
    Quick start:
      citebot index rebuild
      citebot ask "who denied the crematorium claim"

    \b
    Shell completion (bash; for zsh or fish, zsh_source or fish_source):
      eval "$(_CITEBOT_COMPLETE=bash_source citebot)"
    """


@main.group(cls=CitebotGroup, context_settings=CONTEXT)
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
@click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
def index_rebuild(sources: tuple[str, ...], prune: bool, verbose: bool) -> None:
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
    store = open_store(load_settings())
    with Progress("Indexing") as (progress, on_total):
        report = store.rebuild(
            list(sources) or None, progress=progress, on_total=on_total, prune=prune
        )
    finish(report, verbose)


@main.command()
@click.argument("sources", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
def add(sources: tuple[str, ...], verbose: bool) -> None:
    """Add or update articles (files, folders, http(s) URLs) in the index.

    \b
    Example:
      citebot add story.html exports/articles.jsonl https://example.com/story
    """
    store = open_store(load_settings())
    with Progress("Adding") as (progress, on_total):
        report = store.add(list(sources), progress=progress, on_total=on_total)
    finish(report, verbose)


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
    from bot.answering.answerer import Answerer
    from bot.answering.checked_llm import question_answerer

    settings = load_settings()
    asked_on = as_of.date() if as_of else None
    answerer = Answerer(open_store(settings), settings)
    answering = question_answerer(answerer, settings, use_llm=not no_llm)
    with note("Loading the models and answering…"):
        answer = answering.answer(" ".join(question), asked_on)
    if as_json:
        echo(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
    else:
        echo(render_answer(answer), nl=False)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """Show what is indexed: articles, passages, model, data directory, last rebuild."""
    info = open_store(load_settings()).status()
    if as_json:
        echo(json.dumps(info.to_json(), indent=2))
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
        echo(f"{label + ':':<16}{value}")


index.add_command(status, "status")


@main.command()
@click.option(
    "--port",
    default=3000,
    show_default=True,
    envvar="CITEBOT_PORT",
    show_envvar=True,
    help="HTTP port (not used in Socket Mode).",
)
@click.option(
    "--host",
    default="0.0.0.0",
    show_default=True,
    envvar="CITEBOT_BIND_HOST",
    show_envvar=True,
    help="Address to listen on.",
)
def serve(port: int, host: str) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on
    /slack/events behind gunicorn. Needs SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET over HTTP).

    \b
    Example:
      SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... citebot serve --port 3000
    """
    from bot.answering.checked_llm import LlmConfig
    from bot.slack import SlackConfig, create_app, load_index_backend
    from bot.slack import serve as serve_slack

    settings = load_settings()
    config = SlackConfig.from_settings(settings)
    LlmConfig.from_settings(settings)  # a bad [llm] table stops the start, not the first answer
    if not config.app_token:
        check_port_free(host, port)

    def load_backend() -> Any:
        # Runs in the server's worker process: Chroma must not be opened before the fork.
        from bot.slack.metrics import count_refresh
        from bot.sources_admin import start_refreshing
        from index.embedding.encoder import set_torch_threads

        set_torch_threads(config.torch_threads)
        backend = load_index_backend(settings)
        start_refreshing(backend.index, settings.refresh_minutes, count_refresh)
        return backend

    def make_app(backend: Any) -> Any:
        from bot.slack.middleware import answer_unfinished, keep_answering_unfinished
        from bot.slack.state import SlackState

        state = SlackState(settings.home / "slack", config.answers_kept, config.state_store)
        app = create_app(config, backend, settings.home / "slack", state=state)
        # Questions acknowledged by a process that crashed (this one before a restart, or
        # another sharing slack.state_store): Slack will not deliver them again.
        answer_unfinished(app, state)
        keep_answering_unfinished(app, state)
        return app

    serve_slack(config, make_app, load_backend, port=port, host=host)


@main.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--example", is_flag=True, help="Print the example settings file, every setting.")
@click.option("--markdown", is_flag=True, help="Print the settings reference, docs/SETTINGS.md.")
def config_command(as_json: bool, example: bool, markdown: bool) -> None:
    """Show every setting's effective value and where it came from: the default in code,
    the settings file, or an environment variable.

    \b
    Examples:
      citebot config
      citebot config --example > ~/.config/citebot/citebot.toml
      citebot config --markdown > docs/SETTINGS.md
    """
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    if example:
        echo(EXAMPLE_CONFIG.read_text(encoding="utf-8"), nl=False)
        return
    import os

    path = settings_file(os.environ)
    settings = load_settings()
    rows = list(settings.effective())
    if as_json:
        values = {name: {"value": _plain(v), "origin": o} for name, v, o in rows}
        echo(json.dumps({"settings_file": path and str(path), "settings": values}, indent=2))
        return
    echo(f"# settings file: {path or 'none (the defaults in code)'}")
    shown = [(f"{name} = {_toml(value)}", origin) for name, value, origin in rows]
    width = max(len(line) for line, _ in shown)
    for line, origin in shown:
        echo(f"{line:<{width}}  # {origin}")


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _toml(value: Any) -> str:
    if value is None:
        return "(unset)"
    return json.dumps(_plain(value), ensure_ascii=False)


def check_port_free(host: str, port: int) -> None:
    """Raises CitebotError naming the port when `serve` could not listen on it (gunicorn
    would retry for seconds, then exit with a traceback)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                reason = "is already in use"
            elif exc.errno == errno.EACCES:
                reason = "needs privileges to listen on"
            else:
                reason = f"cannot be listened on ({exc.strerror})"
            raise CitebotError(
                f"port {port} on {host} {reason}: stop what is listening there, or pick "
                "another with --port (CITEBOT_PORT)"
            ) from None


from bot.chat import chat_command  # noqa: E402
from bot.evaluation.command import eval_command  # noqa: E402

main.add_command(chat_command, "chat")

main.add_command(eval_command, "eval")
from bot.training.command import average_readers_command, train_reader_command  # noqa: E402

main.add_command(train_reader_command, "train-reader")
main.add_command(average_readers_command, "average-readers")
from bot.training.calibrate import calibrate_command  # noqa: E402

main.add_command(calibrate_command, "calibrate")


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
    finish(open_store(load_settings()).remove(list(items)))


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

    listed = open_store(load_settings()).sources()
    if as_json:
        echo(json.dumps([s.to_json() for s in listed], indent=2))
        return
    if not listed:
        echo("The library has no sources yet: run `citebot index rebuild` or `citebot add`.")
    for line in sources_lines(listed):
        echo(line)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Only the latest this many changes (0: all).",
)
def audit(as_json: bool, limit: int) -> None:
    """List who changed the source library, when, what, and how it went: every add,
    upload, removal, share and rebuild, from the terminal or from Slack, oldest first.

    \b
    Example:
      citebot audit --limit 10
    """
    entries = open_store(load_settings()).audit.entries(limit)
    if as_json:
        echo(json.dumps([e.to_json() for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        echo("No changes recorded yet: `citebot add`, `remove` and `index rebuild` are.")
    for entry in entries:
        echo(f"{entry.at}  {entry.who}  {entry.action} {' '.join(entry.what)}")
        echo(f"        {entry.outcome}")


@main.command()
@click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)
def refresh(verbose: bool) -> None:
    """Re-read every URL, feed and sitemap in the library, with conditional requests:
    unchanged pages are neither downloaded nor embedded again, changed ones replace their
    old version, new feed entries are added.

    \b
    Example:
      citebot add https://example.com/news/rss.xml && citebot refresh --verbose
    """
    store = open_store(load_settings())
    with Progress("Refreshing") as (progress, on_total):
        report = store.refresh(progress=progress, on_total=on_total)
    finish(report, verbose)
