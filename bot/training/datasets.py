"""Readers for the judge's training data (shared/traindata, its README): each set becomes
questions asked of one paragraph split into sentences, with the sentences that answer.

Every reader gives `TrainQuestion`s: the question, the paragraph's sentences as the
index splits them, which of them answer (none: the paragraph does not answer it), and
the article it comes from (the unit a held-out split is drawn by). News text has no
questions: `news_questions` writes them, cloze style, from its sentences.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.evaluation.readers import EvalDataError, json_lines, load_json
from index.text import sentence_spans

# Each set's folder under the training data folder, its reader, and its license (the
# model card lists them).
LICENSES = {
    "squad2": "CC BY-SA 4.0",
    "squadshifts": "CC BY 4.0 (contexts: Wikipedia, CC BY-SA)",
    "qed": "CC BY-SA 3.0 (Natural Questions)",
    "selqa": "Apache-2.0 (text from Wikipedia)",
    "wikinews": "CC BY 2.5",
    "current_events": "CC BY-SA 4.0 (Wikipedia)",
}


@dataclass(frozen=True)
class TrainQuestion:
    """A question about one paragraph. `answers` are the indices of the sentences that
    answer it; empty when the paragraph does not (SQuAD 2.0's unanswerable questions)."""

    id: str
    source: str
    article: str
    question: str
    title: str
    sentences: tuple[str, ...]
    answers: frozenset[int]
    answer_text: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def read_squad_json(path: Path, source: str) -> list[TrainQuestion]:
    """SQuAD v1.1 or v2.0 JSON (SQuADShifts is v1.1's format): a question's answering
    sentences are those its answers start in; `is_impossible` questions have none."""
    data = load_json(path)
    questions = []
    try:
        for article in data["data"]:
            title = article["title"].replace("_", " ")
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                spans = sentence_spans(context)
                sentences = tuple(context[s:e] for s, e in spans)
                for qa in paragraph["qas"]:
                    answers = [] if qa.get("is_impossible") else qa["answers"]
                    hit = {
                        i
                        for a in answers
                        for i, (s, e) in enumerate(spans)
                        if s <= a["answer_start"] < e
                    }
                    if answers and not hit:
                        continue
                    questions.append(
                        TrainQuestion(
                            id=f"{source}:{qa['id']}",
                            source=source,
                            article=f"{source}:{article['title']}",
                            question=qa["question"].strip(),
                            title=title,
                            sentences=sentences,
                            answers=frozenset(hit),
                            answer_text=answers[0]["text"] if answers else "",
                        )
                    )
    except (KeyError, TypeError) as exc:
        raise EvalDataError(f"{path} is not SQuAD JSON: it lacks {exc}") from None
    return questions


# QED's paragraphs are tokenised ("firm 's", "( played in 1981 )"): joined back so that
# the reader reads text as an index holds it.
_DETOKENIZE = [
    (re.compile(r" (['’](?:s|re|ve|ll|d|m)\b|n't\b)"), r"\1"),
    (re.compile(r" ([,.;:!?%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$]) "), r"\1"),
    (re.compile(r"`` ?"), '"'),
    (re.compile(r" ?''"), '"'),
]


def detokenize(text: str) -> str:
    """Tokenised text with the spaces before punctuation and after opening brackets gone."""
    for pattern, replacement in _DETOKENIZE:
        text = pattern.sub(replacement, text)
    return text.strip()


def read_qed(path: Path) -> list[TrainQuestion]:
    """QED's JSON lines (Natural Questions with one paragraph each): the paragraph is cut
    at its `sentence_starts`, each sentence detokenised, and the answering sentence is the
    one its first answer span starts in."""
    questions = []
    for n, record in enumerate(json_lines(path), 1):
        try:
            text = record["paragraph_text"]
            starts = sorted({0, *record["sentence_starts"]})
            bounds = list(zip(starts, [*starts[1:], len(text)], strict=True))
            spans = record["answer_spans"]
            hit = {i for a, _ in spans for i, (s, e) in enumerate(bounds) if s <= a < e}
            sentences = tuple(detokenize(text[s:e]) for s, e in bounds)
            answer = record["answer_text"][0] if record["answer_text"] else ""
            qid, question, title = (
                record["example_id"],
                record["question_text"],
                record["title_text"],
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise EvalDataError(f"{path}, line {n}: not a QED record ({exc})") from None
        if not hit or not all(sentences):
            continue
        questions.append(
            TrainQuestion(
                id=f"qed:{qid}",
                source="qed",
                article=f"qed:{title}",
                question=_asked(question),
                title=title,
                sentences=sentences,
                answers=frozenset(hit),
                answer_text=detokenize(answer),
            )
        )
    return questions


def read_selqa(path: Path) -> list[TrainQuestion]:
    """SelQA answer-sentence selection: a section's sentences and the indices of those
    that answer."""
    records = load_json(path)
    questions = []
    try:
        for n, record in enumerate(records):
            sentences = tuple(c.strip() for c in record["candidates"])
            answers = frozenset(int(i) for i in record["answers"] if 0 <= int(i) < len(sentences))
            questions.append(
                TrainQuestion(
                    id=f"selqa:{path.stem}:{n}",
                    source="selqa",
                    article=f"selqa:{record['article']}",
                    question=record["question"].strip(),
                    title=f"{record['article']}: {record['section']}",
                    sentences=sentences,
                    answers=answers,
                )
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvalDataError(f"{path} is not SelQA JSON: {exc}") from None
    return questions


@dataclass(frozen=True)
class NewsStory:
    """A dated piece of news text: a Wikinews article or one day's events."""

    id: str
    source: str
    title: str
    published: str
    sentences: tuple[str, ...]


def read_wikinews(path: Path) -> list[NewsStory]:
    """Wikinews CSV (url, date, title, text): the text's sentences, its dateline dropped."""
    stories = []
    with path.open(newline="", encoding="utf-8") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            try:
                text, title, published = row["text"], row["title"], row["date"]
            except KeyError as exc:
                raise EvalDataError(f"{path} is not Wikinews CSV: it lacks {exc}") from None
            sentences = tuple(
                text[s:e]
                for s, e in sentence_spans(text)
                if not _DATELINE.fullmatch(text[s:e].strip())
            )
            stories.append(
                NewsStory(f"wikinews:{path.stem}:{n}", "wikinews", title, published, sentences)
            )
    return stories


_DATELINE = re.compile(r"\w+day, \w+ \d{1,2}, \d{4}")
# [words](url "title"): the title may hold brackets, the URL no spaces.
_MD_LINK = re.compile(r'\[([^\]]*)\]\(\S+?(?: "[^"]*")?\)')
_BULLET = re.compile(r"^(\s*)\* (.*)$")


def read_current_events(folder: Path) -> list[NewsStory]:
    """Wikipedia's "Current events" pages, one Markdown file a day: each day is one story
    whose sentences are its events' summaries (links reduced to their words, the
    sources' names in brackets dropped)."""
    stories = []
    for path in sorted(folder.glob("*.md")):
        day = path.name[:10]
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            bullet = _BULLET.match(line)
            if not bullet:
                continue
            text = _MD_LINK.sub(r"\1", bullet.group(2))
            text = re.sub(r"\s*\((?:[^()]*)\)\s*$", "", re.sub(r"\*", "", text)).strip()
            text = re.sub(r"(\s*\([^()]*\))+$", "", text).strip()
            # A heading bullet names a topic ("2026 Iran war"); a summary is a sentence.
            if text.endswith(".") and len(text.split()) >= 6:
                events += [text[s:e] for s, e in sentence_spans(text)]
        if events:
            stories.append(
                NewsStory(
                    f"current_events:{day}", "current_events", f"{day} events", day, tuple(events)
                )
            )
    return stories


# What a cloze question asks for: a number (with the noun it counts), or a name of two or
# more capitalised words not at the sentence's start.
_COUNT = re.compile(
    r"\b(\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"dozens|hundreds|thousands)\s+(?:(?:more|other|people|others)\s+)?([a-z]+)",
    re.I,
)
_MONTH = re.compile(
    r"(january|february|march|april|may|june|july|august|september|october|november|december)",
    re.I,
)
_NAME = re.compile(r"(?<=[a-z,] )((?:[A-Z][\w'’.-]+ )+[A-Z][\w'’-]+)")


def news_questions(
    stories: Sequence[NewsStory], per_story: int, seed: int
) -> Iterator[tuple[TrainQuestion, TrainQuestion | None]]:
    """Questions written from news sentences, cloze style: a name or a count in a
    sentence becomes "who", "what" or "how many" ("Six people are killed in a missile
    attack in Bryansk" -> "How many people are killed in a missile attack in Bryansk?").

    Each comes as a pair: the question asked of its story (answered by its sentence; the
    sentence with the answer replaced by a stand-in is among the candidates, restating
    the question without answering it), and the same question asked of another story of
    the same source, which does not answer it (None when there is none)."""
    rng = random.Random(f"{seed}:news")
    for n, story in enumerate(stories):
        made = 0
        order = list(range(len(story.sentences)))
        rng.shuffle(order)
        for i in order:
            if made >= per_story:
                break
            cloze = _cloze(story.sentences[i])
            if cloze is None:
                continue
            question, answer, masked = cloze
            sentences = list(story.sentences)
            sentences.insert(i + 1, masked)
            asked = TrainQuestion(
                id=f"{story.id}:{i}",
                source=story.source,
                article=story.id,
                question=question,
                title=story.title,
                sentences=tuple(sentences),
                answers=frozenset({i}),
                answer_text=answer,
            )
            # Another story of the same role: a twin of a held-out story asked against a
            # training one would carry its question and sentence into training.
            role = _role(story.source, story.id, 0)
            others = [
                s
                for s in stories[max(0, n - 3) : n + 4]
                if s.id != story.id and _role(s.source, s.id, 0) == role
            ]
            other = rng.choice(others) if others else None
            unanswered = (
                TrainQuestion(
                    id=f"{story.id}:{i}:elsewhere",
                    source=story.source,
                    article=other.id,
                    question=question,
                    title=other.title,
                    sentences=(*other.sentences, masked),
                    answers=frozenset(),
                )
                if other
                else None
            )
            made += 1
            yield asked, unanswered


def _cloze(sentence: str) -> tuple[str, str, str] | None:
    """(question, answer, the sentence with a stand-in for the answer), or None."""
    text = sentence.strip().rstrip(".")
    count = _COUNT.search(text)
    if count and _MONTH.fullmatch(count.group(2)):
        count = None  # "25 October" is a date, not a count
    if count and count.start() < len(text) // 2 + 20:
        answer = count.group(1)
        before, after = text[: count.start()], text[count.end(1) :]
        question = f"{before}how many{after}?"
        masked = f"{before}several{after}."
    else:
        names = [m for m in _NAME.finditer(text) if len(m.group(1)) < 60]
        if not names:
            return None
        name = names[0]
        answer = name.group(1)
        before, after = text[: name.start()], text[name.end() :]
        question = f"{before}what{after}?"
        masked = f"{before}a place{after}." if before.endswith((" in ", " at ")) else None
        masked = masked or f"{before}one of them{after}."
    question = question[:1].upper() + question[1:]
    masked = masked[:1].upper() + masked[1:]
    if len(question.split()) < 6:
        return None
    return question, answer, masked


def _asked(question: str) -> str:
    """A search query as a question: its first letter capitalised and a question mark."""
    question = question.strip()
    return question[:1].upper() + question[1:] + ("" if question.endswith("?") else "?")


# What each training question may be used for. The reader trains on "reader"; the
# combiner that turns the reader's logit and the features into a probability is fitted
# on "combiner" (questions the reader never saw, so that its logits there are what
# unseen questions give); "dev" only chooses (answer.min_confidence, the combiner's
# regularisation). By article: no paragraph is in two roles.
ROLES = ("reader", "combiner", "dev")


def role_of(source: str, article: str, articles: Sequence[str]) -> str:
    """The role of `article` among its source's sorted `articles`: SQuAD 2.0 split A's
    17 articles by position mod 3 (0 dev, 1 combiner, 2 reader), SQuADShifts' position
    mod 4 (1 combiner), Wikinews 2020 and the last month of "Current events" combiner;
    the rest trains the reader."""
    return _role(source, article, sorted(articles).index(article))


def _role(source: str, article: str, position: int) -> str:
    """`role_of` with the article's position among its source's sorted articles."""
    if source == "squad2":
        return ("dev", "combiner", "reader")[position % 3]
    if source == "squadshifts":
        return "combiner" if position % 4 == 1 else "reader"
    if source == "wikinews":
        return "combiner" if ":wikinews_2020:" in article else "reader"
    if source == "current_events":
        return "combiner" if article >= "current_events:2026-08" else "reader"
    return "reader"


def with_role(questions: Sequence[TrainQuestion], role: str) -> list[TrainQuestion]:
    """The questions whose article has `role`."""
    by_source: dict[str, set[str]] = {}
    for q in questions:
        by_source.setdefault(q.source, set()).add(q.article)
    # Each source's articles sorted once, not once a question (QED has thousands).
    positions = {
        source: {article: i for i, article in enumerate(sorted(articles))}
        for source, articles in by_source.items()
    }
    return [
        q for q in questions if _role(q.source, q.article, positions[q.source][q.article]) == role
    ]


SQUAD2_FILE = Path("squad2_dev_split_a") / "dev-v2.0.split-a.json"


def held_out_squad_titles(folder: Path) -> set[str]:
    """The titles of the training data's SQuAD 2.0 articles that are not the reader's
    (dev and combiner): SQuAD v1.1 split A's articles of the same name are not trained
    on either, or dev and the confidence's fitting would ask about paragraphs the reader
    has read (SQuAD 2.0 split A is v1.1 split A's articles, with the same questions)."""
    questions = read_squad_json(folder / SQUAD2_FILE, "squad2")
    reader = {q.article for q in with_role(questions, "reader")}
    return {q.article.removeprefix("squad2:") for q in questions if q.article not in reader}


def without_titles(
    questions: Sequence[TrainQuestion], titles: Iterable[str]
) -> list[TrainQuestion]:
    """The questions whose article title is none of `titles` (SQuAD split B's: what
    only measures is never trained on, whatever a data folder holds)."""
    banned = {t.replace("_", " ").casefold() for t in titles}
    return [q for q in questions if q.title.split(": ")[0].casefold() not in banned]


def read_traindata(folder: Path, seed: int, news_per_story: int = 2) -> list[TrainQuestion]:
    """Every set of a training data folder laid out as shared/traindata is, news
    questions written from its news text (each with its unanswered twin)."""
    questions = read_squad_json(folder / SQUAD2_FILE, "squad2")
    questions += read_squad_json(
        folder / "squadshifts_new_wiki" / "new_wiki_v1.0.train.json", "squadshifts"
    )
    questions += read_qed(folder / "qed_nq" / "qed-train.jsonlines")
    for part in ("dev", "test"):
        questions += read_selqa(folder / "selqa" / f"selqa-ass-{part}.json")
    stories = [
        s
        for year in ("2019", "2020")
        for s in read_wikinews(folder / "wikinews" / f"wikinews_{year}.csv")
    ]
    stories_by_source = [stories, read_current_events(folder / "wikipedia_current_events_2026")]
    for group in stories_by_source:
        for asked, elsewhere in news_questions(group, news_per_story, seed):
            questions.append(asked)
            if elsewhere:
                questions.append(elsewhere)
    return questions


def sample_per_source(
    questions: Sequence[TrainQuestion], per_source: int | None, seed: int
) -> list[TrainQuestion]:
    """At most `per_source` questions of each source, drawn by `seed` (in their order)."""
    if per_source is None:
        return list(questions)
    rng = random.Random(f"{seed}:per-source")
    kept: list[TrainQuestion] = []
    for source in dict.fromkeys(q.source for q in questions):
        mine = [q for q in questions if q.source == source]
        if len(mine) > per_source:
            picked = set(rng.sample(range(len(mine)), per_source))
            mine = [q for i, q in enumerate(mine) if i in picked]
        kept += mine
    return kept
