"""Optional LLM answers, checked against the quotes.

With `[llm]` configured (`llm.api_base` and `llm.model`: any OpenAI-compatible server,
reached through llama-index's `OpenAILike`), the model reads the question and the best
sentences found for it, numbered, and answers in a few sentences that each end with the
numbers of the quotes they rest on. Every claim is then checked against the quotes it
cites: a name, a number or most of its words that are not in them, and it is left out.
Only what survives is shown, above the verbatim quotes it cites.

Nothing here runs unless it is configured. When the extractive answer abstains, the model
is not asked (the articles don't say); when the server fails or no claim survives, the
answer is the extractive one, with a note saying so.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from bot.answering import Answerer, ScoredSentence, citation_of
from bot.answers import Answer, ModelReport
from index.errors import SettingsError
from index.settings import PROJECT_ROOT, Settings
from index.text import TermMatcher, stopwords, terms

log = logging.getLogger(__name__)

DEFAULT_PROMPT = PROJECT_ROOT / "prompts" / "answer.txt"
DEFAULT_KEY_VARIABLE = "CITEBOT_LLM_API_KEY"
# The reply the prompt asks for when the quotes don't answer the question.
NO_ANSWER_REPLY = "NOT IN THE QUOTES"
# A claim is supported when at least this share of its words (stemmed, stopwords left
# out; close variants count) are in the quotes it cites or in the question, and every
# number and name in it is.
CLAIM_WORDS_SUPPORTED = 0.75

_REFERENCES = re.compile(r"((?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])+)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALIZED = re.compile(r"\b[A-Z][\w'’-]*")


@dataclass(frozen=True)
class LlmConfig:
    """The `[llm]` table of the settings file, validated once at start-up."""

    api_base: str
    model: str
    prompt: str  # the template's text, with {question} and {quotes}
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 1
    max_quotes: int = 6

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> LlmConfig | None:
        """None when no LLM is configured. Raises SettingsError naming the bad setting."""
        env = os.environ if environ is None else environ
        table = settings.extra.get("llm", {})
        if not isinstance(table, Mapping):
            raise SettingsError("[llm] in the settings file must be a table")
        api_base = env.get("CITEBOT_LLM_URL") or _text(table, "api_base")
        model = env.get("CITEBOT_LLM_MODEL") or _text(table, "model")
        if not api_base and not model:
            return None
        if not api_base:
            raise SettingsError(
                "llm.model is set but llm.api_base (CITEBOT_LLM_URL) is not: set it to the "
                "OpenAI-compatible server's base URL, e.g. http://localhost:8000/v1"
            )
        if not model:
            raise SettingsError(
                "llm.api_base is set but llm.model (CITEBOT_LLM_MODEL) is not: set it to "
                "the name the server knows the model by"
            )
        key_variable = _text(table, "api_key_env") or DEFAULT_KEY_VARIABLE
        # A relative path is taken from the project folder, like the default.
        prompt_path = PROJECT_ROOT / Path(_text(table, "prompt") or DEFAULT_PROMPT).expanduser()
        return cls(
            api_base=api_base,
            model=model,
            prompt=_read_prompt(prompt_path),
            api_key=env.get(key_variable) or None,
            timeout=_number(table, "timeout", 60.0, minimum=1),
            max_retries=int(_number(table, "max_retries", 1, minimum=0)),
            max_quotes=int(_number(table, "max_quotes", 6, minimum=1)),
        )


def answer_function(
    answerer: Answerer, settings: Settings, use_llm: bool = True
) -> Callable[[str, date | None], Answer]:
    """`answerer.answer`, or with an LLM configured (and `use_llm`), the checked LLM answer."""
    config = LlmConfig.from_settings(settings) if use_llm else None
    if config is None:
        return answerer.answer
    return CheckedAnswerer(answerer, make_llm(config), config).answer


def make_llm(config: LlmConfig) -> Any:
    """The llama-index LLM for `config` (an OpenAI-compatible chat endpoint)."""
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError:
        raise SettingsError(
            "[llm] is configured but llama-index-llms-openai-like is not installed: "
            "pip install 'citebot[llm]'"
        ) from None
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
    """One stretch of the model's reply and the quote numbers it cites (1-based)."""

    text: str  # as written, with its references
    body: str  # without them
    cites: tuple[int, ...]


