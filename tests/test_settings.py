"""Settings: defaults, environment overrides, and errors that name the setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from index.errors import SettingsError
from index.settings import (
    EXAMPLE_CONFIG,
    PROJECT_ROOT,
    SETTINGS,
    Settings,
    load_settings,
    settings_file,
    settings_from_dict,
    settings_markdown,
    user_config,
)


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
            "CITEBOT_DEVICE": "cpu",
        }
    )
    assert settings.model == "/models/other"
    assert settings.device == "cpu"
    assert settings.chroma_url == "http://127.0.0.1:8000"
    assert settings.min_confidence == 0.7


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"index": {"batch_size": 0}}, "index.batch_size must be a whole number >= 1"),
        ({"index": {"sources": "articles"}}, "index.sources must be a list of strings"),
        ({"answer": {"min_confidence": 2}}, "answer.min_confidence (CITEBOT_MIN_CONFIDENCE)"),
        ({"slack": {"torch_threads": 1.5}}, "slack.torch_threads (CITEBOT_TORCH_THREADS) must"),
        ({"llm": {"max_retries": 1.5}}, "llm.max_retries must be a whole number"),
        ({"sources": {"json": {"text_key": ""}}}, "sources.json.text_key must be a non-empty"),
        ({"index": "x"}, "[index] in the settings file must be a table"),
    ],
)
def test_invalid_settings_name_the_setting(raw: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        settings_from_dict(raw, base=tmp_path, environ={})
    assert message in str(error.value)


def test_missing_or_broken_settings_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"\(CITEBOT_CONFIG\) does not exist: create it"):
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


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[answer]\nmin_confidance = 0.5\n", "unknown setting answer.min_confidance"),
        ("[answer]\nmin_confidance = 0.5\n", "did you mean answer.min_confidence?"),
        ("[idnex]\nbatch_size = 8\n", "unknown section [idnex]"),
        ("[idnex]\nbatch_size = 8\n", "did you mean [index]?"),
        ("[sources.jsno]\ntext_key = 'body'\n", "did you mean [sources.json]?"),
        ("min_confidence = 0.5\n", "did you mean answer.min_confidence?"),
        ("[slack]\nadmns = ['U1']\n", "did you mean slack.admins?"),
        ("[llm]\nmax_retries = 1.5\n", "llm.max_retries must be a whole number >= 0, got 1.5"),
        ("[answer]\nreader_precision = 'fp16'\n", "(CITEBOT_READER_PRECISION) must be one of auto"),
        ("[index]\nbackend = 'cuda'\n", "index.backend (CITEBOT_BACKEND) must be one of torch"),
        ("[index]\nprecision = 'fp16'\n", "index.precision (CITEBOT_PRECISION) must be one of"),
        ("[index]\ndevice = 'gpu'\n", "index.device (CITEBOT_DEVICE) must be one of auto, cpu"),
    ],
)
def test_settings_file_mistakes_are_refused(toml: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError) as error:
        load_settings({"CITEBOT_CONFIG": str(config)})
    assert message in str(error.value)
    assert str(config) in str(error.value)


def test_every_section_is_read_the_same_way(tmp_path: Path) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text(
        "[answer]\nreader_precision = 'int8'\nreader_candidates = 4\n"
        "[slack]\ntorch_threads = 2\nadmins = ['U1']\n"
        "[llm]\nmax_retries = 3\ntimeout = 5\nprompt = 'my-prompt.txt'\n"
    )
    settings = load_settings({"CITEBOT_CONFIG": str(config), "CITEBOT_TORCH_THREADS": "0"})

    assert (settings.reader_precision, settings.reader_candidates) == ("int8", 4)
    assert (settings.slack.torch_threads, settings.slack.admins) == (0, ("U1",))
    assert (settings.llm.max_retries, settings.llm.timeout) == (3, 5.0)
    assert settings.llm.prompt == tmp_path / "my-prompt.txt"
    # The same kind of value is refused the same way, whichever section it is in.
    for env in ({"CITEBOT_TORCH_THREADS": "1.5"}, {"CITEBOT_TORCH_THREADS": "two"}):
        with pytest.raises(SettingsError, match="slack.torch_threads .* must be a whole number"):
            load_settings({"CITEBOT_CONFIG": str(config)} | env)


def test_environment_paths_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"CITEBOT_HOME": "./relhome"})
    assert settings.home == tmp_path / "relhome"
    assert settings.origins["index.home"] == "env CITEBOT_HOME"


def test_a_settings_file_needs_only_what_it_changes(tmp_path: Path) -> None:
    config = tmp_path / "citebot.toml"
    config.write_text("[answer]\nmax_citations = 5\n")
    settings = load_settings({"CITEBOT_CONFIG": str(config)})
    defaults = Settings()

    assert settings.max_citations == 5
    assert settings.origins["answer.max_citations"] == str(config)
    assert settings.sources == ()  # CITEBOT_CONFIG replaces config/citebot.toml ...
    assert (settings.batch_size, settings.llm, settings.slack) == (
        defaults.batch_size, defaults.llm, defaults.slack
    )  # fmt: skip  # ... and is layered over the defaults in code
    assert "answer.batch_size" not in settings.origins


def test_which_settings_file_is_read(tmp_path: Path) -> None:
    installed = tmp_path / "site-packages" / "citebot"  # no pyproject.toml: not a checkout
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert settings_file(env, project=PROJECT_ROOT) == EXAMPLE_CONFIG
    assert settings_file(env, project=installed) is None  # the defaults in code
    user_config(env).parent.mkdir(parents=True)
    user_config(env).write_text("[index]\nbatch_size = 7\n")
    assert settings_file(env, project=installed) == tmp_path / "config" / "citebot" / "citebot.toml"
    named = {"CITEBOT_CONFIG": "other.toml"} | env
    assert settings_file(named, project=PROJECT_ROOT) == Path.cwd() / "other.toml"


def test_the_example_file_documents_every_setting_with_its_default() -> None:
    """config/citebot.toml names every setting in its section; a commented-out value is
    the default in code (which is written only there)."""
    documented: dict[str, str] = {}
    section = ""
    for line in EXAMPLE_CONFIG.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif match := re.fullmatch(r"#?\s*(\w+) = (.+)", line):
            documented[f"{section}.{match.group(1)}"] = match.group(2)
    assert set(documented) == set(SETTINGS)
    for name, value, _ in Settings().effective():
        if value not in (None, (), "") and name != "index.sources":
            assert tomllib.loads(f"v = {documented[name]}")["v"] == value, name


def test_the_settings_reference_is_generated_from_the_declarations() -> None:
    reference = (PROJECT_ROOT / "docs" / "SETTINGS.md").read_text(encoding="utf-8")
    assert reference == settings_markdown(), (
        "docs/SETTINGS.md is stale: run citebot config --markdown > docs/SETTINGS.md"
    )
    for declared in SETTINGS.values():
        assert f"`{declared.name}`" in reference
        if declared.env:
            assert f"`{declared.env}`" in reference
    for name in ("CITEBOT_PORT", "CITEBOT_CONFIG", "CITEBOT_READER_PRECISION"):
        assert f"`{name}`" in reference


def test_the_readme_reads_in_five_minutes() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.split()) < 1300, "README.md is over 1,300 words: move detail to docs/"
    for command in ("./run demo", "./run test", "citebot chat", "citebot add"):
        assert command in readme
    for doc in ("READER", "SOURCES", "SETTINGS", "SLACK", "DEPLOYMENT", "EVALUATION"):
        assert f"docs/{doc}.md" in readme and (PROJECT_ROOT / "docs" / f"{doc}.md").exists()
