"""Settings: defaults in code, one TOML settings file over them, environment variables over both.

Every setting is one field of `Settings` (schema.py), declared with `setting(default,
"section.key", kind, env)` (kinds.py): its default is written there and nowhere else.
`load_settings` (loading.py) reads every section the same way, refuses keys it does not
know (naming the nearest valid one), and records where each value came from (`citebot
config` shows it). Errors name the setting and what a valid value looks like.
markdown.py writes docs/SETTINGS.md from the declarations.
"""

from index.settings.loading import (
    EXAMPLE_CONFIG,
    PROJECT_ROOT,
    load_settings,
    settings_file,
    settings_from_dict,
    user_config,
)
from index.settings.markdown import settings_markdown
from index.settings.schema import (
    READER_PRECISIONS,
    SETTINGS,
    JsonKeys,
    LlmSettings,
    LogSettings,
    Settings,
    SlackSettings,
)

__all__ = [
    "EXAMPLE_CONFIG",
    "PROJECT_ROOT",
    "READER_PRECISIONS",
    "SETTINGS",
    "JsonKeys",
    "LlmSettings",
    "LogSettings",
    "Settings",
    "SlackSettings",
    "load_settings",
    "settings_file",
    "settings_from_dict",
    "settings_markdown",
    "user_config",
]
