"""`citebot eval`: reading SQuAD and RealTime QA, sampling, metrics, and a cached run."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_settings

from bot.answering.answerer import Answerer
from bot.cli import main
from bot.evaluation.baselines import BaselineResult, summarize
from bot.evaluation.metrics import (
    QuestionResult,
    aggregate,
    citation_hit,
    first_relevant_rank,
    is_relevant,
    percentile,
    recall_at_k,
    reciprocal_rank,
)
from bot.evaluation.readers import (
    EvalDataError,
    EvalQuestion,
    read_eval_set,
    read_realtimeqa,
    read_squad,
)
from bot.evaluation.runner import ask_all, cache_key
from bot.evaluation.sampling import Sample, select
from index.articles import Article
from index.store.article_index import ArticleIndex
from index.store.passage_info import PassageInfo

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
SQUAD = FIXTURES / "squad-mini.json"
REALTIMEQA = FIXTURES / "realtimeqa"
NEWS = "https://news.example/2099/01/0"


# -- readers ------------------------------------------------------------------------


def test_squad_articles_are_paragraphs_joined_and_spans_point_at_each_paragraph() -> None:
    eval_set = read_squad(SQUAD)
    raw = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    assert [a.id for a in eval_set.articles] == [
        "squad:Normans",
        "squad:Oxygen",
        "squad:Prime_number",
    ]
    assert eval_set.articles[2].title == "Prime number"
    assert len(eval_set.questions) == 12
    assert eval_set.distractor_ids == frozenset()
    text_of = {a.id: a.text for a in eval_set.articles}
    for question in eval_set.questions:
        ((article_id, start, end),) = question.gold_spans
        assert question.gold_article_ids == [article_id]
        context = text_of[article_id][start:end]
        assert any(p["context"] == context for entry in raw for p in entry["paragraphs"])
        assert any(a in context for a in question.answers)
    normans = eval_set.articles[0]
    assert normans.text == "\n\n".join(p["context"] for p in raw[0]["paragraphs"])
    first = eval_set.questions[0]
    assert first.id == "56ddde6b9a695914005b9628"
    assert first.answers == ["France"]  # four annotators, one distinct answer


def test_realtimeqa_gold_articles_distractors_and_skipped_questions() -> None:
    eval_set = read_realtimeqa(REALTIMEQA)
    by_id = {a.id: a for a in eval_set.articles}
    bridge, festival, weather = (
        f"rtqa:{NEWS}3/harbor-bridge/index.html",
        f"rtqa:{NEWS}4/lantern-festival/index.html",
        f"rtqa:{NEWS}5/lantern-festival-weather/index.html",
    )
    cheese, robots = (
        f"rtqa:{NEWS}2/cheese-prices/index.html",
        "rtqa:https://other.example/2099/01/06/robot-gardens",
    )
    assert set(by_id) == {bridge, festival, weather, cheese, robots}
    assert eval_set.distractor_ids == {cheese, robots}
    # The gold text wins over the search result's scraped copy; the title comes from it.
    assert by_id[bridge].text.startswith("Brindmoor CNN")
    assert by_id[bridge].title == "Brindmoor opens a bridge of sails - Example News"
    assert by_id[festival].title == "lantern festival"
    assert by_id[festival].published == "2099-01-04"
    assert by_id[weather].url == f"{NEWS}5/lantern-festival-weather/index.html"
    # Questions without gold text (none, or a URL only) are skipped.
    assert [q.id for q in eval_set.questions] == ["20990107_0", "20990107_1"]
    bridge_q, festival_q = eval_set.questions
    assert bridge_q.answers == ["Brindmoor"]
    assert festival_q.answers == ["The river parade"]  # the quotes are not part of it
    assert festival_q.gold_article_ids == [festival, weather]
    assert festival_q.gold_spans is None
    assert festival_q.question_date == "2099-01-06"


def test_realtimeqa_reads_gzipped_search_results(tmp_path: Path) -> None:
    folder = tmp_path / "week"
    shutil.copytree(REALTIMEQA, folder)
    plain = folder / "gcs" / "20990107_gcs.jsonl"
    (folder / "gcs" / "20990107_gcs.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    assert read_realtimeqa(folder) == read_realtimeqa(REALTIMEQA)


def test_unreadable_sets_name_the_file(tmp_path: Path) -> None:
    not_squad = tmp_path / "list.json"
    not_squad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(EvalDataError, match="list.json is not SQuAD"):
        read_squad(not_squad)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(EvalDataError, match="broken.json is not valid JSON"):
        read_squad(broken)
    with pytest.raises(EvalDataError, match="no qa/"):
        read_realtimeqa(tmp_path)
    no_title = tmp_path / "no-title.json"
    no_title.write_text('{"data": [{"paragraphs": []}]}', encoding="utf-8")
    with pytest.raises(EvalDataError, match="no-title.json does not follow the squad schema"):
        read_eval_set("squad", no_title)


# -- sampling -----------------------------------------------------------------------


def test_limit_samples_questions_but_indexes_every_article() -> None:
    full = read_squad(SQUAD)
    chosen = select(full, Sample(seed=3, limit=5))
    assert chosen.articles == full.articles
    assert len(chosen.questions) == 5
    assert set(q.id for q in chosen.questions) <= set(q.id for q in full.questions)
    assert select(full, Sample(seed=3, limit=5)) == chosen
    assert select(full, Sample(seed=4, limit=5)).questions != chosen.questions


def test_unanswerable_questions_come_from_articles_left_out_whole() -> None:
    full = read_squad(SQUAD)
    chosen = select(full, Sample(seed=0, unanswerable=3))
    indexed = {a.id for a in chosen.articles}
    assert len(indexed) == 2
    assert len(chosen.unanswerable) == 3
    assert all(set(q.gold_article_ids).isdisjoint(indexed) for q in chosen.unanswerable)
    assert all(set(q.gold_article_ids) <= indexed for q in chosen.questions)
    assert len(chosen.questions) == 8  # every question of the two indexed articles


def test_articles_cap_does_not_depend_on_the_limit() -> None:
    full = read_squad(SQUAD)
    small = select(full, Sample(seed=1, articles=2))
    assert len(small.articles) == 2
    assert select(full, Sample(seed=1, articles=2, limit=3)).articles == small.articles
    assert {q.gold_article_ids[0] for q in small.questions} == {a.id for a in small.articles}


def test_distractors_are_capped_and_unanswerable_realtimeqa_holds_out_gold() -> None:
    full = read_realtimeqa(REALTIMEQA)
    chosen = select(full, Sample(seed=0, distractors=1, unanswerable=1))
    assert len(chosen.distractor_ids) == 1
    assert chosen.distractor_ids <= full.distractor_ids
    (held,) = chosen.unanswerable
    indexed = {a.id for a in chosen.articles}
    assert set(held.gold_article_ids).isdisjoint(indexed)
    assert held not in chosen.questions


# -- metrics ------------------------------------------------------------------------


def _question(spans: list[tuple[str, int, int]] | None) -> EvalQuestion:
    return EvalQuestion("q", "Who?", ["Ada"], gold_article_ids=["a"], gold_spans=spans)


def _passage(article_id: str, start: int, end: int) -> PassageInfo:
    return PassageInfo(article_id, "", "", "", "", "", 0, start, end, (), "")


def test_relevance_is_overlap_with_the_gold_paragraph_or_the_gold_article() -> None:
    spanned = _question([("a", 100, 200)])
    assert is_relevant(_passage("a", 150, 300), spanned)
    assert is_relevant(_passage("a", 0, 101), spanned)
    assert not is_relevant(_passage("a", 0, 100), spanned)
    assert not is_relevant(_passage("a", 200, 250), spanned)
    assert not is_relevant(_passage("b", 150, 160), spanned)
    whole = _question(None)
    assert is_relevant(_passage("a", 9000, 9100), whole)
    assert not is_relevant(_passage("b", 0, 10), whole)


def test_ranks_recall_and_reciprocal_rank() -> None:
    assert first_relevant_rank([False, False, True, True]) == 3
    assert first_relevant_rank([False]) is None
    assert [recall_at_k(3, k) for k in (1, 2, 3, 10)] == [0.0, 0.0, 1.0, 1.0]
    assert recall_at_k(None, 10) == 0.0
    assert reciprocal_rank(4) == 0.25
    assert reciprocal_rank(None) == 0.0


def test_citation_hit_ignores_case_and_looks_at_the_first_k() -> None:
    cited = ["Nothing here.", "It was ADA LOVELACE.", "Ada again."]
    assert citation_hit(cited, ["Ada Lovelace"], 1) == 0.0
    assert citation_hit(cited, ["Ada Lovelace"], 3) == 1.0
    assert citation_hit(cited, ["Babbage", "nothing"], 1) == 1.0
    assert citation_hit([], ["Ada"], 3) == 0.0  # an abstention never hits


def test_percentile_interpolates_between_values() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) == 0.0


def test_aggregate_on_hand_computed_results() -> None:
    results = [
        QuestionResult(
            "1", rank=1, answered=True, cited=["Ada wrote it."], ms=10.0, answers=["Ada"]
        ),
        QuestionResult("2", rank=4, answered=True, cited=["No.", "Ada."], ms=20.0, answers=["ada"]),
        QuestionResult(
            "3",
            rank=None,
            answered=False,
            cited=[],
            ms=30.0,
            answers=["Ada"],
            best_sentence="Ada, below the threshold.",
        ),
    ]
    held_out = [QuestionResult("4", rank=None, answered=True, cited=["x"], ms=40.0, answers=["y"])]
    summary = aggregate(results, held_out)
    assert summary["questions"] == 3
    assert summary["recall@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["recall@5"] == summary["recall@10"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["mrr"] == pytest.approx((1 + 0.25) / 3, abs=1e-4)
    assert summary["citation_hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["citation_hit@3"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["answered"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["citation_hit@1_when_answered"] == 0.5
    # The abstention's best sentence names Ada; the others' best sentences are unknown.
    assert summary["best_sentence_hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["p50_ms"] == 25.0
    assert summary["p95_ms"] == pytest.approx(38.5)
    assert summary["unanswerable"] == 1
    assert summary["unanswerable_answered"] == 1.0
    assert "unanswerable" not in aggregate(results)


def test_cache_key_follows_articles_and_index_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    one, two = Article("a", "A", "Text a.", "a"), Article("b", "B", "Text b.", "b")
    key = cache_key([one, two], settings)
    assert cache_key([two, one], settings) == key
    assert cache_key([one, dataclasses.replace(two, text="Changed.")], settings) != key
    assert cache_key([one], settings) != key
    assert cache_key([one, two], dataclasses.replace(settings, passage_sentences=2)) != key
    assert cache_key([one, two], dataclasses.replace(settings, min_confidence=0.1)) == key


# -- the command, end to end with the real model -----------------------------------


@pytest.mark.slow
def test_eval_squad_json_then_a_second_run_reuses_the_cached_index(isolated_env: Path) -> None:
    runner = CliRunner()
    args = ["eval", "--format", "squad", str(SQUAD), "--json"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    for key in ("recall@1", "recall@5", "recall@10", "mrr", "citation_hit@1", "citation_hit@3"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["recall@1"] <= summary["recall@5"] <= summary["recall@10"]
    assert summary["citation_hit@1"] <= summary["citation_hit@3"] <= summary["answered"]
    assert summary["recall@10"] > 0.5 and summary["citation_hit@3"] > 0.3
    assert 0 < summary["p50_ms"] <= summary["p95_ms"]
    assert summary["questions"] == 12 and summary["articles"] == 3
    assert summary["passages_embedded"] == summary["passages"] > 0
    assert summary["index_cached"] is False
    cache_dir = Path(summary["cache_dir"])
    assert cache_dir.parent == isolated_env / "eval-cache"

    second = json.loads(runner.invoke(main, [*args, "--baselines"]).stdout)
    assert second["index_cached"] is True
    assert second["passages_embedded"] == 0
    assert second["cache_dir"] == summary["cache_dir"]
    assert second["recall@10"] == summary["recall@10"]
    plain = second["baselines"]
    for name in ("bm25", "dense", "rrf"):
        assert plain[name]["recall@1"] <= plain[name]["recall@5"] <= plain[name]["recall@10"]
        assert plain[name]["recall@10"] > 0.5
    for name in ("first_sentence_of_top_passage", "closest_sentence_of_top_3"):
        assert 0.0 <= plain[name]["citation_hit@1"] <= 1.0
    assert "baselines" not in summary


def test_baseline_summary_on_hand_computed_results() -> None:
    results = [
        BaselineResult(
            {"bm25": 1, "dense": 3, "rrf": None},
            {"first_sentence_of_top_passage": "Ada wrote it.", "closest_sentence_of_top_3": ""},
            ["Ada"],
        ),
        BaselineResult(
            {"bm25": None, "dense": 1, "rrf": 2},
            {"first_sentence_of_top_passage": "No.", "closest_sentence_of_top_3": "ada!"},
            ["Ada"],
        ),
    ]
    summary = summarize(results)
    assert summary["bm25"] == {"recall@1": 0.5, "recall@5": 0.5, "recall@10": 0.5, "mrr": 0.5}
    assert summary["dense"]["recall@1"] == 0.5 and summary["dense"]["recall@5"] == 1.0
    assert summary["dense"]["mrr"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-4)
    assert summary["rrf"]["mrr"] == 0.25
    assert summary["first_sentence_of_top_passage"]["citation_hit@1"] == 0.5
    assert summary["closest_sentence_of_top_3"]["citation_hit@1"] == 0.5


@pytest.mark.slow
def test_eval_realtimeqa_table_reports_unanswerable_questions() -> None:
    result = CliRunner().invoke(
        main, ["eval", "--format", "realtimeqa", str(REALTIMEQA), "--unanswerable", "1"]
    )
    assert result.exit_code == 0, result.output
    chosen = select(read_realtimeqa(REALTIMEQA), Sample(unanswerable=1))
    assert result.stdout.startswith(f"{len(chosen.questions)} questions; ")
    for label in ("passage recall@10", "citation hit@3", "unanswerable answered", "p95"):
        assert label in result.stdout


def test_a_set_without_questions_is_a_one_line_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"data": [{"title": "T", "paragraphs": []}]}), encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", "--format", "squad", str(empty)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {empty} has no questions to ask with these options\n"


def test_recall_ranking_stops_at_the_deepest_cut_off(tmp_path: Path) -> None:
    """The answerer may look at more passages than recall@10 counts (15 by default); a
    gold passage it ranks below 10th counts as missed, as in the baselines' rankings."""
    articles = [
        Article(f"doc:{i}", f"Harbor note {i}", f"Boat {i} left the harbor at {i} o'clock.", "")
        for i in range(12)
    ]
    index = ArticleIndex(make_settings(tmp_path / "home", candidate_passages=12))
    assert index.add_articles(articles).ok
    answerer = Answerer(index, index.settings)
    text = "When did boat 3 leave the harbor?"
    order = [p.metadata.article_id for p in answerer.rank(text).passages]
    assert len(order) == 12
    first, last = order[0], order[-1]
    results = ask_all(
        answerer,
        [
            EvalQuestion("q-first", text, ["3 o'clock"], [first]),
            EvalQuestion("q-last", text, ["3 o'clock"], [last]),
        ],
    )
    assert [r.rank for r in results] == [1, None]


