"""Readers for evaluation sets: SQuAD v1.1 JSON and RealTime QA's weekly files.

Each reader turns a set into articles to index and questions with their gold answers and
gold articles (and, for SQuAD, the character span of the gold paragraph).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from index.articles import Article
from index.errors import CitebotError

# Quotes around a RealTime QA choice ("“Harbor Lights”") are not part of the answer.
CHOICE_QUOTES = "\"'“”‘’ "


class EvalDataError(CitebotError):
    """An evaluation set is missing or not in the format it was read as."""


@dataclass(frozen=True)
class EvalQuestion:
    """A question, its gold answer strings and where the answer is.

    `gold_spans` are (article id, start, end) character ranges of the gold paragraphs,
    or None when only the gold articles are known.
    """

    id: str
    question: str
    answers: list[str]
    gold_article_ids: list[str]
    gold_spans: list[tuple[str, int, int]] | None = None
    question_date: str | None = None


@dataclass(frozen=True)
class EvalSet:
    """Articles to index and questions to ask; `unanswerable` questions have no gold
    article in `articles`."""

    articles: list[Article]
    questions: list[EvalQuestion]
    distractor_ids: frozenset[str] = frozenset()
    unanswerable: list[EvalQuestion] = field(default_factory=list)
    name: str = ""


def read_eval_set(fmt: str, path: Path) -> EvalSet:
    """Reads `path` as `fmt` ("squad" or "realtimeqa"; read_realtimeqa_weeks reads the
    weeks without gold articles)."""
    readers = {"squad": read_squad, "realtimeqa": read_realtimeqa}
    try:
        return readers[fmt](Path(path))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise EvalDataError(
            f"{path} does not follow the {fmt} schema: {type(exc).__name__} {exc}"
        ) from None


def read_squad(path: Path) -> EvalSet:
    """One Article per SQuAD article: its paragraphs joined by blank lines."""
    raw = load_json(path)
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, list):
        raise EvalDataError(f"{path} is not SQuAD v1.1 JSON: it has no list under 'data'")
    articles, questions = [], []
    for entry in data:
        article_id = f"squad:{entry['title']}"
        text, offset = [], 0
        for paragraph in entry["paragraphs"]:
            context = paragraph["context"]
            span = (article_id, offset, offset + len(context))
            questions += [
                EvalQuestion(
                    id=qa["id"],
                    question=qa["question"],
                    answers=_unique_texts(a["text"] for a in qa["answers"]),
                    gold_article_ids=[article_id],
                    gold_spans=[span],
                )
                for qa in paragraph["qas"]
            ]
            text.append(context)
            offset += len(context) + 2
        title = entry["title"].replace("_", " ")
        articles.append(Article(article_id, title, "\n\n".join(text), source=article_id))
    return EvalSet(articles=articles, questions=questions)


def read_realtimeqa(folder: Path) -> EvalSet:
    """Questions from `qa/`, their gold articles from `gold/`, distractors from `gcs/`.

    Questions without gold article text are skipped. The gold text of an article wins
    over its search-result copy; gcs articles that are gold for no question are
    distractors.
    """
    weeks = sorted((folder / "qa").glob("*_qa.jsonl"))
    if not weeks:
        raise EvalDataError(f"{folder} has no qa/*_qa.jsonl files: is it a RealTime QA folder?")
    titles: dict[str, str] = {}
    pool: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / "gcs").glob("*_gcs.jsonl*")):
        for record in json_lines(path):
            for result in record["search_result"]:
                url = _without_fragment(result["url"])
                titles.setdefault(url, result.get("title") or "")
                if result.get("text"):
                    pool.setdefault(url, result)
    gold: dict[str, Article] = {}
    questions = []
    for qa_path in weeks:
        gold_path = folder / "gold" / qa_path.name.replace("_qa.", "_gold.")
        found = {r["question_id"]: r["search_result"] for r in json_lines(gold_path)}
        for qa in json_lines(qa_path):
            results = [r for r in found.get(qa["question_id"], []) if r.get("text")]
            if not results:
                continue
            ids = []
            for result in results:
                url = _without_fragment(result["url"])
                gold.setdefault(url, _news_article(url, result, titles.get(url)))
                ids.append(gold[url].id)
            correct = [qa["choices"][int(i)].strip(CHOICE_QUOTES) for i in qa["answer"]]
            questions.append(
                EvalQuestion(
                    id=qa["question_id"],
                    question=qa["question_sentence"],
                    answers=_unique_texts(correct),
                    gold_article_ids=list(dict.fromkeys(ids)),
                    question_date=_iso(qa.get("question_date")),
                )
            )
    distractors = [
        _news_article(url, result, titles.get(url))
        for url, result in pool.items()
        if url not in gold
    ]
    return EvalSet(
        articles=list(gold.values()) + distractors,
        questions=questions,
        distractor_ids=frozenset(a.id for a in distractors),
    )


def read_realtimeqa_weeks(folder: Path) -> list[EvalSet]:
    """One set per week of a RealTime QA folder without gold articles (qa/ and gcs/):
    the week's search-result articles, and the questions whose correct choice's text
    occurs in their own search results (those articles are their gold articles)."""
    weeks = sorted((Path(folder) / "qa").glob("*_qa.jsonl"))
    if not weeks:
        raise EvalDataError(f"{folder} has no qa/*_qa.jsonl files: is it a RealTime QA folder?")
    try:
        return [_week(qa_path) for qa_path in weeks]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise EvalDataError(
            f"{folder} does not follow the RealTime QA schema: {type(exc).__name__} {exc}"
        ) from None


def _week(qa_path: Path) -> EvalSet:
    week = qa_path.name.split("_", 1)[0]
    gcs = qa_path.parent.parent / "gcs"
    found = [p for p in (gcs / f"{week}_gcs.jsonl.gz", gcs / f"{week}_gcs.jsonl") if p.exists()]
    if not found:
        raise EvalDataError(f"{gcs} has no {week}_gcs.jsonl(.gz) for {qa_path.name}")
    articles: dict[str, Article] = {}
    results: dict[str, list[str]] = {}
    for record in json_lines(found[0]):
        for result in record["search_result"]:
            if not result.get("text"):
                continue
            url = _without_fragment(result["url"])
            articles.setdefault(url, _news_article(url, result, result.get("title")))
            results.setdefault(record["question_id"], []).append(url)
    questions = []
    for qa in json_lines(qa_path):
        correct = [qa["choices"][int(i)].strip(CHOICE_QUOTES) for i in qa["answer"]]
        golds = [c.casefold() for c in correct if c]
        having = [
            articles[url].id
            for url in dict.fromkeys(results.get(qa["question_id"], []))
            if any(g in articles[url].text.casefold() for g in golds)
        ]
        if having:
            questions.append(
                EvalQuestion(
                    id=qa["question_id"],
                    question=qa["question_sentence"],
                    answers=_unique_texts(correct),
                    gold_article_ids=having,
                    question_date=_iso(qa.get("question_date")),
                )
            )
    return EvalSet(articles=list(articles.values()), questions=questions, name=week)


def _news_article(url: str, result: dict[str, Any], title: str | None) -> Article:
    return Article(
        id=f"rtqa:{url}",
        title=title or result.get("title") or _title_from_url(url),
        text=result["text"],
        source=url,
        url=url,
        published=_iso(result.get("publish_date")),
    )


def _title_from_url(url: str) -> str:
    """Gold records carry no title: use the URL's slug ("squid-game-season-2")."""
    parts = [p for p in urlsplit(url).path.split("/") if p and not p.startswith("index.")]
    return parts[-1].replace("-", " ") if parts else url


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def _iso(date: str | None) -> str | None:
    """RealTime QA writes dates as 2022/06/17 (search times add /HH:MM)."""
    return "-".join(date.split("/")[:3]) if date else None


def _unique_texts(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t))


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalDataError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise EvalDataError(f"{path} is not valid JSON: {exc}") from None


def json_lines(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise EvalDataError(f"{path} line {number} is not JSON: {exc}") from None
    except FileNotFoundError:
        raise EvalDataError(f"{path} does not exist") from None
