"""What a question is asked in: the earlier questions of its thread and the articles their
answers cited (a follow-up such as "and when was that?"), and the sources it may be
answered from (a channel scoped to some sources).

`Answerer.rank` reads it in three places: the query vector and the keyword search also
use the earlier questions, and sentences of the articles already cited rank higher; the
follow-up's own words count most in each. Chosen, not tuned: docs/EVALUATION.md measures
it on follow-ups built from SQuAD split B.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from index.retrieval import SourceScope

# A follow-up is read with this many of the thread's earlier questions, newest last.
THREAD_TURNS_KEPT = 3
# The earlier questions' share of the query vector (the follow-up's own is 1).
EARLIER_QUESTION_WEIGHT = 0.5
# What a sentence of an article the thread already cited adds to its score.
CITED_ARTICLE_WEIGHT = 0.15


@dataclass(frozen=True)
class QuestionContext:
    """A thread's earlier questions (oldest first) and the article ids their answers
    cited; `scope`, the sources the answer may come from (None: every source)."""

    earlier_questions: tuple[str, ...] = ()
    cited_articles: frozenset[str] = frozenset()
    scope: SourceScope | None = field(default=None, compare=False)

    @property
    def earlier_text(self) -> str:
        return " ".join(self.earlier_questions)

    def query_vector(self, question_vector: np.ndarray, encoder) -> np.ndarray:
        """The question's vector, moved toward the earlier questions' (unit length)."""
        if not self.earlier_questions:
            return question_vector
        earlier = np.asarray(encoder.get_query_embedding(self.earlier_text), dtype=np.float32)
        mixed = question_vector + EARLIER_QUESTION_WEIGHT * earlier
        return (mixed / (np.linalg.norm(mixed) or 1.0)).astype(np.float32)

    def favour_cited(self, sentences: list) -> list:
        """`sentences` re-ranked: those of articles the thread cited gain
        CITED_ARTICLE_WEIGHT in their score (not in their support: an answer is not the
        more certain for coming from the same article)."""
        if not self.cited_articles:
            return sentences
        favoured = [
            dataclasses.replace(s, score=s.score + CITED_ARTICLE_WEIGHT)
            if s.passage.metadata.article_id in self.cited_articles
            else s
            for s in sentences
        ]
        favoured.sort(key=lambda s: s.score, reverse=True)
        return favoured
