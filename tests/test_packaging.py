"""The wheel: what it holds, and that it installs with Python 3.11's stock pip and works.

`test_the_wheel_installs_with_the_stock_pip_and_answers` builds the wheel, installs it into
a fresh virtual environment (`python3 -m venv`, its pip not upgraded) and runs `citebot
index rebuild` and `citebot ask` outside the checkout. To stay quick it does not download
the dependencies again: the new environment sees this one's packages (all but citebot)
through a .pth file, much as `--system-site-packages` would, so pip installs citebot alone.
"""

from __future__ import annotations

import email.parser
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import REFERENCE_QUOTE

from index.settings import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
STOCK_PIP = "23.2.1"  # what `python3 -m venv` gives Python 3.11


def test_every_code_folder_is_a_listed_package() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    for top in ("bot", "index"):
        for folder in [PROJECT_ROOT / top, *(PROJECT_ROOT / top).rglob("*")]:
            if folder.is_dir() and any(folder.glob("*.py")):
                name = "citebot." + ".".join(folder.relative_to(PROJECT_ROOT).parts)
                assert name in listed, f"add {name} to [tool.setuptools] packages"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(PROJECT_ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    [built] = out.glob("citebot-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"citebot", f"citebot-{version()}.dist-info"}
    for needed in ("citebot/prompts/answer.txt", "citebot/config/citebot.toml",
                   "citebot/bot/cli.py", "citebot/index/settings/__init__.py"):  # fmt: skip
        assert needed in names
    if (PROJECT_ROOT / "bot" / "models" / "reader" / "config.json").exists():
        assert "citebot/bot/models/reader/config.json" in names
    metadata = zipfile.ZipFile(wheel).read(f"citebot-{version()}.dist-info/METADATA").decode()
    requires = email.parser.Parser().parsestr(metadata).get_all("Requires-Dist")
    assert any(re.match(r"lxml[_-]html[_-]clean\b", r) for r in requires)


@pytest.mark.slow
def test_the_wheel_installs_with_the_stock_pip_and_answers(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip_version = subprocess.run(
        [python, "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    if sys.version_info[:2] == (3, 11):
        assert pip_version == STOCK_PIP
    _see_these_packages(venv, tmp_path / "shared")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr

    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "syria.txt").write_text(
        "Syria denies burning prisoners' bodies claim\n\n" + REFERENCE_QUOTE
        + " The United States said the crematorium was used to hide the killings.\n"
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITEBOT_", "PYTHON"))}
    env |= {"CITEBOT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
            "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip

    def citebot(*args: str) -> str:
        done = subprocess.run(
            [venv / "bin" / "citebot", *args],
            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert citebot("config").startswith("# settings file: none (the defaults in code)")
    assert citebot("index", "rebuild", "--sources", str(articles)).startswith("1 added")
    assert REFERENCE_QUOTE in " ".join(citebot("ask", "who denied the claim?").split())
    site = _purelib(venv)
    assert not (site / "bot").exists() and not (site / "index").exists()


def _see_these_packages(venv: Path, shared: Path) -> None:
    """Lets `venv` import this environment's packages, all but citebot itself: a folder of
    links to them, named in a .pth file."""
    ours = Path(sysconfig.get_paths()["purelib"])
    shared.mkdir()
    for entry in ours.iterdir():
        if not re.match(r"(citebot|__editable__)", entry.name, re.I):
            (shared / entry.name).symlink_to(entry)
    python = venv / "bin" / "python"
    # The venv's own setuptools (older than a dependency asks for) would hide the shared one.
    subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "setuptools"], check=True)
    (_purelib(venv) / "citebot-test-shared.pth").write_text(f"{shared}\n")


def _purelib(venv: Path) -> Path:
    script = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    done = subprocess.run(
        [venv / "bin" / "python", "-c", script], capture_output=True, text=True, check=True
    )
    return Path(done.stdout.strip())


def version() -> str:
    return PYPROJECT["project"]["version"]
