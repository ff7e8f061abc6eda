"""Helpers shared by the benchmark scripts: the reusable data directory, settings, timing."""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Offline and without telemetry, like the tests; set before citebot imports anything.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
for _name, _value in OFFLINE.items():
    os.environ.setdefault(_name, _value)

from index.settings import Settings, load_settings  # noqa: E402


def offline_env(home: Path) -> dict[str, str]:
    """The environment for a citebot process a benchmark starts: offline, without
    telemetry, its data directory `home`."""
    return os.environ | {"CITEBOT_HOME": str(home)} | OFFLINE


# Building the 21,000-passage index takes about half an hour, so the scripts share one.
DEFAULT_HOME = Path("/tmp/citebot-bench-home")
DEFAULT_CORPUS = Path("/tmp/citebot-bench-corpus")
CITEBOT = Path(sys.executable).with_name("citebot")
# The evaluation data (docs/EVALUATION.md, "The data"): --data DIR, else this variable.
EVAL_DATA_ENV = "CITEBOT_EVAL_DATA"
# SQuAD v1.1 dev as published, or as rebuilt from the SQuAD explorer's pages.
SQUAD_FILES = ("dev-v1.1.json", "dev-v1.1.reconstructed.json")


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        help=f"the evaluation data folder (default: ${EVAL_DATA_ENV}; docs/EVALUATION.md)",
    )


def eval_data(given: Path | None) -> Path:
    """The evaluation data folder: `given` (--data), else $CITEBOT_EVAL_DATA."""
    named = given or (Path(os.environ[EVAL_DATA_ENV]) if os.environ.get(EVAL_DATA_ENV) else None)
    if named is None:
        raise SystemExit(
            f"name the evaluation data folder with --data DIR or {EVAL_DATA_ENV} "
            '(docs/EVALUATION.md, "The data", says where to get it)'
        )
    if not named.is_dir():
        raise SystemExit(f'{named} is not a folder: see docs/EVALUATION.md, "The data"')
    return named


def squad_questions(data: Path) -> Path:
    """SQuAD v1.1 dev in the data folder `data`."""
    folder = data / "squad_v1.1_dev"
    for name in SQUAD_FILES:
        if (folder / name).is_file():
            return folder / name
    raise SystemExit(f"{folder} holds neither {' nor '.join(SQUAD_FILES)}: see docs/EVALUATION.md")


def bench_settings(home: Path, **changes: object) -> Settings:
    """The project's settings with the benchmark data directory (and `changes`)."""
    settings = load_settings({"CITEBOT_HOME": str(home)} | _citebot_environ())
    return dataclasses.replace(settings, **changes)


def _citebot_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("CITEBOT_") and k != "CITEBOT_HOME"}


def ensure_corpus(folder: Path, data: Path | None) -> Path:
    """The benchmark corpus in `folder`, written from the evaluation data first if absent."""
    if not any(folder.glob("*.jsonl")):
        from benchmarks.corpus import write_corpus

        write_corpus(folder, eval_data(data), news_parts=8000, part_chars=1200)
    return folder


@dataclass
class Timing:
    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Wall and CPU seconds (all threads of this process) of the block."""
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall = time.perf_counter() - wall
        timing.cpu = time.process_time() - cpu


def run_timed(args: list[str], env: dict[str, str]) -> tuple[Timing, str]:
    """Runs a command; wall seconds and the CPU seconds of the command (children's rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, env=os.environ | env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu), done.stdout


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    import torch

    from index.embedding.encoder import cpu_model

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def chroma_server(data: Path, timeout: float = 300.0) -> Iterator[tuple[str, int]]:
    """A Chroma server (`chroma run`) on a free loopback port with its data in `data`;
    yields its URL and process id once it answers, and stops it on the way out."""
    url = f"http://127.0.0.1:{(port := free_port())}"
    data.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("chroma")), "run", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--path", str(data)]
    with (data / "server.log").open("ab") as log:
        server = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT,
            env=os.environ | {"ANONYMIZED_TELEMETRY": "False"},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not _heartbeat(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"chroma run did not start: see {data / 'server.log'}")
                time.sleep(0.2)
            yield url, server.pid
        finally:
            server.terminate()
            server.wait(timeout=60)


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def peak_rss_mb(pid: int) -> int:
    """The peak resident memory of the live process `pid` (Linux), in MB."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> int:
    """The resident memory of the live process `pid` now (Linux), in MB."""
    return _status_mb(pid, "VmRSS")


def _status_mb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024)
    raise RuntimeError(f"no {field} for process {pid}")