# -- RealTime QA weeks without gold articles -------------------------------------------


def _write_week(folder: Path, week: str, pages: dict[str, str], questions: list[dict]) -> None:
    (folder / "qa").mkdir(parents=True, exist_ok=True)
    (folder / "gcs").mkdir(exist_ok=True)
    with (folder / "qa" / f"{week}_qa.jsonl").open("w", encoding="utf-8") as out:
        for q in questions:
            out.write(json.dumps(q) + "\n")
    with gzip.open(folder / "gcs" / f"{week}_gcs.jsonl.gz", "wt", encoding="utf-8") as out:
        for q in questions:
            results = [
                {
                    "url": url,
                    "title": url.rsplit("/", 1)[-1],
                    "text": text,
                    "publish_date": f"{week[:4]}/{week[4:6]}/{week[6:]}",
                }
                for url, text in pages.items()
                if url in q["results"]
            ]
            out.write(json.dumps({"question_id": q["question_id"], "search_result": results}))
            out.write("\n")


def _weeks_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rtqa-weeks"
    bridge = f"{NEWS}/bridge"
    kites = f"{NEWS}/kites"
    pages = {
        bridge: "Brindmoor opened a floating bridge made of recycled sails on Tuesday.\n\n"
        "The bridge crosses the old canal.",
        kites: "The kite festival drew 4,000 visitors to the dunes.\n\nIt ends on Sunday.",
    }

    def question(week: str, n: int, text: str, choices: list[str], answer: int, results):
        return {
            "question_id": f"{week}_{n}",
            "question_date": f"{week[:4]}/{week[4:6]}/{week[6:]}",
            "question_sentence": text,
            "choices": choices,
            "answer": [str(answer)],
            "results": results,
        }

    _write_week(
        folder,
        "20990107",
        pages,
        [
            question(
                "20990107",
                0,
                "Which town opened a floating bridge?",
                ["Portavel", "“Brindmoor”"],
                1,
                [bridge, kites],
            ),
            # The correct choice is in no search result of its own: not scored.
            question("20990107", 1, "Who designed the bridge?", ["Ada", "Vera"], 0, [bridge]),
        ],
    )
    _write_week(
        folder,
        "20990114",
        {kites: pages[kites]},
        [
            question(
                "20990114",
                0,
                "How many visitors did the kite festival draw?",
                ["4,000", "9,000"],
                0,
                [kites],
            )
        ],
    )
    return folder


