"""Generated news-like text for the benchmarks that need many passages and no encoder: words
drawn from a Zipf distribution over made-up words (plus common English stop words), so
that term statistics look like an archive's: a few very common words, a long tail."""

from __future__ import annotations

import numpy as np

STOP_WORDS = "the of and to in a that is was for on with as by at said from it has".split()
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


class TextGenerator:
    """Sentences and passages from a fixed seed; `vocabulary` made-up words."""

    def __init__(self, seed: int = 0, vocabulary: int = 60_000) -> None:
        self.rng = np.random.default_rng(seed)
        words: set[str] = set()
        while len(words) < vocabulary:
            codes = self.rng.integers(0, len(SYLLABLES), (vocabulary, 4))
            lengths = self.rng.integers(2, 5, vocabulary)
            rows = zip(codes, lengths, strict=True)
            words.update("".join(SYLLABLES[c] for c in row[:n]) for row, n in rows)
        self.words = np.array(sorted(words)[:vocabulary])
        self.rng.shuffle(self.words)  # the Zipf ranks below, not alphabetical
        # Zipf's law over the vocabulary (s = 1.1): rank r has weight r^-1.1.
        weights = np.arange(1, vocabulary + 1, dtype=np.float64) ** -1.1
        self.cumulative = np.cumsum(weights / weights.sum())

    def sentence(self) -> str:
        length = int(self.rng.integers(8, 25))
        picks = np.minimum(
            np.searchsorted(self.cumulative, self.rng.random(length)), len(self.words) - 1
        )
        stops = self.rng.integers(0, len(STOP_WORDS), length)
        stopped = self.rng.random(length) < 0.35
        words = [
            STOP_WORDS[s] if stop else str(self.words[p])
            for p, s, stop in zip(picks, stops, stopped, strict=True)
        ]
        return words[0].capitalize() + " " + " ".join(words[1:]) + "."

    def passage(self, sentences: int = 5) -> tuple[str, list[tuple[int, int]]]:
        """A passage's text and its sentences' (start, end) offsets."""
        text, spans = "", []
        for _ in range(sentences):
            if text:
                text += " "
            sentence = self.sentence()
            spans.append((len(text), len(text) + len(sentence)))
            text += sentence
        return text, spans

    def title(self) -> str:
        return " ".join(str(w).capitalize() for w in self.rng.choice(self.words[:5000], 4))
