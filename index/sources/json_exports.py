"""JSON and JSON Lines exports: many articles in one file, one a record, their fields
under the keys `sources.json.*` names; a broken record or line fails alone."""

from __future__ import annotations

import json

from index.articles import Article, record_id
from index.errors import SourceError
from index.report import Failure
from index.settings import JsonKeys
from index.sources.documents import capped, clean_title, iso_date, trim_blank_lines, unix_newlines

_JSON_RECORD_LISTS = ("articles", "records", "items")


def json_articles(
    text: str,
    extension: str,
    source: str,
    keys: JsonKeys,
    stem: str,
    max_chars: int | None = None,
) -> tuple[list[Article], list[Failure]]:
    """The articles of a JSON (`extension` ".json") or JSON Lines (".jsonl") export, and a
    failure for each broken line, then for each record that is not an article."""
    records, failures = _json_records(text, extension, source)
    if not records:
        raise SourceError(source, "no records in the JSON")
    articles = []
    for number, where, record in records:
        try:
            article = _record_article(record, number, where, source, keys, stem)
            articles.append(capped(article, max_chars, f"{where}: "))
        except SourceError as exc:
            failures.append(Failure(exc.source, exc.reason))
    return articles, failures


def _json_records(
    text: str, extension: str, source: str
) -> tuple[list[tuple[int, str, object]], list[Failure]]:
    """(number, where, record) of each record, and a failure for each broken JSON Lines
    line: the other lines are read all the same. `number` counts records and broken
    lines alike, so a record keeps its number (and id) when a line before it breaks."""
    if extension == ".jsonl":
        records, failures = [], []
        lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        for number, (line_number, line) in enumerate(lines, 1):
            try:
                records.append((number, f"line {line_number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                reason = f"line {line_number}: not valid JSON (column {exc.colno}): {exc.msg}"
                failures.append(Failure(source, reason))
        if not records and failures:
            first = failures[0]
            more = f" (and {len(failures) - 1} more broken lines)" if len(failures) > 1 else ""
            raise SourceError(source, first.reason + more)
        return records, failures
    data = _parse_json(text, source)
    if isinstance(data, dict):
        data = next((data[k] for k in _JSON_RECORD_LISTS if isinstance(data.get(k), list)), [data])
    if not isinstance(data, list):
        raise SourceError(source, "JSON must be a list of records or an object")
    return [(n, f"record {n}", record) for n, record in enumerate(data, 1)], []


def _parse_json(text: str, source: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise SourceError(source, f"not valid JSON ({where}): {exc.msg}") from None


def _record_article(
    record: object, number: int, where: str, source: str, keys: JsonKeys, stem: str
) -> Article:
    def fail(reason: str) -> SourceError:
        return SourceError(source, f"{where}: {reason}")

    if not isinstance(record, dict):
        raise fail("not a JSON object")
    text = record.get(keys.text)
    if text is None:
        raise fail(f"no '{keys.text}' field (set sources.json.text_key)")
    if not isinstance(text, str):
        raise fail(f"'{keys.text}' is not a string")
    if not text.strip():
        raise fail(f"empty '{keys.text}' field")
    url = record.get(keys.url)
    url = url.strip() if isinstance(url, str) and url.strip() else None
    return Article(
        id=record_id(source, url or str(number)),
        title=clean_title(record.get(keys.title), f"{stem} #{number}"),
        text=trim_blank_lines(unix_newlines(text)),
        source=source,
        url=url,
        published=iso_date(record.get(keys.published)),
    )
