"""The benchmarks find the evaluation data where the user says, never at a machine's path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.common import EVAL_DATA_ENV, eval_data, squad_questions
from benchmarks.corpus import squad_records
from index.settings import PROJECT_ROOT


def test_no_benchmark_names_a_machines_folder() -> None:
    for script in (PROJECT_ROOT / "benchmarks").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        found = re.findall(r"['\"(\s](/work/|/home/\w|\.\./shared/)", text)
        assert not found, f"{script.name} names {found}: take --data or {EVAL_DATA_ENV}"


def test_the_data_folder_comes_from_the_argument_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit, match=f"--data DIR or {EVAL_DATA_ENV}"):
        eval_data(None)
    monkeypatch.setenv(EVAL_DATA_ENV, str(tmp_path))
    assert eval_data(None) == tmp_path
    given = tmp_path / "given"
    with pytest.raises(SystemExit, match="is not a folder"):
        eval_data(given)  # the argument wins, and is checked
    given.mkdir()
    assert eval_data(given) == given


def test_squad_as_published_is_read_from_the_documented_layout(tmp_path: Path) -> None:
    squad = tmp_path / "squad_v1.1_dev" / "dev-v1.1.json"
    squad.parent.mkdir()
    paragraph = {"context": "Denver won.", "qas": []}
    squad.write_text(json.dumps({"data": [{"title": "Super_Bowl_50", "paragraphs": [paragraph]}]}))

    assert squad_questions(tmp_path) == squad
    [record] = squad_records(tmp_path)
    assert record["title"] == "Super Bowl 50" and record["text"] == "Denver won."
    assert "squad_v1.1_dev/dev-v1.1.json" in (PROJECT_ROOT / "docs" / "EVALUATION.md").read_text()


def test_the_source_ablation_trains_one_reader_without_each_set_and_measures_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from benchmarks import source_ablation

    (tmp_path / "data" / "squad_v1.1_dev").mkdir(parents=True)
    (tmp_path / "data" / "squad_v1.1_dev" / "dev-v1.1.json").write_text('{"data": []}')
    done = tmp_path / "out" / "without-qed" / "reader"
    done.mkdir(parents=True)
    (done / "training.json").write_text("{}")  # finished: not trained again
    argv = ["source_ablation", "--traindata", str(tmp_path / "td"), "--data"]
    argv += [str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--dry-run"]
    monkeypatch.setattr("sys.argv", [*argv, "--sets", "qed", "selqa", "wikinews"])
    source_ablation.main()
    lines = capsys.readouterr().out.splitlines()
    trainings = [line for line in lines if " train-reader " in line]
    assert len(trainings) == 3  # all, without selqa, without wikinews
    assert trainings[1].endswith("--without selqa") and trainings[2].endswith("--without wikinews")
    # Every run the same but the set it leaves out (and its own folder).
    same = {" ".join(re.sub(r"--without \w+$|\S*/out/\S*", "", t).split()) for t in trainings}
    assert len(same) == 1
    measured = next(line for line in lines if "benchmarks.readers" in line)
    assert measured.count("--reader ") == 5 and "--reader bundled" in measured
    assert sum("--split B" in line for line in lines) == 5
