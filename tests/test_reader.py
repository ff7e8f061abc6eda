"""The sentence reader: the shipped cross-encoder picks the answering sentence first.

Real components throughout: the reader shipped in bot/models/reader/, the bundled
embedding model, real Chroma stores. The distractor articles are generated here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DEMO_ARTICLES, REFERENCE_QUOTE, make_settings

from bot.answering import answerer as answering
from bot.answering.answerer import Answerer
from bot.answering.reader import BUNDLED_READER, ReaderError, SentenceReader, reader_text
from bot.answering.scoring import score_sentences
from bot.cli import main
from bot.render import render_answer
from index.articles import Article
from index.settings import PROJECT_ROOT
from index.store.article_index import ArticleIndex

REFERENCE_QUESTION = "who denied the crematorium claim"


@pytest.fixture(scope="module")
def reader() -> SentenceReader:
    return SentenceReader.from_setting("bundled").load()


def first_quote(index: ArticleIndex, question: str, **settings: object) -> str:
    """The first quote with the default settings (the shipped reader on), or `settings`."""
    answerer = Answerer(index, dataclasses.replace(index.settings, **settings))
    answer = answerer.answer(question)
    assert answer.answered, (question, answer.passages)
    return answer.citations[0].text


def test_the_shipped_reader_loads_offline_with_its_model_card(reader: SentenceReader) -> None:
    card = (BUNDLED_READER / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in card and "citebot train-reader" in card
    assert sum(f.stat().st_size for f in BUNDLED_READER.iterdir()) < 50 * 2**20
    question = "Who won Super Bowl 50?"
    scores = reader.score(
        question,
        [
            reader_text("The Denver Broncos defeated the Carolina Panthers 24–10.", "", "Final"),
            reader_text("The game was played on February 7, 2016.", "", "Final"),
        ],
    )
    assert scores[0] > scores[1]


def test_the_shipped_reader_loads_as_the_cross_encoder_it_is(caplog) -> None:
    caplog.set_level(logging.INFO, logger="sentence_transformers")
    SentenceReader(str(BUNDLED_READER), "fp32").load()  # not the shared one: it loads here
    said = [r.getMessage() for r in caplog.records if r.name.startswith("sentence_transformers")]
    assert said and not [line for line in said if "initializing a new" in line], said


def test_loading_the_reader_prints_nothing() -> None:
    # `citebot serve` loads the reader first, and logs (JSON lines, maybe) on stderr: a
    # progress bar there is neither a log line nor JSON.
    load = "from bot.answering.reader import SentenceReader as R; R.from_setting('bundled').load()"
    done = subprocess.run(
        [sys.executable, "-c", load], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


SUPER_BOWL_TEXTS = [
    reader_text("The Denver Broncos defeated the Carolina Panthers 24–10.", "", "Final"),
    reader_text("The game was played on February 7, 2016.", "", "Final"),
    reader_text("Super Bowl 50 was an American football game.", "", "Final"),
]


def test_in_bf16_the_weights_are_cast_once_and_score_as_fp32_does() -> None:
    import torch

    fp32 = SentenceReader(str(BUNDLED_READER), "fp32").load()
    bf16 = SentenceReader(str(BUNDLED_READER), "bf16").load()
    assert {p.dtype for p in bf16._model[0].model.parameters()} == {torch.bfloat16}
    expected = fp32.score("Who won Super Bowl 50?", SUPER_BOWL_TEXTS)
    scores = bf16.score("Who won Super Bowl 50?", SUPER_BOWL_TEXTS)
    assert scores.dtype == np.float32
    assert list(np.argsort(scores)) == list(np.argsort(expected))
    assert np.max(np.abs(scores - expected)) < 0.25


def test_in_onnx_int8_the_reader_runs_in_onnx_runtime_and_scores_as_fp32_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index.embedding.onnx import OnnxTransformerModel

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fp32 = SentenceReader(str(BUNDLED_READER), "fp32").load()
    int8 = SentenceReader(str(BUNDLED_READER), "onnx-int8").load()
    assert isinstance(int8._model[0].model, OnnxTransformerModel)
    assert int8._model[0].model.onnx_file.name == "model-int8.onnx"
    assert (tmp_path / "cache" / "citebot" / "onnx").is_dir()  # exported once, kept
    expected = fp32.score("Who won Super Bowl 50?", SUPER_BOWL_TEXTS)
    scores = int8.score("Who won Super Bowl 50?", SUPER_BOWL_TEXTS)
    assert scores.dtype == np.float32
    assert scores[0] > scores[1] and expected[0] > expected[1]  # the winner, not the date
    # Measured over 400 SQuAD 2.0 pairs: the logit moves by 0.30 (sd), at most 1.1, so
    # sentences scored within a few tenths of each other may swap (here the third).
    assert np.max(np.abs(scores - expected)) < 1.0


@pytest.mark.parametrize("question", [REFERENCE_QUESTION, "Who won Super Bowl 50?"])
def test_in_onnx_int8_the_reference_and_demo_questions_quote_what_fp32_quotes(
    demo_index: ArticleIndex, question: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    quoted = first_quote(demo_index, question, reader_precision="onnx-int8")
    assert quoted == first_quote(demo_index, question, reader_precision="fp32")


def test_the_same_text_twice_is_read_once(reader: SentenceReader, monkeypatch) -> None:
    read: list[list[tuple[str, str]]] = []
    predict = reader._model.predict
    monkeypatch.setattr(
        reader._model, "predict", lambda pairs, **kw: read.append(pairs) or predict(pairs, **kw)
    )
    once = reader.score("Who won Super Bowl 50?", SUPER_BOWL_TEXTS)
    texts = [SUPER_BOWL_TEXTS[i] for i in (0, 1, 0, 2, 1)]
    twice = reader.score("Who won Super Bowl 50?", texts)
    assert [len(pairs) for pairs in read] == [3, 3]
    assert np.allclose(twice, once[[0, 1, 0, 2, 1]])


@pytest.mark.parametrize(
    "question, expected",
    [
        ("Who won Super Bowl 50?", "Denver Broncos defeated"),
        ("How many nations does the Amazon rainforest cover?", "nine nations"),
        ("Which country has most of the Amazon rainforest?", "contained within Brazil"),
        ("Where was Nikola Tesla born?", "born on 10 July [O.S. 28 June] 1856"),
    ],
)
def test_demo_questions_quote_the_answering_sentence_first(
    demo_index: ArticleIndex, question: str, expected: str
) -> None:
    assert expected in first_quote(demo_index, question)


def test_the_reader_is_on_by_default_and_none_restores_the_feature_ranking(
    demo_index: ArticleIndex,
) -> None:
    assert demo_index.settings.reader == "bundled"
    off = Answerer(demo_index, dataclasses.replace(demo_index.settings, reader="none"))
    assert off.reader is None
    ranking = off.rank("Who won Super Bowl 50?")
    stored = demo_index.stored_passages()
    scored = score_sentences(
        ranking.question, ranking.query, list(ranking.passages), stored.keywords, ranking.when
    )
    assert [s.text for s in ranking.sentences] == [s.text for s in scored]
    # ...which quotes the sentence that repeats the question, not the winner's.
    assert "Denver Broncos defeated" not in ranking.sentences[0].text
    assert "Denver Broncos defeated" in first_quote(demo_index, "Who won Super Bowl 50?")


def test_the_reference_question_quotes_the_denial_first_with_the_reader_on_and_off(
    demo_index: ArticleIndex,
) -> None:
    # The reader reads "Syrian officials assure that this is a lie" as the denial of the
    # claim in the sentence before it, and the briefing that names the crematorium as
    # the claim, not its denial (it learned stances from generated stories that never
    # mention a crematorium: tests/test_training.py).
    assert first_quote(demo_index, REFERENCE_QUESTION) == REFERENCE_QUOTE
    assert first_quote(demo_index, REFERENCE_QUESTION, reader="none") == REFERENCE_QUOTE


def test_dated_articles_are_read_at_the_news_weight_and_keep_their_support(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """News (RealTime QA) is read at its own weight, READER_NEWS_WEIGHT (0: not read);
    its support stays the feature scorer's, on which the news threshold was measured."""
    news = Article(
        "news:sb",
        "Broncos win",
        "Super Bowl 50 was played in Santa Clara.\n\n"
        "The Denver Broncos defeated the Carolina Panthers 24–10.",
        "news:sb",
        published="2016-02-08",
    )
    index = ArticleIndex(make_settings(tmp_path))
    assert index.add_articles([news]).ok
    settings = dataclasses.replace(index.settings, reader="bundled")
    question = "Where was Super Bowl 50 played?"
    off_settings = dataclasses.replace(settings, reader="none")
    off = {s.text: s for s in Answerer(index, off_settings).rank(question).sentences}

    monkeypatch.setattr(answering, "READER_NEWS_WEIGHT", 0.0)
    unread = Answerer(index, settings).rank(question).sentences
    assert [(s.text, s.score) for s in unread] == [(t, s.score) for t, s in off.items()]

    monkeypatch.setattr(answering, "READER_NEWS_WEIGHT", 0.5)
    read = Answerer(index, settings).rank(question).sentences
    reader = SentenceReader.from_setting("bundled")
    texts = [s.text for s in read]
    logits = reader.score(question, [answering.reader_input(s) for s in read])
    gains = 0.5 * logits - min(0.5 * logits)
    for sentence, gain in zip(read, gains, strict=True):
        assert sentence.score == pytest.approx(off[sentence.text].score + gain, abs=1e-3)
        assert sentence.support == off[sentence.text].support
    assert "Santa Clara" in texts[0]


