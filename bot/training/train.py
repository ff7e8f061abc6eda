"""Fine-tunes a cross-encoder on reader examples: seeded, resumable, on a CPU (or a
CUDA GPU where there is one: the same command, minutes rather than hours).

Each step reads a few questions' groups (the answering sentence first, then its
negatives; a group without an answer has negatives only). The loss is the softmax
cross-entropy of the group with a null option scored 0 (the answering sentence should
score highest among its candidates and above 0; with no answer, every candidate below 0)
plus the binary cross-entropy of each pair (so a score means the same for every
question, which abstention relies on).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.answering.reader import MAX_LENGTH
from bot.training.examples import Example
from index.errors import CitebotError

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class TrainingPlan:
    epochs: float = 2.0
    questions_per_step: int = 6
    learning_rate: float = 4e-5
    warmup_share: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    # bfloat16 autocast: about 1.5x faster where the CPU has AVX-512 BF16 or AMX.
    bf16: bool = True
    checkpoint_every: int = 100
    # Keep the base model's word embeddings as they are: half of MiniLM-L6's weights,
    # where fine-tuning on split A's 24 articles learns their topics' words rather than
    # how a sentence answers (docs/EVALUATION.md).
    freeze_embeddings: bool = False


def train(
    examples: Sequence[Example],
    base_model: str,
    work_dir: Path,
    plan: TrainingPlan,
    progress: Callable[[int, int, float], None] | None = None,
    device: str = "cpu",
):
    """Trains from `base_model` (a BERT-like folder) on `device` ("cpu" or "cuda") and
    returns the model, on the CPU, and the tokenizer.

    A checkpoint in `work_dir` (written every `plan.checkpoint_every` steps) is resumed
    from, when it was written for the same plan and examples, on either device.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    random.seed(plan.seed)
    torch.manual_seed(plan.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    # float32 also when the base is stored in fp16 (as the shipped reader is).
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model, num_labels=1, dtype=torch.float32
    )
    model.to(device)
    if plan.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    order = _step_order(len(examples), plan)
    total = len(order)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=plan.learning_rate,
        weight_decay=plan.weight_decay,
    )
    warmup = max(1, int(total * plan.warmup_share))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))),
    )
    identity = {
        "plan": asdict(plan),
        "examples": len(examples),
        "digest": _digest(examples),
        "base": base_model,
    }
    start = _resume(work_dir, identity, model, optimizer, scheduler)
    model.train()
    bce = torch.nn.BCEWithLogitsLoss()
    for step in range(start, total):
        group = [examples[i] for i in order[step]]
        questions = [e.question for e in group for _ in e.texts]
        texts = [t for e in group for t in e.texts]
        # Cut as the reader is read (CrossEncoder.predict): the longer of the two first.
        # Cutting only the sentence failed on a question longer than MAX_LENGTH (a news
        # question asked after its premise), stopping a run hours in.
        encoded = tokenizer(
            questions,
            texts,
            truncation="longest_first",
            max_length=MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=plan.bf16):
            logits = model(**encoded).logits.float().reshape(-1)
        loss = torch.zeros((), device=device)
        null = torch.zeros(1, device=device)
        offset = 0
        labels = torch.zeros_like(logits)
        for example in group:
            size = len(example.texts)
            # Listwise with a null option: "none of these" scores 0, so the answering
            # sentence must score above it, and a group with no answer (positive None)
            # is right only when every candidate scores below it.
            scored = torch.cat([logits[offset : offset + size], null])
            target = 0 if example.positive is not None else size
            loss = loss + torch.nn.functional.cross_entropy(
                scored.unsqueeze(0), torch.tensor([target], device=device)
            )
            if example.positive is not None:
                labels[offset] = 1.0
            offset += size
        loss = loss / len(group) + bce(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if progress:
            progress(step + 1, total, float(loss.detach()))
        if (step + 1) % plan.checkpoint_every == 0 and step + 1 < total:
            _save_checkpoint(work_dir, identity, step + 1, model, optimizer, scheduler)
    model.eval()
    return model.cpu(), tokenizer


def _step_order(count: int, plan: TrainingPlan) -> list[list[int]]:
    """Which examples each step reads: a seeded shuffle per epoch (a fractional last
    epoch reads the start of its shuffle)."""
    rng = random.Random(f"{plan.seed}:order")
    steps: list[list[int]] = []
    epochs = math.ceil(plan.epochs)
    per_epoch = math.ceil(count / plan.questions_per_step)
    for epoch in range(epochs):
        indices = list(range(count))
        rng.shuffle(indices)
        batches = [
            indices[i : i + plan.questions_per_step]
            for i in range(0, count, plan.questions_per_step)
        ]
        if epoch == epochs - 1 and plan.epochs != epochs:
            batches = batches[: round(per_epoch * (plan.epochs - epoch))]
        steps += batches
    return steps


def _save_checkpoint(work_dir: Path, identity, step, model, optimizer, scheduler) -> None:
    import torch

    folder = work_dir / CHECKPOINT
    partial = work_dir / (CHECKPOINT + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state()} if _on_cuda(model) else {}),
        },
        partial / "state.pt",
    )
    (partial / "identity.json").write_text(json.dumps(identity | {"step": step}))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    log.info("checkpoint at step %d", step)


