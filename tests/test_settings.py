"""Settings: defaults, environment overrides, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import SettingsError
from index.settings import PROJECT_ROOT, load_settings, settings_from_dict


def test_defaults_index_the_demo_articles(tmp_path: Path) -> None:
    settings = load_settings({"CITEBOT_HOME": str(tmp_path)})

    assert settings.home == tmp_path
    assert settings.sources == (str(PROJECT_ROOT / "examples" / "articles"),)
    assert settings.model == "bundled" and Path(settings.model_path).is_dir()
    assert settings.chroma_url is None


def test_home_defaults_to_xdg_data_home(tmp_path: Path) -> None:
    settings = load_settings({"XDG_DATA_HOME": str(tmp_path)})
    assert settings.home == tmp_path / "citebot"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CITEBOT_HOME": str(tmp_path),
            "CITEBOT_MODEL": "/models/other",
            "CITEBOT_CHROMA_URL": "http://127.0.0.1:8000",
            "CITEBOT_MIN_CONFIDENCE": "0.7",
        }
    )
    assert settings.model == "/models/other"
    assert settings.chroma_url == "http://127.0.0.1:8000"
    assert settings.min_confidence == 0.7


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"index": {"batch_size": 0}}, "index.batch_size must be a whole number >= 1"),
        ({"index": {"sources": "articles"}}, "index.sources must be a list of strings"),
        ({"answer": {"min_confidence": 2}}, "answer.min_confidence (CITEBOT_MIN_CONFIDENCE)"),
        ({"sources": {"json": {"text_key": ""}}}, "sources.json.text_key must be a non-empty"),
        ({"index": "x"}, "[index] in the settings file must be a table"),
    ],
)
def test_invalid_settings_name_the_setting(raw: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        settings_from_dict(raw, base=tmp_path, environ={})
    assert message in str(error.value)


def test_missing_or_broken_settings_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist: create it or set CITEBOT_CONFIG"):
        load_settings({"CITEBOT_CONFIG": str(tmp_path / "none.toml")})
    broken = tmp_path / "broken.toml"
    broken.write_text("[index\n")
    with pytest.raises(SettingsError, match="is not valid TOML"):
        load_settings({"CITEBOT_CONFIG": str(broken)})


def test_relative_paths_are_relative_to_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "citebot.toml"
    config.parent.mkdir()
    config.write_text('[index]\nsources = ["../news", "https://example.com/a"]\nhome = "data"\n')

    settings = load_settings({"CITEBOT_CONFIG": str(config)})

    assert settings.sources == (str(tmp_path / "news"), "https://example.com/a")
    assert settings.home == tmp_path / "conf" / "data"
