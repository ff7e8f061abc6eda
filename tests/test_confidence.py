"""The answer's confidence: a probability that its first quote answers, calibrated by
`citebot calibrate`, shipped in bot/models/confidence.json."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.answering.answerer import Answerer, answer_support
from bot.answering.calibration import (
    BUNDLED_CALIBRATION,
    SUPPORT_THRESHOLD,
    Calibration,
    CalibrationError,
    Curve,
    load_calibration,
)
from bot.cli import main
from bot.training.calibrate import Point, measure, reliability
from index.store.article_index import ArticleIndex

REFERENCE_QUESTION = "who denied the crematorium claim"
# Asked of the demo articles: answered, and (a name swapped, as SQuAD 2.0 writes its
# unanswerable questions) not answerable from them.
QUESTIONS = [REFERENCE_QUESTION, "Who won Super Bowl 50?", "Where was Thomas Edison born?"]


def test_the_shipped_calibration_rises_with_the_support_and_says_how_it_was_fitted() -> None:
    calibration = load_calibration()
    for read in (True, False):
        low, high = (calibration.probability(s, read) for s in (0.3, 1.5))
        assert 0 < low < calibration.threshold(read) < high < 1
        assert calibration.threshold(read) == calibration.probability(SUPPORT_THRESHOLD, read)
    record = calibration.record
    assert record["command"].startswith("citebot calibrate --traindata")
    for mode in ("reader", "features"):
        dev = record["dev"][mode]
        assert dev["answerable"] >= 100 and dev["unanswerable"] >= 100
        assert 0.5 < dev["auroc"] < 1


@pytest.mark.parametrize("reader", ["bundled", "none"])
def test_the_confidence_is_the_calibrated_support_and_answers_as_the_support_did(
    demo_index: ArticleIndex, reader: str
) -> None:
    answerer = Answerer(demo_index, dataclasses.replace(demo_index.settings, reader=reader))
    assert demo_index.settings.min_confidence is None
    read = reader != "none"
    assert answerer.min_confidence == answerer.calibration.threshold(read)
    for question in QUESTIONS:
        answer, ranking = answerer.answer_and_rank(question)
        support = answer_support(ranking.sentences, ranking.when)
        assert support is not None
        assert answer.confidence == answerer.calibration.probability(support, read)
        assert 0 < answer.confidence < 1
        # A rising curve and the probability of the former threshold: the same decision.
        assert answer.answered == (support >= SUPPORT_THRESHOLD), question


def test_a_threshold_set_is_a_probability(demo_index: ArticleIndex) -> None:
    settings = dataclasses.replace(demo_index.settings, min_confidence=0.999)
    answer = Answerer(demo_index, settings).answer(REFERENCE_QUESTION)
    assert not answer.answered and 0 < answer.confidence < 0.999


def test_ask_json_reports_a_probability(demo_index: ArticleIndex, monkeypatch) -> None:
    monkeypatch.setenv("CITEBOT_HOME", str(demo_index.settings.home))
    result = CliRunner().invoke(main, ["ask", "--json", "Who won Super Bowl 50?"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["answered"] and 0 < answer["confidence"] < 1


def test_a_broken_calibration_file_is_one_line_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"reader": {"slope": 1}}')
    with pytest.raises(CalibrationError, match=rf"{broken}.*citebot calibrate"):
        load_calibration(broken)
    with pytest.raises(CalibrationError, match="missing"):
        load_calibration(tmp_path / "none.json")
    falling = tmp_path / "falling.json"
    Calibration(Curve(-1.0, 0.0), Curve(2.0, -1.0)).save(falling)
    with pytest.raises(CalibrationError, match="does not rise"):
        load_calibration(falling)


def test_measure_reports_the_trade_off_and_the_calibration() -> None:
    curve = Curve(4.0, -4.0)  # 0.5 at a support of 1
    points = [
        Point(1.5, True, True),
        Point(1.2, True, True),
        Point(0.8, True, False),
        Point(0.9, False, False),
        Point(0.2, False, False),
        Point(None, False, False),
    ]
    figures = measure(points, curve)
    assert figures["answerable"] == 3 and figures["unanswerable"] == 3
    assert figures["default_min_confidence"] == round(curve.probability(SUPPORT_THRESHOLD), 4)
    # At 0.72: 3 of 3 answerable answered, 1 of 3 unanswerable, 2 of 4 answers right.
    assert figures["default_answerable_answered"] == 1.0
    assert figures["default_unanswerable_answered"] == round(1 / 3, 4)
    assert figures["default_answered_first_quote_right"] == 0.5
    assert figures["first_quote_right"] == round(2 / 3, 4)
    assert figures["auroc"] == round(8 / 9, 4)  # 8 of the 9 pairs ordered right
    assert reliability([0.1, 0.15, 0.9, 1.0], [False, True, True, True]) == [
        [0.125, 0.5, 2],
        [0.95, 1.0, 2],
    ]


def test_the_calibration_is_in_the_package_data() -> None:
    assert BUNDLED_CALIBRATION.is_file()
    assert BUNDLED_CALIBRATION.with_suffix(".md").is_file()
    pyproject = (BUNDLED_CALIBRATION.parents[2] / "pyproject.toml").read_text()
    assert '"citebot.bot.models" = ["confidence.json", "confidence.md"]' in pyproject


def _traindata(folder: Path) -> Path:
    """The combiner's and dev's part of a training data folder, in its formats."""
    texts = {
        "Apollo": "Apollo 11 landed on the Moon in July 1969. Neil Armstrong stepped out first.",
        "Beethoven": "Beethoven was born in Bonn in 1770. He moved to Vienna in 1792.",
        "Chess": "Chess is played on a board of 64 squares. Each player starts with 16 pieces.",
    }
    qas = {
        "Apollo": [("Who stepped out first?", "Neil Armstrong"), ("Who flew Apollo 12?", None)],
        "Beethoven": [("Where was Beethoven born?", "Bonn"), ("Where did he die?", None)],
        "Chess": [("How many squares has a board?", "64"), ("Who invented chess?", None)],
    }

    def squad(titles: list[str]) -> dict:
        data = []
        for title in titles:
            context = texts[title]
            qs = [
                {"id": f"{title}{n}", "question": q, "is_impossible": a is None,
                 "answers": [] if a is None else [{"text": a, "answer_start": context.index(a)}]}
                for n, (q, a) in enumerate(qas[title])
            ]  # fmt: skip
            data.append({"title": title, "paragraphs": [{"context": context, "qas": qs}]})
        return {"data": data}

    (folder / "squad2_dev_split_a").mkdir(parents=True)
    (folder / "squad2_dev_split_a" / "dev-v2.0.split-a.json").write_text(
        json.dumps(squad(["Apollo", "Beethoven", "Chess"]))
    )
    (folder / "squadshifts_new_wiki").mkdir()
    shifts = squad(["Apollo", "Beethoven"])
    for article in shifts["data"]:
        article["title"] += " (shifted)"
        for p in article["paragraphs"]:
            p["qas"] = [q for q in p["qas"] if not q["is_impossible"]]
    (folder / "squadshifts_new_wiki" / "new_wiki_v1.0.train.json").write_text(json.dumps(shifts))
    (folder / "wikinews").mkdir()
    with (folder / "wikinews" / "wikinews_2020.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "date", "title", "text"])
        storm = "A storm hit the coast of Portugal. About 300 people were evacuated from Porto."
        vote = "Voters in Slovakia chose a new parliament. The turnout was 65 percent, they said."
        writer.writerow(["u1", "2020-03-02", "Storm hits coast", storm])
        writer.writerow(["u2", "2020-03-03", "Election held", vote])
    for year in ("2019",):
        (folder / "wikinews" / f"wikinews_{year}.csv").write_text("url,date,title,text\n")
    (folder / "selqa").mkdir()
    for part in ("dev", "test"):
        (folder / "selqa" / f"selqa-ass-{part}.json").write_text("[]")
    (folder / "qed_nq").mkdir()
    paragraph = "The Eiffel Tower is in Paris . It was built in 1889 ."
    qed = {
        "example_id": 1, "paragraph_text": paragraph, "title_text": "Eiffel Tower",
        "question_text": "when was the eiffel tower built", "answer_text": ["1889"],
        "answer_spans": [[paragraph.index("1889"), paragraph.index("1889") + 4]],
        "sentence_starts": [0, paragraph.index("It")],
    }  # fmt: skip
    (folder / "qed_nq" / "qed-train.jsonlines").write_text(json.dumps(qed) + "\n")
    (folder / "wikipedia_current_events_2026").mkdir()
    (folder / "wikipedia_current_events_2026" / "2026-08-01-index.md").write_text(
        "* A ferry carrying 200 passengers sinks off the coast of Sulawesi, Indonesia.\n"
    )
    return folder


@pytest.mark.slow
def test_calibrate_fits_on_the_combiners_questions_and_measures_on_dev(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CITEBOT_HOME", str(tmp_path / "home"))
    folder = _traindata(tmp_path / "traindata")
    out = tmp_path / "confidence.json"
    result = CliRunner().invoke(
        main,
        ["calibrate", "--traindata", str(folder), "--out", str(out), "--per-source", "5"]
        + ["--reader-per-source", "1"],
    )
    assert result.exit_code == 0, result.output
    calibration = load_calibration(out)
    record = calibration.record
    assert record["command"] == (
        "citebot calibrate --traindata TRAINDATA --per-source 5 --reader-per-source 1"
    )
    # Apollo (position 0) is dev; Beethoven (1) the combiner's; Chess (2) the reader's.
    for mode in ("reader", "features"):
        assert record["dev"][mode]["answerable"] == 1
        assert record["dev"][mode]["unanswerable"] == 1
    assert record["fitted_on"]["squad2"] == {"answerable": 1, "unanswerable": 1}
    # The one QED question was drawn for a reader trained with --per-source 1: it never fits.
    assert "qed" not in record["fitted_on"]
    assert f"Calibration written to {out}" in result.output


def test_qed_questions_a_reader_drew_in_any_stage_are_not_asked(tmp_path: Path) -> None:
    from bot.training.calibration_sets import qed_combiner_set, traindata_draws

    folder = _traindata(tmp_path / "traindata")
    reader = tmp_path / "reader"
    reader.mkdir()
    stages = [
        {"per_source": None, "plan": {"seed": 0}},  # SQuAD split A only: no training data
        {"per_source": 1, "plan": {"seed": 0}, "traindata_examples": {"qed": 1}},
    ]
    (reader / "training.json").write_text(json.dumps({"stages": stages}))
    assert traindata_draws(str(reader)) == [(1, 0)]
    assert traindata_draws("none") == [] and traindata_draws("bundled") == []
    _, unseen = qed_combiner_set(folder, 0, traindata_draws("bundled"))
    assert [a.question.question for a in unseen] == ["When was the eiffel tower built?"]
    _, unseen = qed_combiner_set(folder, 0, traindata_draws(str(reader)))
    assert unseen == []