def _resume(work_dir: Path, identity, model, optimizer, scheduler) -> int:
    import torch

    folder = work_dir / CHECKPOINT
    try:
        saved = json.loads((folder / "identity.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    step = saved.pop("step")
    if _comparable(saved, saved) != _comparable(json.loads(json.dumps(identity)), saved):
        log.info("checkpoint in %s is for another plan: starting over", folder)
        return 0
    state = torch.load(folder / "state.pt", weights_only=False, map_location="cpu")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])  # (moved to the parameters' device)
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    if _on_cuda(model) and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"])
    log.info("resuming from the checkpoint at step %d", step)
    return step


def _digest(examples: Sequence[Example]) -> str:
    """A fingerprint of the examples: two runs with as many examples but other ones (one
    training set left out for another) do not resume each other's checkpoint."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(example.to_json(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _comparable(identity: dict, saved: dict) -> dict:
    """What of a checkpoint's identity must match for a run to resume it: not whether it
    computed in bf16 (a run goes on where the device computes otherwise, a GPU's
    checkpoint on a CPU without bf16), and the examples' digest only where the
    checkpoint has one (those before it had their count only)."""
    plan = {k: v for k, v in identity["plan"].items() if k != "bf16"}
    kept = {k: v for k, v in identity.items() if k != "digest" or "digest" in saved}
    return kept | {"plan": plan}


def _on_cuda(model) -> bool:
    return next(model.parameters()).device.type == "cuda"


def save_reader(model, tokenizer, folder: Path, fp16: bool = True) -> None:
    """Writes the model as a cross-encoder folder sentence-transformers loads; fp16 halves
    the file, and the reader computes in fp32 after loading."""
    import torch

    partial = _partial(folder)
    # A copy: `model` keeps its fp32 weights (.to casts in place).
    copy = deepcopy(model).to(torch.float16) if fp16 else model
    copy.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    write_cross_encoder_files(partial)
    _replace(folder, partial)


# What sentence-transformers reads to load a folder as the CrossEncoder it is; without
# them it logs "No modules.json found ..., initializing a new CrossEncoder model" on
# every load and builds one from the bare transformers model.
CROSS_ENCODER_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)


def write_cross_encoder_files(folder: Path) -> None:
    """Writes into `folder`, a transformers sequence-classification model, the files
    that make it a sentence-transformers CrossEncoder, as sentence-transformers itself
    writes them; the weights, the configuration and the tokenizer are left as they are."""
    import torch
    from sentence_transformers import CrossEncoder

    fp32 = {"dtype": torch.float32}  # as the reader loads it (an fp16 file warns otherwise)
    model = CrossEncoder(str(folder), max_length=MAX_LENGTH, device="cpu", model_kwargs=fp32)
    with tempfile.TemporaryDirectory(prefix="citebot-reader-") as scratch:
        model.save(scratch, create_model_card=False)
        for name in CROSS_ENCODER_FILES:
            shutil.copy(Path(scratch) / name, folder / name)


def _partial(folder: Path) -> Path:
    """An empty folder beside `folder`, where its new contents are written first."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    return partial


def _replace(folder: Path, partial: Path) -> None:
    """`folder` replaced by `partial`, keeping the model card `folder` had."""
    card = folder / "README.md"
    if card.exists():
        shutil.copy(card, partial / "README.md")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


class AveragingError(CitebotError):
    """Two readers that cannot be averaged; the message names them."""


def average_readers(first: Path, second: Path, share: float, out: Path) -> None:
    """Writes to `out` the reader whose every weight is (1 - share) times `first`'s plus
    `share` times `second`'s (a "model soup": two fine-tunings of one model, where the
    average may keep what each learned). Both must have the same tensors (names and
    shapes); `out` gets `first`'s configuration and tokenizer, and a training.json that
    records both readers' stages and the share."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = []
    for folder in (first, second):
        path = folder / "model.safetensors"
        if not path.is_file():
            raise AveragingError(f"{path} does not exist: name a cross-encoder folder")
        tensors.append(load_file(path))
    a, b = tensors
    shapes = {name: tuple(t.shape) for name, t in a.items()}
    if shapes != {name: tuple(t.shape) for name, t in b.items()}:
        differ = sorted(set(a) ^ set(b)) or [n for n in a if a[n].shape != b[n].shape]
        raise AveragingError(
            f"{first} and {second} have different weights ({differ[0]}, among "
            f"{len(differ)}): average two readers fine-tuned from the same model"
        )
    averaged = {
        name: ((1 - share) * t.to(torch.float32) + share * b[name].to(torch.float32)).to(t.dtype)
        if t.is_floating_point()
        else t
        for name, t in a.items()
    }
    partial = _partial(out)
    partial.mkdir(parents=True)
    for path in first.iterdir():  # its configuration and tokenizer
        if path.is_file() and path.name not in ("model.safetensors", "training.json", "README.md"):
            shutil.copy(path, partial / path.name)
    save_file(averaged, partial / "model.safetensors", metadata={"format": "pt"})
    record = {
        "averaged": {
            "share_of_second": share,
            "first": {"folder": str(first), "stages": reader_stages(first)},
            "second": {"folder": str(second), "stages": reader_stages(second)},
        }
    }
    (partial / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    write_cross_encoder_files(partial)  # also when `first` was saved without them
    _replace(out, partial)


def reader_stages(folder: Path) -> list[dict]:
    """How `folder`'s reader was made, as its training.json records it (read before an
    output folder, which may be the same one, is replaced)."""
    try:
        record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return record.get("stages", [record])