def test_weeks_without_gold_score_questions_whose_answer_is_in_their_results(
    tmp_path: Path,
) -> None:
    from bot.evaluation.readers import read_realtimeqa_weeks

    weeks = read_realtimeqa_weeks(_weeks_folder(tmp_path))
    assert [w.name for w in weeks] == ["20990107", "20990114"]
    first, second = weeks
    assert len(first.articles) == 2 and len(second.articles) == 1
    assert [(q.id, q.answers) for q in first.questions] == [("20990107_0", ["Brindmoor"])]
    assert first.questions[0].gold_article_ids == [f"rtqa:{NEWS}/bridge"]
    assert first.questions[0].question_date == "2099-01-07"
    assert [q.id for q in second.questions] == ["20990114_0"]


def test_a_smaller_sample_of_weeks_is_part_of_a_larger_one() -> None:
    from bot.evaluation.readers import EvalSet
    from bot.evaluation.sampling import sample_weeks

    weeks = [EvalSet([], [], name=f"w{n:02}") for n in range(20)]
    small = [w.name for w in sample_weeks(weeks, 5, seed=3)]
    large = [w.name for w in sample_weeks(weeks, 12, seed=3)]
    assert set(small) < set(large) and small == sorted(small)
    assert [w.name for w in sample_weeks(weeks, None, seed=3)] == [w.name for w in weeks]
    assert small != [w.name for w in sample_weeks(weeks, 5, seed=4)]


@pytest.mark.slow
def test_eval_weeks_asks_each_week_on_its_own_index_with_the_reader_off_beside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITEBOT_READER", "bundled")
    args = ["eval", "--format", "realtimeqa-weeks", str(_weeks_folder(tmp_path))]
    result = CliRunner().invoke(main, [*args, "--baselines", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["weeks"] == ["20990107", "20990114"]
    assert summary["questions"] == 2 and summary["articles"] == 3
    assert summary["reader"] == "bundled"
    off = summary["baselines"]["citebot with the reader off"]
    assert {"best_sentence_hit@1", "recall@5", "mrr", "p50_ms"} <= set(off)
    assert summary["best_sentence_hit@1"] == 1.0
