"""The whole team starts at once, through Slack's limits: how long until each owner is told.

    python -m bench.slack_burst [--starts 50] [--boot-delay 0.5] [--pool 0] [--spread 0]
                                [--mysql URL]

The bot runs as in production: an ``islandbot run`` process in Slack HTTP mode (aiohttp, bolt,
the work pool, the lifecycle loop) on SQLite (or ``--mysql``), kubesim in its own process (the
bot as its service account under the shipped RBAC, servers opening their ports
``--boot-delay`` s after their container starts), and the fake Slack Web API enforcing Slack's
published limits (``tests/fakeslack.py``: posts about one a second per channel after a short
burst, chat.update and the history methods Tier 3, 429 with Retry-After). ``--starts`` users
each send a signed ``/island start dev`` in the same channel at once (retried as Slack retries
an unanswered request), or one after another over ``--spread`` seconds; with ``--pool`` a warm
dev pool of that size is full first. The run ends when every island is ready, every notice is
out and every island's root message shows it ready.

Each latency is from the island's ``ready_at``: ``owner_told_s`` until the first message
telling its owner it is ready with its ports reached Slack (in the channel or a direct
message), ``root_ready_s`` until the channel's message for the island (its own root message,
or the digest it is in) showed it ready; ``command_to_owner_told_s`` is from each person's
command instead (what a warm island's owner waits: its ``ready_at`` was before the burst).
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.common import bot_env, burst_nodes, pct
from bot.domain.pool import POOL_OWNER
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Island, OutboxMessage
from tests import fakeslack
from tests.dbutil import migrated, scratch_mysql_database, sqlite_url
from tests.system.botprocs import Bot, Driver, cluster, free_port, key_of

CHANNEL = "C0TEAM"
_OLD_ROOT = re.compile(r"island #(\d+) on \*[^*]+\*: \*(\w+)")
PORTS = "37000-37899"  # 300 blocks of 3


def bench_env(db_url: str, kubeconfig: Path, fake: fakeslack.FakeSlack) -> dict[str, str]:
    chat = {
        "ISLANDBOT_SLACK_API_URL": fake.api_url,
        "SLACK_BOT_TOKEN": fakeslack.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": fakeslack.SIGNING_SECRET,
    }
    return bot_env(db_url, kubeconfig, PORTS, chat, own=("ISLANDBOT_", "SLACK_"))


def _payload(message: dict[str, Any]) -> dict[str, Any]:
    metadata = message.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return dict((metadata or {}).get("event_payload") or {})


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def measure(
    db: Database, fake: fakeslack.FakeSlack, asked: dict[str, float]
) -> dict[str, Any] | None:
    """The figures, or None while not every island is ready, told and shown ready (warm pool
    islands nobody claimed left out). ``asked``: when each owner sent their command."""
    with db.engine.connect() as conn:
        islands = [i for i in conn.execute(select(Island)).all() if i.owner_id != POOL_OWNER]
        notices = list(
            conn.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.island_id,
                    OutboxMessage.kind,
                    OutboxMessage.sent_at,
                )
            ).all()
        )
    if any(i.ready_at is None for i in islands) or any(n.sent_at is None for n in notices):
        return None
    ready_key = {f"outbox-{n.id}": n.island_id for n in notices if n.kind == "ready"}
    with fake._lock:
        written = list(fake.written)
    told: dict[int, float] = {}
    shown: dict[int, float] = {}
    for at, method, message in written:
        key = key_of(message)
        if method == "chat.postMessage" and key in ready_key:
            told.setdefault(ready_key[key], at)
        states = _payload(message).get("islands")
        if states is None and (m := _OLD_ROOT.search(str(message.get("text")))):
            states = {m.group(1): m.group(2)}  # a root message of a version without metadata
        for island_id, state in (states or {}).items():
            if state == "ready":
                shown.setdefault((int(island_id), message["ts"]), at)  # type: ignore[arg-type]
    owner_told: list[float] = []
    root_ready: list[float] = []
    from_command: list[float] = []
    for island in islands:
        ready = _epoch(island.ready_at)
        if island.id not in told:
            return None
        at = shown.get((island.id, island.chat_thread))  # type: ignore[call-overload]
        if at is None:
            return None
        owner_told.append(max(0.0, told[island.id] - ready))
        root_ready.append(max(0.0, at - ready))
        from_command.append(told[island.id] - asked[island.owner_id])
    return {
        "owner_told": owner_told,
        "root_ready": root_ready,
        "from_command": from_command,
        "islands": len(islands),
    }


def pool_ready(db: Database) -> int:
    with db.engine.connect() as conn:
        return len(
            conn.execute(
                select(Island.id).where(Island.owner_id == POOL_OWNER, Island.state == "ready")
            ).all()
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--boot-delay", type=float, default=0.5)
    parser.add_argument("--mysql", default=None, help="a MariaDB URL: run on a scratch database")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the bot's log here")
    parser.add_argument(
        "--pool", type=int, default=0, help="a warm dev pool of this size, full before the burst"
    )
    parser.add_argument("--spread", type=float, default=0.0, help="seconds the starts spread over")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        tmp = Path(d)
        db_url = (
            stack.enter_context(scratch_mysql_database(args.mysql))
            if args.mysql
            else sqlite_url(tmp)
        )
        db = migrated(db_url)
        stack.callback(db.engine.dispose)
        # Slack's published limits; a workspace of everyone starting, half of them reading
        # Chinese (their answers: theirs, the channel: the deployment's)
        fake = fakeslack.FakeSlack(people=fakeslack.mixed_team(args.starts))
        nodes = burst_nodes(args.starts + args.pool)
        with (
            cluster(tmp, boot_delay=args.boot_delay, nodes=nodes) as kube,
            fakeslack.serving(fake),
        ):
            env = {
                **bench_env(db_url, kube.bot_kubeconfig, fake),
                "ISLANDBOT_POOLS": f"dev={args.pool}",
            }
            bot = Bot(env, free_port(), tmp / "bot.log")
            bot.start()
            if not bot.up():
                print((tmp / "bot.log").read_text()[-3000:], file=sys.stderr)
                return 1
            try:
                driver = Driver(fake, [bot])
                driver.command("U0WARMUP", "help", CHANNEL)
                warm_by = time.monotonic() + args.timeout
                while pool_ready(db) < args.pool and time.monotonic() < warm_by:
                    time.sleep(0.5)
                calls_before = len(fake.calls)
                limited_before = fake.rate_limited
                gate = threading.Barrier(args.starts)

                asked: dict[str, float] = {}  # when each person sent their command
                step = args.spread / max(1, args.starts - 1)

                def start(n: int) -> None:
                    gate.wait()
                    time.sleep(n * step)
                    asked[f"U0B{n:04d}"] = time.time()
                    driver.command(f"U0B{n:04d}", "start dev", CHANNEL)

                threads = [threading.Thread(target=start, args=(n,)) for n in range(args.starts)]
                began = time.monotonic()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                acked = len(driver.answered("start"))
                result = None
                deadline = began + args.timeout
                while time.monotonic() < deadline:
                    result = measure(db, fake, asked)
                    if result is not None and result["islands"] >= acked:
                        break
                    time.sleep(0.5)
                took = time.monotonic() - began
            finally:
                bot.stop()
        log_tail = (tmp / "bot.log").read_text()[-2000:]
        if args.keep_log is not None:
            args.keep_log.write_text((tmp / "bot.log").read_text())
    if result is None:
        print(log_tail, file=sys.stderr)
    owner = result["owner_told"] if result else []
    root = result["root_ready"] if result else []
    command = result["from_command"] if result else []
    calls = len(fake.calls) - calls_before
    summary = {
        "bench": "slack_burst",
        "starts": args.starts,
        "boot_delay_s": args.boot_delay,
        "spread_s": args.spread,
        "database": "mariadb" if args.mysql else "sqlite",
        "owner_told_s_p50": round(pct(owner, 50), 2) if owner else None,
        "owner_told_s_p99": round(pct(owner, 99), 2) if owner else None,
        "owner_told_s_max": round(max(owner), 2) if owner else None,
        "pool": args.pool,
        "command_to_owner_told_s_p50": round(pct(command, 50), 2) if command else None,
        "command_to_owner_told_s_p99": round(pct(command, 99), 2) if command else None,
        "root_ready_s_p50": round(pct(root, 50), 2) if root else None,
        "root_ready_s_p99": round(pct(root, 99), 2) if root else None,
        "rate_limited": fake.rate_limited - limited_before,
        "rate_limited_by": dict(fake.rate_limited_by),
        "web_api_calls": calls,
        "posts": sum(1 for c in fake.calls[calls_before:] if c.method == "chat.postMessage"),
        "updates": sum(1 for c in fake.calls[calls_before:] if c.method == "chat.update"),
        "all_settled_s": round(took, 1),
        "failures": (args.starts - len(owner)),
    }
    print(json.dumps(summary))
    return 0 if summary["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
