"""The whole pipeline, command to ready reply, through the console chat adapter.

    python -m bench.e2e [--islands 50] [--rounds 3]

The demo's wiring (``bot.demo.Demo``: SQLite, the lifecycle loop at its default 1 s cadence,
the chat front) against kubesim in its own process with a boot delay of 0. Each round, 50
``/island start dev`` commands (17 users, at most 3 each) are issued together from 50 threads;
then every island is stopped and the next round starts. Measured per island:

- command to ready: from the moment the command was typed to the ready reply in its thread (or,
  for an island in a digest, the ready message to its owner);
- bot overhead: the ready reply's time minus the moment the simulated server opened its server
  port (kubesim's timestamped log), i.e. what the bot adds after the island could be used.

Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench.common import listen_time, pct, start_kubesim
from bot.chat.console.chat import ConsoleChat
from bot.run.demo import CHANNEL, CHANNEL_NAME, Cluster, Demo
from bot.run.settings_env import load_settings

READY = re.compile(r"island #(\d+) is ready")


def one_round(demo: Demo, count: int, tag: str) -> tuple[list[float], list[float], int]:
    users = [f"{tag}u{n // 3}" for n in range(count)]
    seen_before = len(demo.chat.snapshot())

    def issue(n: int) -> None:
        demo.command("start dev", user=users[n], settle_s=60)

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(count)]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    demo.settle(180)
    events = demo.chat.snapshot()[seen_before:]
    ready_at: dict[int, float] = {}
    for e in events:
        # the ready reply in the island's thread, or (an island in a digest) its owner's message
        if e.kind in ("reply", "post") and (m := READY.search(e.text)):
            ready_at.setdefault(int(m.group(1)), e.at.timestamp())
    records = [i for i in demo.islands.live() if i.owner_id.startswith(tag)]
    to_ready, overhead = [], []
    for record in records:
        if record.id not in ready_at:
            continue
        to_ready.append((ready_at[record.id] - began) * 1000)
        opened = listen_time(demo.bot.kube, record.pod_name)
        if opened is not None:
            overhead.append((ready_at[record.id] - opened) * 1000)
    failures = count - len(ready_at)
    for user in sorted(set(users)):
        demo.command("stop mine", user=user)
    demo.settle(120)
    return to_ready, overhead, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--islands", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        nodes = ";".join(
            f"dev-{i}:branch=dev,memory=256Gi,cpu=64,ip=127.0.0.{2 + i}" for i in range(2)
        )
        proc, _url, kubeconfig = start_kubesim(tmp, nodes, boot_delay=0)
        try:
            settings = replace(
                load_settings({"ISLANDBOT_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}"})
            )
            chat = ConsoleChat(write=None, names={CHANNEL: CHANNEL_NAME})
            demo = Demo(settings, chat, cluster=Cluster(kubeconfig)).start()
            to_ready: list[float] = []
            overhead: list[float] = []
            failures = 0
            try:
                for r in range(args.rounds):
                    a, b, f = one_round(demo, args.islands, f"r{r}")
                    print(
                        json.dumps({"round": r, "ready": len(a), "to_ready_ms_p50": pct(a, 50)}),
                        flush=True,
                    )
                    to_ready += a
                    overhead += b
                    failures += f
            finally:
                demo.stop()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(
        json.dumps(
            {
                "bench": "e2e",
                "islands": args.islands,
                "rounds": args.rounds,
                "command_to_ready_ms_p50": pct(to_ready, 50),
                "command_to_ready_ms_p99": pct(to_ready, 99),
                "bot_overhead_ms_p50": pct(overhead, 50),
                "bot_overhead_ms_p99": pct(overhead, 99),
                "failures": failures,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
