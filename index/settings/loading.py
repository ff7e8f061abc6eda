"""Which settings file is read, and the settings from it and the environment: unknown
keys refused (naming the nearest valid one), each value checked, and where each came from
recorded (`citebot config` shows it)."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from index.errors import SettingsError
from index.settings.kinds import Setting, build
from index.settings.schema import SECTIONS, SETTINGS, Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The example settings file, with every setting and its comment. Run from a source checkout
# (pyproject.toml beside it), citebot also reads it as the settings file.
EXAMPLE_CONFIG = PROJECT_ROOT / "config" / "citebot.toml"


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
    settings = build(Settings, parsed)
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
