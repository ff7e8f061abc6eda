"""How fast `citebot serve` acknowledges Slack's events: alone, and 200 arriving at once.

Runs the real `citebot serve` (HTTP: gunicorn, the front of bot/slack/front.py, the bolt
app, the real answering path on an index of the demo articles, its model loaded before
the first request) on 127.0.0.1 on a free port, with the Slack Web API played by the
loopback fake of tests/slack_fake.py. As soon as /healthz answers:

1. the baseline: `--alone` signed `app_mention` events one at a time, each sent once the
   previous answer was posted (nothing else in flight; the first is the server's first
   Slack request);
2. the load: `--events` signed events released together from as many threads.

Each ack is timed from sending to Slack's 200 (the answers follow in the background,
so under load the ack competes with the answers being worked out). Every event must be
answered once. Nothing leaves 127.0.0.1.

`--stub-answers` serves the same gunicorn, front and bolt app with a stand-in answerer
(a canned answer, no index, no model): the ack's own cost, without the answers'
competition for the CPU.

    python -m benchmarks.slack_ack --events 200 --alone 20 [--home DIR] [--stub-answers]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from slack_fake import (  # noqa: E402
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    ServerProcess,
    event_callback,
    mention,
)

from bot.evaluation.metrics import percentile  # noqa: E402
from bot.slack.messages import APOLOGY  # noqa: E402

SERVE = """
import sys
from bot.cli import main
main(["serve", "--port", sys.argv[1], "--host", "127.0.0.1"])
"""
# The same server with answers that take no work: a canned citation, no index.
SERVE_STUB = """
import sys
from pathlib import Path
from bot.answering.answers import Answer, Citation
from bot.slack import SlackConfig, create_app, serve
from bot.slack.backend import Asked, Overview
from index.settings import load_settings

QUOTE = "Syrian officials assure that this is a lie to justify the aggressive policy."

class StubBackend:
    def ask(self, question, context=None):
        citation = Citation(QUOTE, "Syria denies the claim", "syria.txt", None, None, 0.9,
                            "syria.txt", 0, len(QUOTE))
        return Asked(Answer(question, answered=True, citations=[citation]))

    def overview(self):
        return Overview(generation="stub", articles=0)

    def private_sources(self):
        return {}

settings = load_settings()
config = SlackConfig.from_settings(settings)
make_app = lambda backend: create_app(config, backend, settings.home / "slack")
serve(config, make_app, StubBackend, port=int(sys.argv[1]), host="127.0.0.1")
"""
QUESTION = "who denied the crematorium claim?"
# Slack retries an event that is not acknowledged within 3 seconds.
SLACK_ACK_DEADLINE_MS = 3000


def wait_until_healthy(url: str, timeout: float = 600) -> dict:
    """Polls /healthz (not a Slack request) until the worker serves: the events sent next
    are the first Slack requests it gets. Returns its answer (the articles indexed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


class SignedEvent:
    """One event, signed before the clock starts: the timing is the HTTP round trip."""

    def __init__(self, fake: FakeSlack, url: str, n: int) -> None:
        body = json.dumps(event_callback(mention(f"{QUESTION} ({n})"), f"Ev{n:05d}"))
        headers = {"Content-Type": "application/json"} | fake.sign(body)
        self.request = urllib.request.Request(url, body.encode(), headers, method="POST")

    def send(self) -> float:
        """Milliseconds from sending to Slack's 200."""
        started = time.perf_counter()
        with urllib.request.urlopen(self.request, timeout=30) as response:
            response.read()
            status = response.status
        ms = (time.perf_counter() - started) * 1000
        assert status == 200, status
        return ms


def alone(fake: FakeSlack, url: str, count: int) -> list[float]:
    """`count` acks, each event sent once the previous one was answered."""
    times = []
    for n in range(count):
        times.append(SignedEvent(fake, url, n).send())
        fake.wait_for("chat.postMessage", count=n + 1, timeout=120)
    return times


def together(fake: FakeSlack, url: str, count: int, first: int) -> tuple[list[float], float]:
    """`count` acks of events released at once; and the seconds until all were answered."""
    events = [SignedEvent(fake, url, first + n) for n in range(count)]
    gate = threading.Barrier(count)

    def send(event: SignedEvent) -> float:
        gate.wait()
        return event.send()

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        times = list(pool.map(send, events))
    fake.wait_for("chat.postMessage", count=first + count, timeout=1200)
    return times, time.perf_counter() - started


def summary(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "max_ms": round(max(times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200, help="events sent at once")
    parser.add_argument("--alone", type=int, default=20, help="events sent one at a time first")
    parser.add_argument(
        "--home",
        type=Path,
        help="serve a copy of this data directory's index (default: the demo articles, indexed)",
    )
    parser.add_argument(
        "--stub-answers",
        action="store_true",
        help="answer with a canned citation (no index, no model): the ack's own cost",
    )
    args = parser.parse_args()
    fake = FakeSlack().start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            home = str(Path(scratch) / "home")
            env = {
                "CITEBOT_HOME": home,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "CITEBOT_SLACK_API_URL": fake.api_url,
                "HF_HUB_OFFLINE": "1",
            }
            if args.stub_answers:
                pass
            elif args.home:  # serving writes its Slack state into the data directory
                shutil.copytree(args.home, home)
            else:
                rebuild = [
                    sys.executable,
                    "-c",
                    "from bot.cli import main; main()",
                    "index",
                    "rebuild",
                ]
                subprocess.run(
                    rebuild, cwd=ROOT, env=os.environ | env, check=True, capture_output=True
                )
            with ServerProcess(SERVE_STUB if args.stub_answers else SERVE, env=env) as server:
                health = wait_until_healthy(server.url.replace("/slack/events", "/healthz"))
                baseline = alone(fake, server.url, args.alone)
                loaded, answered_s = together(fake, server.url, args.events, args.alone)
                posted = fake.calls_to("chat.postMessage")
            apologies = [c for c in posted if APOLOGY in c.text]
    finally:
        fake.stop()
    print(
        json.dumps(
            {
                "alone": {"events": args.alone, "first_ms": round(baseline[0], 1)}
                | summary(baseline),
                "together": {
                    "events": args.events,
                    "over_3s": sum(t > SLACK_ACK_DEADLINE_MS for t in loaded),
                    "all_answered_s": round(answered_s, 1),
                }
                | summary(loaded),
                "answers": "stub" if args.stub_answers else "real",
                "articles": health["articles"],
                "answers_posted": len(posted),
                "apologies": len(apologies),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