class CheckedAnswerer:
    """Answers with the LLM's reply, keeping only the claims its quotes support."""

    def __init__(self, answerer: Answerer, llm: Any, config: LlmConfig) -> None:
        self.answerer = answerer
        self.llm = llm
        self.config = config

    def answer(self, question: str, asked_on: date | None = None) -> Answer:
        answer, ranking = self.answerer.answer_and_rank(question, asked_on)
        if not answer.answered:
            return answer
        quotes = _evidence(ranking.sentences, self.config.max_quotes)
        numbered = "\n".join(f"[{n}] {' '.join(q.text.split())}" for n, q in enumerate(quotes, 1))
        # Not str.format: a template may hold other braces (a JSON example).
        prompt = self.config.prompt.replace("{question}", ranking.question)
        prompt = prompt.replace("{quotes}", numbered)
        try:
            reply = self.llm.complete(prompt).text
        except _client_errors() as exc:
            log.warning("the LLM at %s failed: %r", self.config.api_base, exc)
            failure = f"the model at {self.config.api_base} did not answer ({_kind(exc)})"
            return replace(answer, model=ModelReport(self.config.model, failure=failure))
        if reply.strip().upper().startswith(NO_ANSWER_REPLY):
            failure = "the model found no answer in the quotes"
            return replace(answer, model=ModelReport(self.config.model, failure=failure))
        kept, left_out = [], []
        for claim in split_claims(reply):
            reason = unsupported(claim, [q.text for q in quotes], ranking.question)
            if reason is None:
                kept.append(claim)
            else:
                left_out.append(f"{claim.body} ({reason})")
        if not kept:
            report = ModelReport(
                self.config.model, left_out, failure="no claim of the model's reply was supported"
            )
            return replace(answer, model=report)
        order = list(dict.fromkeys(n for claim in kept for n in claim.cites))
        summary = " ".join(_renumbered(claim.text, order) for claim in kept)
        return replace(
            answer,
            citations=[citation_of(quotes[n - 1]) for n in order],
            summary=summary,
            model=ModelReport(self.config.model, left_out),
        )


def split_claims(reply: str) -> list[Claim]:
    """The reply cut after each group of references ("... a lie [1]." / "[1][3]"); a
    stretch after the last group cites nothing."""
    pieces = _REFERENCES.split(" ".join(reply.split()))
    claims = []
    for i in range(0, len(pieces), 2):
        body = pieces[i]
        refs = pieces[i + 1] if i + 1 < len(pieces) else ""
        if i + 2 < len(pieces):  # the punctuation closing this claim starts the next piece
            tail = re.match(r"[.!?;,:]*", pieces[i + 2].lstrip()).group()
            pieces[i + 2] = pieces[i + 2].lstrip()[len(tail) :]
        else:
            tail = ""
        if not re.search(r"\w", body):
            continue
        cites = tuple(int(n) for n in re.findall(r"\d+", refs))
        text = (body.strip() + refs + tail).strip()
        claims.append(Claim(text=text, body=body.strip(" .;,:"), cites=cites))
    return claims


def unsupported(claim: Claim, quotes: list[str], question: str) -> str | None:
    """Why the quotes `claim` cites (quote n is `quotes[n - 1]`) don't support it; None
    when they do."""
    if not claim.cites:
        return "it cites no quote"
    missing = [n for n in claim.cites if not 1 <= n <= len(quotes)]
    if missing:
        return f"it cites [{missing[0]}], which was not among the quotes"
    cited = " ".join(quotes[n - 1] for n in claim.cites)
    plain = cited.replace(",", "")
    for number in _NUMBER.findall(claim.body):
        if number.replace(",", "") not in plain:
            return f"{number} is not in the quotes it cites"
    known = set(terms(cited)) | set(terms(question))
    matcher = TermMatcher(set(terms(claim.body)), known)
    for name in _names(claim.body):
        for term in terms(name):
            if not matcher.match(term, known):
                return f"{name} is not in the quotes it cites"
    words = set(terms(claim.body))
    found = sum(1 for t in words if matcher.match(t, known) > 0)
    if words and found < CLAIM_WORDS_SUPPORTED * len(words):
        return f"{len(words) - found} of its {len(words)} words are not in the quotes it cites"
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
        numbers = dict.fromkeys(new[int(n)] for n in re.findall(r"\d+", match.group()))
        return "".join(f"[{n}]" for n in numbers)

    return re.sub(
        r"\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\](?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])*", group, text
    )


def _names(text: str) -> list[str]:
    """Capitalized words, but for common words starting a sentence ("The", "It"): names,
    as far as case tells. A sentence's first word counts too: "Russian officials denied
    it" names who denied it."""
    stop = stopwords()
    return [w for w in _CAPITALIZED.findall(text) if w.lower() not in stop]


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


def _text(table: Mapping[str, Any], key: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise SettingsError(f"llm.{key} must be a string, got {value!r}")
    return value.strip()


def _number(table: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise SettingsError(f"llm.{key} must be a number of at least {minimum:g}, got {value!r}")
    return float(value)


def _read_prompt(path: Path) -> str:
    try:
        prompt = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(
            f"llm.prompt: cannot read the prompt template {path} ({exc.strerror}): "
            f"point llm.prompt at a text file, or leave it unset for {DEFAULT_PROMPT}"
        ) from None
    for field in ("{question}", "{quotes}"):
        if field not in prompt:
            raise SettingsError(f"llm.prompt: the template {path} lacks {field}: add it")
    return prompt
