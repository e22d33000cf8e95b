"""Warm pools: a whole team starting at once, cold and then warm, and how fast claims go.

    python -m bench.pool [--people 50] [--boot-delay 30] [--mysql URL] [--claims 2000]

1. **Cold vs warm, in one run** (the demo's wiring: SQLite, the lifecycle loop and the pool's
   keeper at their production cadence, the console chat), against kubesim in its own process
   whose island servers take ``--boot-delay`` s to answer, as a JVM server does. ``--people``
   users type ``/island start dev`` at once with no pool (size 0); their islands are stopped;
   an admin sets the pool to ``--people``; once it is full, ``--people`` others type the same
   at once. Measured per person: the command typed to the "ready" reply with host and ports
   (in its thread, or to its owner for an island in a digest).
2. **Refill**: from that burst of claims until the pool is full again (bounded by the boot
   delay, not by the bot).
3. **Claims per second** on the database (``--mysql``: a scratch MariaDB database; else
   SQLite): ``--claims`` ready warm islands, claimed by 2 processes x 16 threads at once, each
   claim the whole start transaction (quota, the claim, its notices, the day's count).

Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from bench.common import pct, start_kubesim
from bench.loadgen import LoadSpec, run_load
from bot.chat.console.chat import ConsoleChat
from bot.domain.pool import POOL_OWNER
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.pools import PoolStore
from bot.infra.storage.tables import Island
from bot.run.demo import CHANNEL, CHANNEL_NAME, Cluster, Demo
from bot.run.settings_env import load_settings
from tests.dbutil import migrated, scratch_mysql_database, sqlite_url

READY = re.compile(r"island #(\d+) is ready on")  # the "ready" reply
SHOWN = re.compile(r"island #(\d+) on \S+: ready\s+Host: \S")  # its root message, ready


def burst(demo: Demo, users: list[str]) -> list[float]:
    """``users`` type ``/island start dev`` at once; seconds from each one's command to the
    first message telling them their island is ready with its host and ports: its "ready"
    reply, or its root message (a warm island's is posted ready, naming its owner)."""
    seen = len(demo.chat.snapshot())
    typed: dict[str, float] = {}
    gate = threading.Barrier(len(users))

    def issue(user: str) -> None:
        gate.wait()
        typed[user] = time.time()
        demo.command("start dev", user=user, settle_s=120)

    threads = [threading.Thread(target=issue, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    owners = {i.id: i.owner_id for i in demo.islands.live() if i.owner_id in typed}
    told: dict[str, float] = {}
    deadline = time.monotonic() + 300
    while len(told) < len(users) and time.monotonic() < deadline:
        for e in demo.chat.snapshot()[seen:]:
            m = READY.search(e.text) or SHOWN.search(e.text)
            if e.kind in ("reply", "post", "update") and m:
                owner = owners.get(int(m.group(1)))
                if owner is not None:
                    told.setdefault(owner, e.at.timestamp())
        if len(told) < len(users):
            owners = {i.id: i.owner_id for i in demo.islands.live() if i.owner_id in typed}
            time.sleep(0.05)
    return [told[u] - typed[u] for u in users if u in told]


def pool_ready(demo: Demo) -> int:
    return sum(1 for i in demo.islands.live() if i.owner_id == POOL_OWNER and i.state == "ready")


def cold_and_warm(people: int, boot_delay: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        nodes = ";".join(
            f"dev-{i}:branch=dev,memory=512Gi,cpu=256,pods=400,ip=127.0.0.{2 + i}" for i in range(2)
        )
        proc, _url, kubeconfig = start_kubesim(tmp, nodes, boot_delay=boot_delay)
        try:
            settings = load_settings(
                {
                    "ISLANDBOT_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
                    "ISLANDBOT_POOLS": "dev=0",
                    "ISLANDBOT_READY_TIMEOUT": "10m",
                }
            )
            chat = ConsoleChat(write=None, names={CHANNEL: CHANNEL_NAME})
            demo = Demo(settings, chat, cluster=Cluster(kubeconfig)).start()
            assert demo.bot.pools is not None
            try:
                cold = burst(demo, [f"cold{n}" for n in range(people)])
                for n in range(people):
                    demo.command("stop mine", user=f"cold{n}")
                began = time.monotonic()
                demo.bot.pools.store.set_size("dev", people, by="bench")
                demo.bot.service.poke()
                while pool_ready(demo) < people and time.monotonic() - began < 600:
                    time.sleep(0.2)
                filled_s = time.monotonic() - began
                warm = burst(demo, [f"warm{n}" for n in range(people)])
                began = time.monotonic()
                while pool_ready(demo) < people and time.monotonic() - began < 600:
                    time.sleep(0.2)
                refill_s = time.monotonic() - began
            finally:
                demo.stop()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "people": people,
        "boot_delay_s": boot_delay,
        "cold_command_to_ready_s_p50": round(pct(cold, 50), 2),
        "cold_command_to_ready_s_p99": round(pct(cold, 99), 2),
        "warm_command_to_ready_ms_p50": round(pct([s * 1000 for s in warm], 50), 1),
        "warm_command_to_ready_ms_p99": round(pct([s * 1000 for s in warm], 99), 1),
        "pool_filled_s": round(filled_s, 1),
        "refill_after_burst_s": round(refill_s, 1),
        "failures": 2 * people - len(cold) - len(warm),
    }


def claims_per_second(db_url: str, claims: int) -> dict[str, object]:
    """``claims`` warm islands claimed by 2 processes x 16 threads at once."""
    size = 3
    last = 30000 + 3 * (claims + 64) - 1
    db = migrated(db_url)
    allocator = Allocator(db, layout=BlockLayout(PortRange(30000, last), size), max_live_per_user=3)
    allocator.sync_layout()
    store = PoolStore(db)
    made: list[int] = []
    while len(made) < claims:
        made += store.fill("dev", min(500, claims - len(made)), size=size, lives=timedelta(days=2))
    db.run(
        lambda conn: conn.execute(
            update(Island).where(Island.id.in_(made)).values(state="ready", host_ip="127.0.0.2")
        ),
        what="ready",
    )
    db.dispose()
    threads = 16
    spec = LoadSpec(
        url=db_url,
        first_port=30000,
        last_port=last,
        block_size=size,
        processes=2,
        threads_per_process=threads,
        allocations_per_thread=claims // (2 * threads),
        churn=False,
        max_live_per_user=3,
        pool=claims,
    )
    results, wall = run_load(spec, check=False, timeout_s=600)
    claimed = [i for r in results for i in r.claimed]
    latencies = [ms for r in results for ms in r.latencies_ms]
    return {
        "claims": len(claimed),
        "claims_doubled": len(claimed) - len(set(claimed)),
        "claims_per_s": round(len(claimed) / wall, 1) if wall else None,
        "claim_ms_p50": pct(latencies, 50),
        "claim_ms_p99": pct(latencies, 99),
        "errors": sum(len(r.errors) for r in results),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--boot-delay", type=float, default=30.0)
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--mysql", default=None, help="a MariaDB URL: claims on a scratch database")
    args = parser.parse_args()
    figures = cold_and_warm(args.people, args.boot_delay)
    print(json.dumps(figures), flush=True)
    claims: dict[str, object] = {"errors": 0}
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        db_url = (
            stack.enter_context(scratch_mysql_database(args.mysql))
            if args.mysql
            else sqlite_url(Path(d))
        )
        if args.claims:
            claims = claims_per_second(db_url, args.claims)
    summary = {
        "bench": "pool",
        **figures,
        "database": "mariadb" if args.mysql else "sqlite",
        **{f"db_{k}": v for k, v in claims.items()},
    }
    print(json.dumps(summary))
    return 0 if figures["failures"] == 0 and not claims["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
