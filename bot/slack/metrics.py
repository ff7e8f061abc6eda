"""What `citebot serve` tells Prometheus at `GET /metrics` (prometheus-client's text format).

The metrics are the process's, in prometheus-client's default registry: one gunicorn
worker serves (bot/slack/server.py), so one process holds them all. The index's gauges
are read when scraped.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, Info, generate_latest
from slack_sdk.http_retry import RetryHandler, RetryState
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse

from bot.answering.answers import Answer

# Slack retries an event not acknowledged within 3 s: the buckets resolve that side of it.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
# Answers take 30 ms to a few seconds (docs/BENCHMARKS.md), more with an LLM.
ANSWER_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

QUESTIONS = Counter(
    "citebot_questions",
    "Questions answered with quotes or abstained on ('not in the articles'), by surface",
    ["surface", "outcome"],
)
ANSWER_SECONDS = Histogram(
    "citebot_answer_seconds",
    "Time to work out an answer, by surface",
    ["surface"],
    buckets=ANSWER_BUCKETS,
)
ACK_SECONDS = Histogram(
    "citebot_ack_seconds",
    "Time from a Slack request's arrival to its acknowledgement",
    buckets=ACK_BUCKETS,
)
QUEUE_DEPTH = Gauge(
    "citebot_answer_queue_depth", "Questions being answered or waiting for an answer thread"
)
QUEUE_REJECTIONS = Counter(
    "citebot_answer_queue_rejections", "Questions told to ask again: no room in the answer queue"
)
SLACK_API_ERRORS = Counter(
    "citebot_slack_api_errors",
    "Slack Web API calls that failed (an error reply, an HTTP error or no connection)",
    ["method", "error"],
)
SLACK_RATE_LIMITED = Counter(
    "citebot_slack_api_rate_limited", "Slack Web API calls answered 429", ["method"]
)
REFRESH_RUNS = Counter("citebot_refresh_runs", "Scheduled refreshes of the library's sources")
REFRESH_FAILURES = Counter("citebot_refresh_failures", "Scheduled refreshes that failed")
INDEX_ARTICLES = Gauge("citebot_index_articles", "Articles in the index")
INDEX_PASSAGES = Gauge("citebot_index_passages", "Passages in the index")
READY = Gauge("citebot_ready", "1 once the index and the models are loaded")
READER = Info("citebot_reader", "The sentence reader: its model and precision mode")


def count_answer(surface: str, answer: Answer, seconds: float) -> None:
    """One question answered on `surface` ("thread", "assistant", "ask")."""
    QUESTIONS.labels(surface, "answered" if answer.answered else "abstained").inc()
    ANSWER_SECONDS.labels(surface).observe(seconds)


def count_refresh(succeeded: bool) -> None:
    """One scheduled refresh this process ran."""
    REFRESH_RUNS.inc()
    if not succeeded:
        REFRESH_FAILURES.inc()


def exposition(backend: Any) -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, the index's gauges read from `backend`
    now (left as they were while it loads or can't be read), and the content type."""
    try:
        overview = backend.overview()
    except Exception:  # noqa: BLE001 - loading, or the store is down: /healthz says which
        READY.set(0)
    else:
        READY.set(1)
        INDEX_ARTICLES.set(overview.articles)
        INDEX_PASSAGES.set(overview.passages)
    return generate_latest(), CONTENT_TYPE_LATEST


class SlackCallCounter(RetryHandler):
    """Counts the Web API calls that fail or are rate-limited; retries none (the handlers
    after it do). slack_sdk shows every reply to a client's retry handlers."""

    def __init__(self) -> None:
        # Asked about every attempt, however many retries the other handlers make.
        super().__init__(max_retry_count=1_000_000)

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = request.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        if response is None:
            SLACK_API_ERRORS.labels(method, type(error).__name__ if error else "no_reply").inc()
        elif response.status_code == 429:
            SLACK_RATE_LIMITED.labels(method).inc()
        elif response.status_code >= 400:
            SLACK_API_ERRORS.labels(method, f"http_{response.status_code}").inc()
        elif isinstance(response.body, dict) and response.body.get("ok") is False:
            SLACK_API_ERRORS.labels(method, str(response.body.get("error", "unknown"))).inc()
        return False
