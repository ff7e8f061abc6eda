"""Optional LLM answers, checked against the quotes.

With `[llm]` configured (`llm.api_base` and `llm.model`: any OpenAI-compatible server,
reached through llama-index's `OpenAILike`), the model reads the question and the best
sentences found for it, numbered, and answers in a few sentences that each end with the
numbers of the quotes they rest on. Every claim is then checked against the quotes it
cites: a word or a number that is not in them, or a denial they don't make (or one they
make that it drops), and it is left out. Only what survives is shown, above the verbatim
quotes it cites.

Nothing here runs unless it is configured. When the extractive answer abstains, the model
is not asked (the articles don't say); when the server fails or no claim survives, the
answer is the extractive one, with a note saying so.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from bot.answering.answerer import Answerer, ScoredSentence, citation_of
from bot.answering.answers import Answer, ModelReport, QuestionAnswerer
from bot.answering.context import QuestionContext
from index.errors import SettingsError
from index.report import redacted
from index.settings import PROJECT_ROOT, LlmSettings, Settings
from index.text import TermMatcher, sentence_spans, terms

log = logging.getLogger(__name__)

DEFAULT_PROMPT = PROJECT_ROOT / "prompts" / "answer.txt"
# How a follow-up in a Slack thread is rewritten into a standalone question.
FOLLOW_UP_PROMPT = PROJECT_ROOT / "prompts" / "follow_up.txt"
# A rewrite longer than this (a reply that answers instead of rewriting) is not used.
MAX_REWRITE_CHARS = 300
# The reply the prompt asks for when the quotes don't answer the question.
NO_ANSWER_REPLY = "NOT IN THE QUOTES"
# Every word of a claim (stemmed, stopwords aside; close variants count) must be in the
# quotes it cites, but for these, which attribute what the quotes say and add nothing.
ATTRIBUTION = frozenset(
    terms("say said says told call called report reported according added stated described")
)
# A claim and its quotes must agree on whether they deny something.
NEGATIONS = frozenset({"not", "no", "never", "nor", "neither", "none", "nobody", "nothing"})
# A reference: "[1]", "[1, 3]", "[2-4]".
_REFERENCE = re.compile(r"\[\s*\d+(?:\s*[,;\-–]\s*\d+)*\s*\]")
_REFERENCES = re.compile(rf"(?:\s*{_REFERENCE.pattern})+")
_THINKING = re.compile(r"<think>.*?</think>", re.S | re.I)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.M)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True)
class LlmConfig:
    """What the checked LLM answer needs, from `[llm]` (read with every other setting by
    `load_settings`), the API key's environment variable and the prompt file."""

    api_base: str
    model: str
    prompt: str  # the template's text, with {question} and {quotes}
    api_key: str | None = None
    # The defaults are [llm]'s, in index/settings/schema.py.
    timeout: float = LlmSettings.timeout
    max_retries: int = LlmSettings.max_retries
    max_quotes: int = LlmSettings.max_quotes

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> LlmConfig | None:
        """None when no LLM is configured. Raises SettingsError naming the bad setting, or
        the missing extra; the key is read from `environ` (default os.environ)."""
        env = os.environ if environ is None else environ
        table = settings.llm
        if not table.api_base and not table.model:
            return None
        if not table.api_base:
            raise SettingsError(
                "llm.model is set but llm.api_base (CITEBOT_LLM_URL) is not: set it to the "
                "OpenAI-compatible server's base URL, e.g. http://localhost:8000/v1"
            )
        if not table.model:
            raise SettingsError(
                "llm.api_base is set but llm.model (CITEBOT_LLM_MODEL) is not: set it to "
                "the name the server knows the model by"
            )
        if importlib.util.find_spec("llama_index.llms.openai_like") is None:
            raise SettingsError(
                "[llm] is configured but llama-index-llms-openai-like is not installed: "
                "pip install 'citebot[llm]'"
            )
        return cls(
            api_base=table.api_base,
            model=table.model,
            prompt=_read_prompt(table.prompt or DEFAULT_PROMPT),
            api_key=env.get(table.api_key_env) or None,
            timeout=table.timeout,
            max_retries=table.max_retries,
            max_quotes=table.max_quotes,
        )


def question_answerer(
    answerer: Answerer, settings: Settings, use_llm: bool = True
) -> QuestionAnswerer:
    """`answerer`, or with an LLM configured (and `use_llm`), the checked LLM answer."""
    config = LlmConfig.from_settings(settings) if use_llm else None
    if config is None:
        return answerer
    return CheckedAnswerer(answerer, make_llm(config), config)


