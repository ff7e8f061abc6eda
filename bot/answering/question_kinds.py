"""What kind of answer a question wants (a person, a date, a number, a place), and whether
a sentence has something of that kind: a classic extractive-QA signal the encoder misses."""

from __future__ import annotations

import re
from functools import lru_cache

from llama_index.core.utils import globals_helper

_KINDS = (
    (
        "number",
        re.compile(
            r"\bhow (many|much|long|old|large|big|far|tall)\b|\bwhat (percentage|percent)\b", re.I
        ),
    ),
    (
        "date",
        re.compile(r"\bwhen\b|\bwhat (year|date|day|month|century|decade)\b|\bwhich year\b", re.I),
    ),
    ("who", re.compile(r"\bwho(m|se)?\b", re.I)),
    ("where", re.compile(r"\bwhere\b", re.I)),
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|dozen|hundred|thousand|million|"
    r"billion)s?\b",
    re.I,
)
_DATE = re.compile(
    r"\b1\d{3}\b|\b20\d{2}\b|\b(January|February|March|April|May|June|July|August|September|"
    r"October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b|"
    r"\b\d+(st|nd|rd|th) century\b|\b(yesterday|today|tomorrow)\b",
    re.I,
)
_CAPITALIZED = re.compile(r"\b[A-Z][\w'’.-]*")
_WORD = re.compile(r"\w+")


def answer_kind(question: str) -> str | None:
    for kind, pattern in _KINDS:
        if pattern.search(question):
            return kind
    return None


def has_answer_kind(kind: str, question: str, sentence: str) -> bool:
    """Whether `sentence` holds a candidate answer of `kind` (a name the question does
    not already contain, for who/where questions)."""
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    if kind == "date":
        return bool(_DATE.search(sentence))
    asked = {w.lower() for w in _WORD.findall(question)}
    stop = _stopwords()
    return any(
        w.lower() not in stop and w.lower() not in asked for w in _CAPITALIZED.findall(sentence)
    )


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    return frozenset(globals_helper.stopwords)
