"""How fast `citebot serve` acknowledges Slack's events, from the first request on.

Runs the real `citebot serve` (HTTP, gunicorn, the real index of the demo articles with
its model and reader) on 127.0.0.1, with the Slack Web API played by the loopback fake of
tests/slack_fake.py. As soon as /healthz answers (the index and model are loaded), sends N signed
`app_mention` events at once from N threads and times each one from sending to Slack's
200 (the acknowledgement; the answers follow in the background). Nothing leaves 127.0.0.1.

    python -m benchmarks.slack_ack --events 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from slack_fake import BOT_TOKEN, SIGNING_SECRET, FakeSlack, ServerProcess, mention  # noqa: E402

SERVE = """
import sys
from bot.cli import main
main(["serve", "--port", sys.argv[1], "--host", "127.0.0.1"])
"""


def wait_until_healthy(url: str, timeout: float = 600) -> None:
    """Polls /healthz (not a Slack request) until the worker serves: the events sent next
    are the first Slack requests it gets."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    fake = FakeSlack().start()
    with tempfile.TemporaryDirectory() as home:
        env = {
            "CITEBOT_HOME": home,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "CITEBOT_SLACK_API_URL": fake.api_url,
            "HF_HUB_OFFLINE": "1",
        }
        rebuild = [sys.executable, "-c", "from bot.cli import main; main()", "index", "rebuild"]
        subprocess.run(rebuild, cwd=ROOT, env=os.environ | env, check=True, capture_output=True)
        with ServerProcess(SERVE, env=env) as server:
            wait_until_healthy(server.url.replace("/slack/events", "/healthz"))

            def one(n: int) -> float:
                started = time.perf_counter()
                status, _ = fake.send_event(
                    server.url, mention(f"who denied claim {n}?"), f"Ev{n + 1}"
                )
                assert status == 200, status
                return time.perf_counter() - started

            with ThreadPoolExecutor(args.events) as pool:
                times = sorted(pool.map(one, range(args.events)))
            fake.wait_for("chat.postMessage", count=args.events, timeout=1200)
    fake.stop()
    ms = [t * 1000 for t in times]
    print(
        json.dumps(
            {
                "events": args.events,
                "ack_p50_ms": round(ms[len(ms) // 2], 1),
                "ack_p95_ms": round(ms[int(len(ms) * 0.95) - 1], 1),
                "ack_max_ms": round(ms[-1], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
