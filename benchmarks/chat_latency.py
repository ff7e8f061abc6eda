"""Latency of each question in one `citebot chat --json` process: the wall and CPU
seconds from writing a question to reading its answer, on the demo index, so that the
first question (which loads the models) and the next ones (which should load nothing)
are told apart.

    python -m benchmarks.chat_latency --repeat 3
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

PROJECT = Path(__file__).resolve().parent.parent
# The first question loads the models; the second is a follow-up of it (read with the
# thread's context, as in Slack); the third is about another article.
QUESTIONS = (
    "who denied the crematorium claim",
    "what did the UN spokesman say about it",
    "When did the 1973 oil crisis begin?",
)
CITEBOT = [sys.executable, "-c", "from bot.cli import main; main(prog_name='citebot')"]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def one_chat(env: dict[str, str]) -> list[dict[str, float]]:
    """The questions asked one at a time in one chat process, each timed on its own."""
    chat = subprocess.Popen(
        [*CITEBOT, "chat", "--json"],
        cwd=PROJECT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert chat.stdin is not None and chat.stdout is not None
    timings = []
    try:
        for question in QUESTIONS:
            cpu, start = cpu_seconds(chat.pid), time.perf_counter()
            chat.stdin.write(question + "\n")
            chat.stdin.flush()
            line = chat.stdout.readline()
            wall = time.perf_counter() - start
            if not line:
                raise SystemExit(f"citebot chat ended before answering {question!r}")
            answered = json.loads(line)["answered"]
            used = cpu_seconds(chat.pid) - cpu
            timings.append({"wall_s": wall, "cpu_s": used, "answered": answered})
    finally:
        chat.stdin.close()
        chat.wait(timeout=60)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="chat processes (median)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="citebot-chat-latency-"))
    env = offline_env(home)
    articles = str(PROJECT / "examples" / "articles")
    rebuild = [*CITEBOT, "index", "rebuild", "--sources", articles]
    subprocess.run(rebuild, cwd=PROJECT, env=env, check=True, stdout=subprocess.DEVNULL)
    runs = [one_chat(env) for _ in range(args.repeat)]
    results = []
    for number, question in enumerate(QUESTIONS):
        each = [run[number] for run in runs]
        results.append(
            {
                "question": question,
                "answered": each[0]["answered"],
                "wall_s": round(statistics.median(t["wall_s"] for t in each), 3),
                "cpu_s": round(statistics.median(t["cpu_s"] for t in each), 3),
                "wall_s_runs": [round(t["wall_s"], 3) for t in each],
            }
        )
        print(question, results[-1]["wall_s"], "s", file=sys.stderr)
    print(json.dumps({"machine": machine(), "questions": results}, indent=2))


if __name__ == "__main__":
    main()
