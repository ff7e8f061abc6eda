"""What each training set adds to the reader: a reader on every set, and one without each.

    python -m benchmarks.source_ablation --traindata TRAINDATA --data EVAL_DATA \
        --out /tmp/ablation --per-source 800 --epochs 1

Trains, from all-MiniLM-L6-v2 with one seed and plan, a reader on SQuAD split A and every
set of the training data ("all"), and one reader for each set left out
(`citebot train-reader --without SET`: every other example is the same). Each run is
resumable in OUT/<name> (a finished reader is not trained again), so the whole command
can be started again after a stop. It then measures every reader, and the shipped one as
the baseline, in one run of `benchmarks.readers` (the training data's held-out sets:
SQuADShifts' and SQuAD 2.0's combiner articles, QED queries no reader drew, news
questions, and dev) and, reader by reader, `benchmarks.reader_weights` on SQuAD split B
(it only measures: nothing is chosen on it) and on RealTime QA 2022. JSON lines on
stdout, one per reader and set; the logs of each step in OUT.

Seven trainings: on 2 CPU cores at `--per-source 800 --epochs 1` about an hour each; on a
CUDA GPU (`--device auto`) minutes. `--dry-run` prints the commands and runs nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from benchmarks.common import CITEBOT, add_data_argument, eval_data, offline_env
from bot.training.datasets import LICENSES

SETS = sorted(LICENSES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traindata", type=Path, required=True)
    add_data_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="readers, work and logs")
    parser.add_argument("--per-source", type=int, default=800)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--twins", type=float, default=0.5)
    parser.add_argument("--stance", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--sets", nargs="+", choices=SETS, default=SETS, help="the sets to leave out, one a run"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args()

    data = eval_data(args.data)
    squad = data / "squad_v1.1_dev" / "dev-v1.1.reconstructed.json"
    if not squad.exists():
        squad = data / "squad_v1.1_dev" / "dev-v1.1.json"
    runs = {"all": [], **{f"without-{s}": ["--without", s] for s in args.sets}}
    readers = [args.out / name / "reader" for name in runs]
    steps = [
        (name, training_command(args, squad, args.out / name, extra))
        for name, extra in runs.items()
        if not (args.out / name / "reader" / "training.json").exists()
    ]
    # The shipped reader measured in the same runs, as the baseline.
    steps.append(("readers", measuring_command(args, ["bundled", *readers])))
    rtqa = data / "realtimeqa_2022"
    for reader in ["bundled", *readers]:
        name = "bundled" if reader == "bundled" else reader.parent.name
        steps.append((f"split-b-{name}", weights_command(reader, "squad", squad)))
        steps.append((f"rtqa-{name}", weights_command(reader, "realtimeqa", rtqa)))
    for name, command in steps:
        if args.dry_run:
            print(shlex.join(map(str, command)))
            continue
        run_step(args.out, name, command)


def training_command(args, squad: Path, folder: Path, extra: list[str]) -> list:
    """One reader of the ablation: the same seed, plan and sets but those in `extra`."""
    return [
        CITEBOT, "train-reader", squad, "--traindata", args.traindata,
        "--per-source", args.per_source, "--twins", args.twins, "--stance", args.stance,
        "--premises", "--epochs", args.epochs, "--seed", args.seed, "--device", args.device,
        "--work", folder / "work", "--out", folder / "reader", *extra,
    ]  # fmt: skip


def measuring_command(args, readers: list) -> list:
    readers_args = [a for r in readers for a in ("--reader", r)]
    return [
        sys.executable, "-m", "benchmarks.readers", "--traindata", args.traindata,
        "--seed", args.seed, *readers_args,
    ]  # fmt: skip


def weights_command(reader: Path | str, fmt: str, path: Path) -> list:
    where = ["--split", "B"] if fmt == "squad" else ["--distractors", "300"]
    return [
        sys.executable, "-m", "benchmarks.reader_weights", "--format", fmt, *where,
        "--depth", "8", "--reader", reader, path,
    ]  # fmt: skip


def run_step(out: Path, name: str, command: list) -> None:
    """Runs one step with its stderr in OUT/NAME.log; what a measuring step reports goes
    to stdout, a JSON line each with the step's name."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{name}.log").open("w") as log:
        done = subprocess.run(
            [str(c) for c in command],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=offline_env(out / "home"),
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}): see {out / f'{name}.log'}")
    try:  # reader_weights prints one object over several lines; readers, one a line
        reports = [json.loads(done.stdout)]
    except json.JSONDecodeError:
        reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for report in reports:
        print(json.dumps({"step": name} | report), flush=True)


if __name__ == "__main__":
    main()