def make_llm(config: LlmConfig) -> Any:
    """The llama-index LLM for `config` (an OpenAI-compatible chat endpoint)."""
    from llama_index.llms.openai_like import OpenAILike  # installed: LlmConfig checked

    return OpenAILike(
        model=config.model,
        api_base=config.api_base,
        # Local servers take any key; the client insists on one.
        api_key=config.api_key or "unused",
        is_chat_model=True,
        temperature=0.0,
        max_tokens=400,
        timeout=config.timeout,
        max_retries=config.max_retries,
    )


@dataclass(frozen=True)
class Claim:
    """One sentence of the model's reply and the quote numbers it cites (1-based)."""

    text: str  # as written, with its references
    body: str  # without them
    cites: tuple[int, ...]


class CheckedAnswerer:
    """Answers with the LLM's reply, keeping only the claims its quotes support (a
    `QuestionAnswerer`, over the extractive `answerer`)."""

    def __init__(self, answerer: Answerer, llm: Any, config: LlmConfig) -> None:
        self.answerer = answerer
        self.llm = llm
        self.config = config

    def answer(
        self, question: str, asked_on: date | None = None, context: QuestionContext | None = None
    ) -> Answer:
        """The extractive answer, with the model's supported claims above its quotes. A
        follow-up in a thread (`context` with earlier questions) is first rewritten into
        a standalone question, which is then the answer's `question`."""
        if context is not None and context.earlier_questions:
            question = self.rewrite_follow_up(question, context.earlier_questions) or question
        answer, ranking = self.answerer.answer_and_rank(question, asked_on, context)
        if not answer.answered:
            return answer
        quotes = _evidence(ranking.sentences, self.config.max_quotes)
        numbered = "\n".join(f"[{n}] {' '.join(q.text.split())}" for n, q in enumerate(quotes, 1))
        # Not str.format: a template may hold other braces (a JSON example).
        prompt = self.config.prompt.replace("{question}", ranking.question)
        prompt = prompt.replace("{quotes}", numbered)
        try:
            reply = self.llm.complete(prompt).text or ""
        except _client_errors() as exc:
            log.warning("the LLM at %s failed: %r", self._where, exc)
            return self._quotes_alone(answer, f"the model did not answer ({_kind(exc)})")
        except Exception as exc:  # a malformed reply (no choices, an HTML page): one line
            log.warning(
                "the LLM at %s sent a reply citebot cannot read (%s)", self._where, _kind(exc)
            )
            return self._quotes_alone(answer, "the model's reply could not be read")
        if reply.strip().upper().startswith(NO_ANSWER_REPLY):
            return self._quotes_alone(answer, "the model found no answer in the quotes")
        kept, left_out = [], []
        for claim in split_claims(reply):
            reason = unsupported(claim, [q.text for q in quotes])
            if reason is None:
                kept.append(claim)
            else:
                left_out.append(f"{claim.body} ({reason})")
        if not kept:
            failure = "no claim of the model's reply was supported"
            return self._quotes_alone(answer, failure, left_out)
        order = list(dict.fromkeys(n for claim in kept for n in claim.cites))
        summary = " ".join(_renumbered(claim.text, order) for claim in kept)
        return replace(
            answer,
            citations=[citation_of(quotes[n - 1]) for n in order],
            summary=summary,
            model=ModelReport(self.config.model, left_out),
        )

    def warm_up(self) -> None:
        self.answerer.warm_up()

    @property
    def _where(self) -> str:
        """The model's address for the log, without its credentials."""
        return redacted(self.config.api_base)

    def rewrite_follow_up(self, question: str, earlier: Sequence[str]) -> str | None:
        """The follow-up `question` rewritten by the model into a standalone question,
        from the thread's `earlier` questions (prompts/follow_up.txt); None when the model
        fails, or its reply is empty, unchanged or too long to be a question."""
        prompt = _read_prompt(FOLLOW_UP_PROMPT, fields=("{earlier}", "{question}"))
        prompt = prompt.replace("{earlier}", "\n".join(f"- {q}" for q in earlier))
        prompt = prompt.replace("{question}", question)
        try:
            reply = self.llm.complete(prompt).text or ""
        except Exception as exc:  # noqa: BLE001 - the follow-up is then asked as it is
            log.warning("the LLM at %s did not rewrite a follow-up: %r", self._where, exc)
            return None
        rewritten = " ".join(_THINKING.sub("", reply).split())
        if not rewritten or len(rewritten) > MAX_REWRITE_CHARS or rewritten == question:
            return None
        return rewritten

    def _quotes_alone(
        self, answer: Answer, failure: str, left_out: list[str] | None = None
    ) -> Answer:
        report = ModelReport(self.config.model, left_out or [], failure=failure)
        return replace(answer, model=report)