def _distractors(count: int) -> list[Article]:
    """Articles full of "deny" and "claim" that do not answer who denied the crematorium
    claim."""
    rng = random.Random(5)
    who = ["The mayor", "A spokesman", "The league", "Officials", "The company", "A senator"]
    what = ["the tax claim", "a claim about the bridge", "the doping claim", "the fraud claim"]
    verbs = ["denied", "denies", "rejected", "disputed"]
    days = ["Monday", "Friday"]
    articles = []
    for n in range(count):
        sentences = [
            f"{rng.choice(who)} {rng.choice(verbs)} {rng.choice(what)} on {rng.choice(days)}.",
            f"The claim was first reported by a local paper, number {n}.",
            f"{rng.choice(who)} said the denial would not end the inquiry.",
            "Critics claim the statement was too late.",
        ]
        articles.append(
            Article(f"gen:{n}", f"Claim denied, report {n}", "\n\n".join(sentences), f"gen:{n}")
        )
    return articles


def test_reference_question_survives_a_hundred_deny_and_claim_articles(tmp_path: Path) -> None:
    index = ArticleIndex(make_settings(tmp_path, sources=(str(DEMO_ARTICLES),)))
    assert index.rebuild().ok
    assert index.add_articles(_distractors(100)).ok
    assert first_quote(index, REFERENCE_QUESTION) == REFERENCE_QUOTE


