"""Memory of `citebot serve` holding the benchmark index, while it answers in Slack.

Runs the real `citebot serve` (HTTP, behind gunicorn) on 127.0.0.1 in its own process
group, on a copy of the benchmark index (serving writes its Slack state into the data
directory), with the Slack Web API played by the loopback fake of tests/slack_fake.py.
Sends signed `app_mention` events with SQuAD dev questions one at a time, each after the
previous answer was posted, and samples the resident memory of every process of the
server (gunicorn's master and its workers) every 0.2 s. Nothing leaves 127.0.0.1.

    python -m benchmarks.serve_memory --questions 50 [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.common import CITEBOT, DEFAULT_HOME, bench_settings, free_port, machine
from benchmarks.latency import percentile, questions

# The tests' loopback fake of Slack, reused as is (tests/ is not a package).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from slack_fake import BOT_TOKEN, SIGNING_SECRET, FakeSlack, mention  # noqa: E402

SAMPLE_SECONDS = 0.2
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ProcessMemory:
    """One process's figures from /proc/PID/status, in MB (VmHWM: its peak RSS so far)."""

    rss: float
    hwm: float
    threads: int


def process_memory(pid: int) -> ProcessMemory | None:
    """None when the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return ProcessMemory(_mb(fields["VmRSS"]), _mb(fields["VmHWM"]), int(fields["Threads"]))


def _mb(kilobytes: str) -> float:
    return int(kilobytes.split()[0]) / 1024


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from the parent pid of every process in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The name, in parentheses, may hold spaces: the parent pid is after its last ")".
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return sorted(tree)


def snapshot(root: int) -> dict[str, Any]:
    """The server's RSS now: summed over its processes, and each process's."""
    processes = {pid: process_memory(pid) for pid in process_tree(root)}
    processes = {pid: m for pid, m in processes.items() if m is not None}
    return {
        "rss_sum_mb": round(sum(m.rss for m in processes.values())),
        "processes": [
            {"role": role(pid, root), "rss_mb": round(m.rss)} for pid, m in processes.items()
        ],
    }


def role(pid: int, root: int) -> str:
    return "master" if pid == root else f"worker {pid}"


@dataclass
class TreeSampler:
    """Samples the RSS of `root`'s process tree every SAMPLE_SECONDS in a thread."""

    root: int
    samples: int = 0
    peak_sum_mb: float = 0.0
    peak: dict[int, ProcessMemory] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        now = {pid: process_memory(pid) for pid in process_tree(self.root)}
        now = {pid: m for pid, m in now.items() if m is not None}
        self.samples += 1
        self.peak_sum_mb = max(self.peak_sum_mb, sum(m.rss for m in now.values()))
        for pid, m in now.items():
            old = self.peak.get(pid, m)
            self.peak[pid] = ProcessMemory(
                max(old.rss, m.rss), max(old.hwm, m.hwm), max(old.threads, m.threads)
            )

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    @contextmanager
    def running(self) -> Iterator[TreeSampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        self.sample()
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def to_json(self) -> dict[str, Any]:
        return {
            "rss_sum_mb": round(self.peak_sum_mb),
            "vmhwm_sum_mb": round(sum(m.hwm for m in self.peak.values())),
            "processes": [
                {
                    "role": role(pid, self.root),
                    "rss_mb": round(m.rss),
                    "vmhwm_mb": round(m.hwm),
                    "threads": m.threads,
                }
                for pid, m in sorted(self.peak.items())
            ],
        }


@dataclass
class Server:
    """`citebot serve` on 127.0.0.1 in a process group of its own; its log in a file."""

    process: subprocess.Popen
    url: str
    log: IO[str]

    def read_log(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait_until_ready(self, timeout: float) -> None:
        """Until gunicorn's worker answers an HTTP request (it builds the app before that)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=5).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "citebot serve did not start:\n" + self.read_log()[-3000:]
                    ) from None
                time.sleep(0.1)


@contextmanager
def serving(home: Path, api_url: str) -> Iterator[Server]:
    """Runs `citebot serve`; kills its whole process group on the way out, also on error."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("SLACK_APP_TOKEN", None)  # its presence would select Socket Mode
    env |= {
        "CITEBOT_HOME": str(home),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CITEBOT_SLACK_API_URL": api_url,
        "NO_PROXY": LOOPBACK,
    }
    command = [str(CITEBOT), "serve", "--host", LOOPBACK, "--port", str(port)]
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield Server(process, f"http://{LOOPBACK}:{port}/slack/events", log)
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (gunicorn stops its workers), then SIGKILL to
    whatever is left in it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    process.wait()


def server_configuration(log: str, peak: TreeSampler) -> dict[str, Any]:
    """What served: processes seen, threads per process, and the settings `serve` used."""
    from bot.slack import SlackConfig
    from bot.slack.server import HTTP_THREADS

    torch_threads = re.search(r"PyTorch uses (\d+) thread", log)
    worker_class = re.search(r"Using worker: (\w+)", log)
    return {
        "command": "citebot serve --host 127.0.0.1 --port PORT",
        "gunicorn_workers": log.count("Booting worker"),
        "gunicorn_worker_class": worker_class.group(1) if worker_class else None,
        "gunicorn_threads": HTTP_THREADS,
        "answer_threads": SlackConfig.workers,
        "torch_threads": int(torch_threads.group(1)) if torch_threads else None,
        "processes": len(peak.peak),
    }


def kind_of_post(text: str) -> str:
    """Whether a posted message quotes sentences, says the articles don't answer, or apologizes."""
    from bot.slack import messages

    if text.startswith(messages.APOLOGY):
        return "apologies"
    if text.startswith((messages.NO_ANSWER, messages.NOTHING_FOUND)):
        return "not_answered"
    return "answered"


def ask_in_order(
    fake: FakeSlack, server: Server, asked: list[str], timeout: float, first: int = 1
) -> list[float]:
    """Mentions the bot with each question once the previous answer is posted (`first`: the
    number of the first question, counting all asked so far); the seconds from each request
    to its answer's chat.postMessage."""
    seconds = []
    for number, question in enumerate(asked, first):
        sent = time.monotonic()
        status = fake.send_event(server.url, mention(question), f"Ev{number}")
        if status != (200, ""):
            raise SystemExit(f"question {number} was refused: {status}")
        posted = fake.wait_for("chat.postMessage", count=number, timeout=timeout)
        # The 👀 comes off after the answer is posted: then its work is done.
        fake.wait_for("reactions.remove", count=number, timeout=timeout)
        seconds.append(posted[number - 1].time - sent)
    return seconds


def measure(home: Path, asked: list[str], timeout: float) -> dict[str, Any]:
    fake = FakeSlack().start()
    try:
        with serving(home, fake.api_url) as server:
            started = time.monotonic()
            server.wait_until_ready(timeout)
            start_s = time.monotonic() - started
            root = server.process.pid
            time.sleep(1)  # the worker has just booted
            after_start = snapshot(root)
            with TreeSampler(root).running() as sampler:
                seconds = ask_in_order(fake, server, asked[:1], timeout)
                after_first = snapshot(root)
                seconds += ask_in_order(fake, server, asked[1:], timeout, first=2)
            end = snapshot(root)
            log = server.read_log()
    finally:
        fake.stop()
    answers = [str(call.body.get("text", "")) for call in fake.calls_to("chat.postMessage")]
    return {
        "server": server_configuration(log, sampler),
        "questions": len(asked),
        "answers_posted": len(answers),
        "posts": dict(Counter(map(kind_of_post, answers))),
        "start_s": round(start_s, 1),
        "memory_mb": {
            "after_start": after_start,
            "after_first_answer": after_first,
            "end": end,
            "peak": sampler.to_json(),
        },
        "answer_ms": {
            "first": round(seconds[0] * 1000),
            "p50": percentile(seconds, 50),
            "p95": percentile(seconds, 95),
        },
    }


def main() -> None:
    from index.store.article_index import ArticleIndex

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for one answer")
    args = parser.parse_args()
    asked = [question for question, _ in questions(args.questions, None)]
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="citebot-serve-memory-") as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(args.home, home)
        measured = measure(home, asked, args.timeout)
        index_status = ArticleIndex(bench_settings(home)).status()
    results |= {"articles": index_status.articles, "passages": index_status.passages}
    results |= measured
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