def split_claims(reply: str) -> list[Claim]:
    """The reply's sentences, each with the quote numbers it cites. Reasoning between
    <think> tags and list markers are dropped; references after a full stop ("a lie. [1]")
    belong to the sentence before."""
    text = _LIST_MARKER.sub("", _THINKING.sub("", reply))
    text = " ".join(text.split())
    text = re.sub(rf"([.!?])({_REFERENCES.pattern})", r"\2\1", text)
    claims = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        cites = tuple(dict.fromkeys(n for r in _REFERENCE.findall(sentence) for n in _cited(r)))
        body = " ".join(_REFERENCE.sub(" ", sentence).split())
        body = re.sub(r"\s+([,.;:!?])", r"\1", body).strip(" .;,:!?")
        if re.search(r"\w", body):
            claims.append(Claim(text=sentence, body=body, cites=cites))
    return claims


def unsupported(claim: Claim, quotes: list[str]) -> str | None:
    """Why the quotes `claim` cites (quote n is `quotes[n - 1]`) don't support it; None
    when they do: each of its numbers and words is in them, and it denies something
    only if they do."""
    if not claim.cites:
        return "it cites no quote"
    missing = [n for n in claim.cites if not 1 <= n <= len(quotes)]
    if missing:
        return f"it cites [{missing[0]}], which was not among the quotes"
    cited = " ".join(quotes[n - 1] for n in claim.cites)
    quoted_numbers = {_plain_number(n) for n in _NUMBER.findall(cited)}
    for number in _NUMBER.findall(claim.body):
        if _plain_number(number) not in quoted_numbers:
            return f"{number} is not in the quotes it cites"
    denies, quotes_deny = _negated(claim.body), _negated(cited)
    if denies and not quotes_deny:
        return "it denies what the quotes it cites do not"
    if quotes_deny and not denies:
        return "the quotes it cites deny what it does not"
    known = set(terms(_without_possessives(cited)))
    body = _NUMBER.sub(" ", _without_possessives(claim.body))  # numbers are checked above
    words = [(w, t) for w in _WORD.findall(body) for t in terms(w)]
    matcher = TermMatcher({t for _, t in words}, known)
    for word, term in words:
        if term not in ATTRIBUTION and not matcher.match(term, known):
            return f"“{word}” is not in the quotes it cites"
    return None


def _evidence(sentences: list[ScoredSentence], limit: int) -> list[ScoredSentence]:
    """The best `limit` sentences, each text once."""
    seen: set[str] = set()
    chosen = []
    for sentence in sentences:
        text = " ".join(sentence.text.split())
        if text not in seen:
            seen.add(text)
            chosen.append(sentence)
        if len(chosen) == limit:
            break
    return chosen


def _renumbered(text: str, order: list[int]) -> str:
    """`text` with each quote number replaced by its place among the answer's citations."""
    new = {old: place for place, old in enumerate(order, 1)}

    def group(match: re.Match[str]) -> str:
        cited = [new[n] for ref in _REFERENCE.findall(match.group()) for n in _cited(ref)]
        return " " + "".join(f"[{n}]" for n in dict.fromkeys(cited))

    return _REFERENCES.sub(group, text)


def _cited(reference: str) -> list[int]:
    """The quote numbers of one reference: "[1, 3]" -> 1, 3; "[2-4]" -> 2, 3, 4."""
    numbers: list[int] = []
    for item in re.split(r"[,;]", reference.strip("[] ")):
        low, _, high = item.replace("–", "-").partition("-")
        first, last = int(low), int(high or low)
        numbers += range(first, min(last, first + 20) + 1)
    return numbers


def _plain_number(number: str) -> str:
    """ "5,000" and "5000" alike; "5.2", "10:30" as written."""
    return re.sub(r",(?=\d{3}(?!\d))", "", number)


def _negated(text: str) -> bool:
    words = {w.lower().replace("’", "'") for w in _WORD.findall(text)}
    return bool(words & NEGATIONS) or any(w.endswith("n't") or w == "cannot" for w in words)


def _without_possessives(text: str) -> str:
    return re.sub(r"['’]s\b", "", text)


def _client_errors() -> tuple[type[Exception], ...]:
    """What the OpenAI-compatible client raises when the server fails or is unreachable."""
    import openai

    return (openai.APIError,)


def _kind(exc: Exception) -> str:
    """A short, safe description of an LLM client error (no raw server text)."""
    status = getattr(exc, "status_code", None)
    if status:
        return f"HTTP {status}"
    name = type(exc).__name__
    return {"APITimeoutError": "timed out", "APIConnectionError": "could not connect"}.get(
        name, name
    )


def _read_prompt(path: Path, fields: Sequence[str] = ("{question}", "{quotes}")) -> str:
    try:
        prompt = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(
            f"llm.prompt: cannot read the prompt template {path} ({exc.strerror}): "
            f"point llm.prompt at a text file, or leave it unset for {DEFAULT_PROMPT}"
        ) from None
    for field in fields:
        if field not in prompt:
            raise SettingsError(f"llm.prompt: the template {path} lacks {field}: add it")
    return prompt
