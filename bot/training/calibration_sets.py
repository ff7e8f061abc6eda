"""The questions the confidence is calibrated and measured on (bot/training/calibrate.py).

From the training data (../shared/traindata, bot/training/datasets.py), by the roles
datasets.py gives each article: the combiner-role articles, which a reader trained with
`--traindata` never reads (nor their SQuAD v1.1 questions: `train-reader` leaves them
out), are indexed together, as an archive mixes encyclopedia and news, and their
questions asked: SQuAD 2.0's (answerable and not), SQuADShifts', news questions written
from Wikinews 2020 and "Current events" (half their stories left out of the index, so
those have no answer), and QED's real search queries the reader did not draw. SQuAD 2.0
split A's dev-role articles only measure.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bot.training.datasets import (
    NewsStory,
    TrainQuestion,
    news_questions,
    read_current_events,
    read_qed,
    read_squad_json,
    read_traindata,
    read_wikinews,
    role_of,
    sample_per_source,
    with_role,
)
from index.articles import Article


@dataclass(frozen=True)
class Asked:
    """A question to ask the index, the texts of the sentences that answer it (none:
    the index does not), and the day it is asked on."""

    question: TrainQuestion
    answers: frozenset[str]
    asked_on: date | None = None


def combiner_set(folder: Path, seed: int, per_source: int) -> tuple[list[Article], list[Asked]]:
    """The combiner-role articles of a training data folder and the questions asked of
    them: SQuAD 2.0's (answerable and not), SQuADShifts', and news questions written
    from Wikinews 2020 and the last month of "Current events", half of whose stories are
    indexed (questions about the other half have no answer in the index). A third of
    the news questions end in "this week", asked three days after their story."""
    rng = random.Random(f"{seed}:combiner")
    squad = read_squad_json(folder / "squad2_dev_split_a" / "dev-v2.0.split-a.json", "squad2")
    squad += read_squad_json(
        folder / "squadshifts_new_wiki" / "new_wiki_v1.0.train.json", "squadshifts"
    )
    squad = with_role(squad, "combiner")
    articles = _paragraph_articles(squad)
    asked = [Asked(q, _answer_texts(q)) for q in squad]
    stories = [
        s
        for s in read_wikinews(folder / "wikinews" / "wikinews_2020.csv")
        + read_current_events(folder / "wikipedia_current_events_2026")
        if _is_combiner_story(s)
    ]
    indexed = {s.id for i, s in enumerate(stories) if i % 2 == 0}
    articles += [_story_article(s) for s in stories if s.id in indexed]
    for question, _ in news_questions(stories, 2, seed):
        story = question.article
        day = date.fromisoformat(next(s.published for s in stories if s.id == story)[:10])
        text = question.question
        if rng.random() < 1 / 3:
            text = text.rstrip("?") + " this week?"
        answers = _answer_texts(question) if story in indexed else frozenset()
        shown = TrainQuestion(
            question.id, question.source, story, text, question.title, (), question.answers
        )
        asked.append(Asked(shown, answers, day + timedelta(days=3)))
    return articles, _per_source(asked, per_source, seed)


# Natural Questions' real search queries share fewer words with their answer than
# crowd-written SQuAD questions do: the calibration is fitted on both kinds.
QED_COMBINER_QUESTIONS = 400


def qed_combiner_set(
    folder: Path,
    seed: int,
    drawn: Sequence[tuple[int | None, int]],
    count: int = QED_COMBINER_QUESTIONS,
) -> tuple[list[Article], list[Asked]]:
    """`count` QED questions no reader was trained on (none of those that `train-reader
    --traindata --per-source N --seed S` drew, for each (N, S) of `drawn`: see
    `traindata_draws`), each paragraph an article of an index of their own."""
    questions = with_role(read_traindata(folder, seed), "reader")
    trained = {q.id for n, s in set(drawn) for q in sample_per_source(questions, n, s)}
    unseen = [q for q in read_qed(folder / "qed_nq" / "qed-train.jsonlines") if q.id not in trained]
    picked = random.Random(f"{seed}:qed-combiner").sample(unseen, min(count, len(unseen)))
    return _paragraph_articles(picked), [Asked(q, _answer_texts(q)) for q in picked]


def traindata_draws(reader: str) -> list[tuple[int | None, int]]:
    """What each stage of `reader` ("bundled", "none" or a folder) that trained on a
    training data folder drew of it, as its training.json records: (--per-source,
    --seed) pairs; none for a reader that never trained on one."""
    from bot.answering.reader import BUNDLED_READER
    from bot.training.train import reader_stages

    if reader == "none":
        return []
    folder = BUNDLED_READER if reader == "bundled" else Path(reader).expanduser()
    return [
        (stage.get("per_source"), stage.get("plan", {}).get("seed", 0))
        for stage in reader_stages(folder)
        if stage.get("traindata_examples")
    ]


def _is_combiner_story(story: NewsStory) -> bool:
    return role_of(story.source, story.id, [story.id]) == "combiner"


def _answer_texts(question: TrainQuestion) -> frozenset[str]:
    return frozenset(sentence_key(question.sentences[i]) for i in question.answers)


def sentence_key(sentence: str) -> str:
    """A sentence as compared with the answering ones: its words, lower-cased."""
    return " ".join(re.findall(r"\w+", sentence.casefold()))


def _paragraph_articles(questions: Sequence[TrainQuestion]) -> list[Article]:
    """One article per source article: its paragraphs (each question's sentences, in the
    order first seen) joined by blank lines."""
    paragraphs: dict[str, dict[tuple[str, ...], None]] = {}
    titles: dict[str, str] = {}
    for q in questions:
        paragraphs.setdefault(q.article, {})[q.sentences] = None
        titles[q.article] = q.title
    return [
        Article(
            article,
            titles[article],
            "\n\n".join(" ".join(p) for p in paras),
            source=article,
        )
        for article, paras in paragraphs.items()
    ]


def _story_article(story: NewsStory) -> Article:
    return Article(
        story.id,
        story.title,
        " ".join(story.sentences),
        source=story.id,
        published=story.published[:10],
    )


def _per_source(asked: list[Asked], per_source: int, seed: int) -> list[Asked]:
    rng = random.Random(f"{seed}:combiner-sample")
    kept: list[Asked] = []
    for source in dict.fromkeys(a.question.source for a in asked):
        mine = [a for a in asked if a.question.source == source]
        for answerable in (True, False):
            part = [a for a in mine if bool(a.answers) == answerable]
            kept += rng.sample(part, min(per_source, len(part)))
    return kept


def dev_set(folder: Path, count: int, seed: int) -> tuple[list[Article], list[Asked]]:
    """SQuAD 2.0 split A's dev-role articles and `count` of their questions drawn by
    `seed`, half answerable."""
    questions = with_role(
        read_squad_json(folder / "squad2_dev_split_a" / "dev-v2.0.split-a.json", "squad2"), "dev"
    )
    asked = [Asked(q, _answer_texts(q)) for q in questions]
    return _paragraph_articles(questions), _per_source(asked, count // 2, seed)
