"""Sentence splitting keeps abbreviations and bracketed notes inside their sentence."""

from __future__ import annotations

import pytest

from index.text import MAX_SENTENCE_CHARS, sentence_spans


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Tesla was born on 10 July [O.S. 28 June] 1856 in Smiljan. His father was a priest.",
            [
                "Tesla was born on 10 July [O.S. 28 June] 1856 in Smiljan.",
                "His father was a priest.",
            ],
        ),
        (
            "Many fruits (e.g. apples and pears) grow here. Others (i.e. Bananas) do not.",
            ["Many fruits (e.g. apples and pears) grow here.", "Others (i.e. Bananas) do not."],
        ),
        ("The U.S. Army said so. It left.", ["The U.S. Army said so.", "It left."]),
        (
            "He lived at No. 5 Baker Street. He left.",
            ["He lived at No. 5 Baker Street.", "He left."],
        ),
        (
            "Prices rose (see Fig. 3). Then they fell.",
            ["Prices rose (see Fig. 3).", "Then they fell."],
        ),
    ],
)
def test_notes_and_abbreviations_stay_in_their_sentence(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_a_stray_bracket_does_not_swallow_the_sentences_after_it() -> None:
    text = "A stray ( bracket here. And more text. And more."
    assert sentences(text) == ["A stray ( bracket here.", "And more text.", "And more."]


def test_sentences_still_end_where_a_new_one_starts() -> None:
    text = "Officials met in the U.S. The next day they left. No. That is not all."
    assert sentences(text)[-1] == "That is not all."
    assert "The next day they left." in sentences(text)


def test_text_without_sentence_breaks_is_cut_at_word_boundaries() -> None:
    words = " ".join(f"word{i}" for i in range(30_000))  # 228,890 characters, no full stop
    text = "Headline\n\n" + words + "\n\n" + "x" * 2500

    spans = sentence_spans(text)

    pieces = [text[s:e] for s, e in spans]
    assert max(len(p) for p in pieces) == MAX_SENTENCE_CHARS
    assert pieces[0] == "Headline"
    assert " ".join(pieces[1:-3]) == words  # every word kept, none cut in two
    assert all(len(p) > MAX_SENTENCE_CHARS - 10 for p in pieces[1:-4])
    assert pieces[-3:] == ["x" * 1000, "x" * 1000, "x" * 500]  # one word: cut where it must
