"""How a setting is declared, and how its value is read and checked.

A setting is a dataclass field made by `setting(default, "section.key", kind, env)`; a
`section` field holds a table of its own. Each `Kind` parses a TOML value or an environment
variable's text, raising ValueError, and says what a valid value looks like.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.sources.fetch import is_url


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
            items = [v if is_url(v) else str(resolve_path(base, v)) for v in items]
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
        return resolve_path(base, value.strip()) if value.strip() else None


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


def declared_fields(cls: type) -> Iterator[tuple[str, Setting | type]]:
    """(attribute, its Setting or its section's class) of each declared field of `cls`."""
    for f in dataclasses.fields(cls):
        if "setting" in f.metadata:
            yield f.name, f.metadata["setting"]
        elif "section" in f.metadata:
            yield f.name, f.metadata["section"]


def declared_settings(cls: type) -> Iterator[Setting]:
    """Every Setting of `cls` and of its sections, in declaration order."""
    for _, spec in declared_fields(cls):
        if isinstance(spec, Setting):
            yield spec
        else:
            yield from declared_settings(spec)


def build(cls: type, parsed: Mapping[str, Any]) -> Any:
    """A `cls` (and its sections) with the values of `parsed` (setting name -> value)."""
    kwargs = {}
    for attribute, spec in declared_fields(cls):
        if isinstance(spec, Setting):
            if spec.name in parsed:
                kwargs[attribute] = parsed[spec.name]
        else:
            kwargs[attribute] = build(spec, parsed)
    return cls(**kwargs)


def locations(obj: Any) -> dict[str, tuple[Any, str]]:
    """Setting name -> (the object holding it, its attribute), in declaration order."""
    found: dict[str, tuple[Any, str]] = {}
    for attribute, spec in declared_fields(type(obj)):
        if isinstance(spec, Setting):
            found[spec.name] = (obj, attribute)
        else:
            found |= locations(getattr(obj, attribute))
    return found


def resolve_path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
