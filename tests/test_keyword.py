"""The BM25 keyword index against the formula written out, built whole and updated."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from index.store.keyword import KeywordIndex
from index.text import terms

TEXTS = [
    "Syrian officials assure that this is a lie to justify the aggressive policy.",
    "The U.N. spokesman said the claim—first made on Monday—was well-founded.",
    "İstanbul's naïve_plan: ‘don’t panic’, said the mayor (again); 1973 oil crisis.",
    "Oil prices rose sharply in October 1973, when the embargo began.",
    "",
    "Apple growers in Kent expect a record harvest; the harvest starts in August.",
]
TITLES = ["Syria denies claim", "U.N. statement", "Istanbul", "1973 oil crisis", "Empty", "Kent"]
QUERIES = [
    "who denied the claim",
    "When did the 1973 oil crisis begin?",
    "İstanbul naïve plan don't panic",
    "record apple harvest in Kent",
    "well-founded U.N. claim",
    "nothing matches zyzzyva",
]


def reference_scores(texts: list[str], titles: list[str], query: str) -> list[float]:
    """Okapi BM25 (k1=1.2, b=0.75) over each text with its title, as the textbook has it."""
    k1, b = 1.2, 0.75
    docs = [Counter(terms(text) + terms(title)) for text, title in zip(texts, titles, strict=True)]
    average = sum(sum(d.values()) for d in docs) / len(docs)
    scores = []
    for doc in docs:
        length = sum(doc.values())
        score = 0.0
        for term in set(terms(query)):
            if doc[term]:
                df = sum(1 for other in docs if other[term])
                idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                score += (
                    idf * doc[term] * (k1 + 1) / (doc[term] + k1 * (1 - b + b * length / average))
                )
        scores.append(score)
    return scores


def reference_idf(texts: list[str], term: str) -> float:
    df = sum(1 for text in texts if term in terms(text))
    return math.log(1 + (len(texts) - df + 0.5) / (df + 0.5))


def assert_same_as_reference(index: KeywordIndex, texts: list[str], titles: list[str]) -> None:
    assert index.size == len(texts)
    for query in QUERIES:
        assert index.scores(query) == pytest.approx(
            reference_scores(texts, titles, query), rel=1e-5
        )
    for term in {t for text in texts for t in terms(text)} | {"zyzzyva", "unknown"}:
        assert index.idf(term) == pytest.approx(reference_idf(texts, term))


def test_scores_follow_bm25_with_titles_and_idf_of_texts_alone() -> None:
    index = KeywordIndex(TEXTS, TITLES)

    assert_same_as_reference(index, TEXTS, TITLES)
    best, _ = index.top("When did the 1973 oil crisis begin?", 1)[0]
    assert best == 3
    assert index.top("nothing matches zyzzyva", 3) == []


def test_an_updated_index_equals_one_built_from_scratch() -> None:
    index = KeywordIndex(TEXTS[:4], TITLES[:4])
    keep = np.array([True, False, True, True])
    added_texts = ["Oil embargo ends; the crisis is over, officials said.", *TEXTS[4:]]
    added_titles = ["Embargo ends", *TITLES[4:]]

    updated = index.updated(keep, added_texts, added_titles)

    texts = [t for t, k in zip(TEXTS[:4], keep, strict=True) if k] + added_texts
    titles = [t for t, k in zip(TITLES[:4], keep, strict=True) if k] + added_titles
    assert_same_as_reference(updated, texts, titles)
    assert_same_as_reference(index, TEXTS[:4], TITLES[:4])  # the old one is unchanged
    assert index.updated(np.zeros(4, dtype=bool), [], []).size == 0


def test_no_passages() -> None:
    index = KeywordIndex([], [])
    assert index.size == 0
    assert index.scores("oil").shape == (0,)
    assert index.top("oil", 5) == []
