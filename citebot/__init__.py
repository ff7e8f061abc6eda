"""The installed `citebot` command's entry point.

An installed citebot is one top-level package, `citebot`, holding the project's own
folders `bot/` and `index/` (and its prompts and example settings) exactly as they lie in
the repository. The command puts that folder first on `sys.path`, so its `bot` and
`index` are the ones imported, and nothing named `bot` or `index` is installed into
site-packages, where it could overwrite, or be overwritten by, another distribution's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def code_root() -> Path:
    """The folder holding `bot/` and `index/`: this package in a wheel, the checkout in
    an editable install."""
    spec = importlib.util.find_spec("citebot.index")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("citebot is installed without its index package: reinstall it")
    return Path(next(iter(spec.submodule_search_locations))).parent


def main() -> None:
    root = str(code_root())
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    from bot.cli import main as cli

    cli()