def test_a_wire_story_in_two_outlets_is_quoted_once(tmp_path: Path) -> None:
    sentence = "Harbor officials said the lighthouse would reopen on June 3."
    copies = [
        Article(
            f"news:{outlet}",
            f"Lighthouse to reopen ({outlet})",
            f"{'(AP) ' if outlet == 'daily' else ''}{sentence}\n\nIt closed in 2019 for repairs.",
            f"news:{outlet}",
            url=f"https://{outlet}.example/lighthouse",
        )
        for outlet in ("gazette", "daily", "tribune")
    ]
    index = ArticleIndex(make_settings(tmp_path))
    assert index.add_articles(copies).ok
    answer = Answerer(index, index.settings).answer("When will the lighthouse reopen?")
    assert answer.answered
    first = answer.citations[0]
    assert sentence in first.text
    assert sum(sentence in c.text for c in answer.citations) == 1
    assert len(first.also_in) == 2
    assert {o.url for o in first.also_in} | {first.url} == {a.url for a in copies}
    listed = answer.to_json()["citations"][0]["also_in"]
    assert {o["title"] for o in listed} == {o.title for o in first.also_in}
    printed = render_answer(answer)
    assert printed.count("Harbor officials said") == 1
    assert "also in: Lighthouse to reopen" in printed


def test_a_missing_reader_is_one_line_naming_the_folder_and_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-reader"
    with pytest.raises(ReaderError, match="answer.reader"):
        SentenceReader(str(missing)).load()
    monkeypatch.setenv("CITEBOT_READER", str(missing))
    monkeypatch.setenv("CITEBOT_CONFIG", str(_config(tmp_path)))
    runner = CliRunner()
    assert runner.invoke(main, ["index", "rebuild"]).exit_code == 0
    result = runner.invoke(main, ["ask", "Who won Super Bowl 50?"])
    assert result.exit_code == 1
    assert str(missing) in result.output and "answer.reader" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_corrupt_reader_is_one_line_naming_it(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt-reader"
    corrupt.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (corrupt / name).write_text((BUNDLED_READER / name).read_text(encoding="utf-8"))
    (corrupt / "model.safetensors").write_bytes(b"\0" * 1024)
    with pytest.raises(ReaderError) as raised:
        SentenceReader(str(corrupt)).load()
    message = str(raised.value)
    assert str(corrupt) in message and "answer.reader" in message and "\n" not in message


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "citebot.toml"
    small = tmp_path / "articles"
    small.mkdir()
    (small / "sb.txt").write_text(
        "Super Bowl 50\nThe Denver Broncos defeated the Carolina Panthers 24–10.\n",
        encoding="utf-8",
    )
    config.write_text(f"[index]\nsources = [{json.dumps(str(small))}]\n", encoding="utf-8")
    return config
