"""Cold start of the `citebot` command: wall time, CPU time and peak memory of
`citebot --help`, `citebot status`, one `citebot ask`, and a `citebot chat` of three
questions, each a fresh process, for one or more checkouts on one demo index (so a
change is measured against the code before it in the same run).

    git worktree add /tmp/before main
    python -m benchmarks.cold_start /tmp/before . --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, offline_env

QUESTIONS = (
    "who denied the crematorium claim",
    "what did the UN spokesman say about it",
    "When did the 1973 oil crisis begin?",
)
COMMANDS = {
    "--help": (["--help"], None),
    "status": (["status"], None),
    "ask": (["ask", QUESTIONS[0]], None),
    "chat (3 questions)": (["chat", "--json"], "\n".join(QUESTIONS) + "\n"),
}


def run_citebot(checkout: Path, args: list[str], stdin: str | None, env: dict) -> dict:
    """One `citebot ARGS` process from `checkout`: wall and CPU seconds, peak RSS in MB."""
    with tempfile.TemporaryFile("w+") as given, tempfile.TemporaryFile("w+") as err:
        given.write(stdin or "")
        given.seek(0)
        start = time.perf_counter()
        # A fresh interpreter per run; with `-c` the checkout (cwd) comes first on sys.path.
        child = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main(prog_name='citebot')", *args],
            cwd=checkout, stdin=given, stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"citebot {' '.join(args)} failed in {checkout}: {err.read()}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "max_rss_mb": usage.ru_maxrss / 1024}


def _has_chat(checkout: Path) -> bool:
    """Whether `checkout` has `citebot chat` (in bot/chat.py, or in bot/cli.py where it began)."""
    return (checkout / "bot" / "chat.py").exists() or "def chat(" in (
        checkout / "bot" / "cli.py"
    ).read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path, help="citebot checkouts to compare")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command (median)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="citebot-cold-start-"))
    env = offline_env(home)
    first = args.checkouts[0].resolve()
    articles = str(first / "examples" / "articles")
    run_citebot(first, ["index", "rebuild", "--sources", articles], None, env)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for checkout in args.checkouts:
        checkout = checkout.resolve()
        if not (checkout / "bot" / "cli.py").exists():
            raise SystemExit(f"{checkout} is not a citebot checkout")
        rows = results.setdefault(str(checkout), {})
        for name, (command, stdin) in COMMANDS.items():
            if name.startswith("chat") and not _has_chat(checkout):
                continue
            runs = [run_citebot(checkout, command, stdin, env) for _ in range(args.repeat)]
            rows[name] = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
            print(checkout.name, name, rows[name], file=sys.stderr)
    print(json.dumps({"machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
