"""How fast the bot acknowledges Slack, with the cluster answering slowly.

    python -m bench.slack_ack [--starts 50] [--clicks 50] [--kube-delay 1.0]

The whole bot runs in HTTP mode (its aiohttp server, bolt, the work pool, the lifecycle loop)
over SQLite, kubesim and the fake Slack Web API, as the test suite wires it. kubesim delays
every pod request by ``--kube-delay`` seconds. ``--starts`` signed ``/island start`` requests
(one user each) are sent at once from as many threads, then ``--clicks`` signed Extend clicks
on those islands, at once. Each ack is timed from sending the request to receiving Slack's
HTTP answer. Then the run waits until every island has its root message posted.
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import pct
from bot.domain.buttons import ButtonAction, island_button_value
from kubesim import running
from tests import fakeslack
from tests.dbutil import migrated, sqlite_url
from tests.slackworld import SIM, SlackWorld


def burst(world: SlackWorld, bodies: list[str]) -> tuple[list[float], int]:
    """Send all at once; (ack milliseconds, errors)."""
    with ThreadPoolExecutor(len(bodies)) as pool:
        results = list(pool.map(world.send, bodies))
    acks = [seconds * 1000 for status, _body, seconds in results if status == 200]
    errors = sum(1 for status, body, _ in results if status != 200 or "busy" in body)
    return acks, errors


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--kube-delay", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = migrated(sqlite_url(tmp))
        with (
            running(SIM, kubeconfig_path=tmp / "kubeconfig") as sim,
            fakeslack.serving(
                fakeslack.FakeSlack(people=fakeslack.mixed_team(max(args.starts, args.clicks)))
            ) as fake,
        ):
            world = SlackWorld(db, sim, fake, workers=8)
            try:
                sim.fail_requests("/pods", action="delay", seconds=args.kube_delay, count=1_000_000)
                world.send(fakeslack.slash_command("help"))  # warm up (first request)
                starts = [
                    fakeslack.slash_command(
                        "start dev",
                        user=f"U0B{i:04d}",
                        user_name=f"tester{i}",
                        response_url=fake.response_url(f"U0B{i:04d}"),
                    )
                    for i in range(args.starts)
                ]
                began = time.monotonic()
                start_acks, start_errors = burst(world, starts)
                islands = world.until(
                    lambda: (
                        found
                        if len(found := [i for i in world.islands() if i.chat_thread])
                        >= args.starts
                        else None
                    ),
                    timeout=120,
                )
                started_s = time.monotonic() - began
                clicks = [
                    fakeslack.button_click(
                        ButtonAction.EXTEND,
                        island_button_value(island.id, island.expires_at),
                        user=island.owner_id,
                        response_url=fake.response_url(island.owner_id),
                    )
                    for island in islands[: args.clicks]
                ]
                click_acks, click_errors = burst(world, clicks)
                world.until(lambda: len(fake.responses) >= len(clicks), timeout=120)
            finally:
                world.close()
        db.dispose()
    acks = start_acks + click_acks
    result: dict[str, Any] = {
        "bench": "slack_ack",
        "requests": len(starts) + len(clicks),
        "kube_delay_s": args.kube_delay,
        "ack_ms_p50": pct(acks, 50),
        "ack_ms_p99": pct(acks, 99),
        "ack_ms_max": round(max(acks), 1) if acks else 0.0,
        "start_ack_ms_p99": pct(start_acks, 99),
        "click_ack_ms_p99": pct(click_acks, 99),
        "all_root_messages_posted_s": round(started_s, 1),
        "errors": start_errors + click_errors,
        "islands_started": len(islands),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
