"""The source library's settings: `sources.refresh_minutes` and `sources.allowed_hosts`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sources_admin import slack_policy
from index.errors import SettingsError
from index.settings import load_settings, settings_from_dict


def test_defaults_refresh_every_30_minutes_and_allow_no_private_host(tmp_path: Path) -> None:
    settings = load_settings({"CITEBOT_HOME": str(tmp_path)})

    assert settings.refresh_minutes == 30
    assert settings.allowed_hosts == ()
    assert slack_policy(settings).public_only


def test_allowed_hosts_reach_the_slack_policy(tmp_path: Path) -> None:
    raw = {"sources": {"refresh_minutes": 0, "allowed_hosts": ["News.Intranet.example"]}}
    settings = settings_from_dict(raw, base=tmp_path, environ={})

    assert settings.refresh_minutes == 0
    assert slack_policy(settings).allowed_hosts == frozenset({"news.intranet.example"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"refresh_minutes": -5}, "sources.refresh_minutes must be a whole number >= 0"),
        ({"refresh_minutes": "30"}, "sources.refresh_minutes must be a whole number >= 0"),
        ({"allowed_hosts": "intranet"}, "sources.allowed_hosts must be a list of host names"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, raw: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_dict({"sources": raw}, base=tmp_path, environ={})
