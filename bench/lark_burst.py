"""The whole team starts at once, in one Lark group, through Lark's limits: how long until each
owner is told, and how fast Lark's callbacks are answered.

    python -m bench.lark_burst [--starts 30] [--pool 30] [--boot-delay 0.5] [--spread 0]
                               [--mysql URL] [--timeline]

The bot runs as in production: an ``islandbot run`` process serving Lark over HTTP callbacks
(encrypted and signed, as Lark sends them), on SQLite (or a scratch MariaDB database), kubesim
in its own process under the shipped RBAC, and the fake Lark Open API (``tests/fakelark.py``)
enforcing Lark's limits: five messages a second per chat (create and reply together), five
updates a second per message, 50 a second per API for the app; 429 with
``x-ogw-ratelimit-reset``. ``--starts`` people each send ``@islandbot start dev`` in the same
group at once (an unanswered callback is sent again, as Lark does), or one after another
over ``--spread`` seconds. With ``--pool`` a warm dev pool of that size is full before the
burst: the path that is meant to be instant. ``--timeline``: Open API calls by kind and owners
told, second by second (to stderr).

Figures: ``ack_ms``, how long the bot took to answer each callback (Lark waits 3 s);
``command_to_owner_told_s``, from each person's command to the message that tells them their
island is ready with its ports (a reply in its card's thread mentioning them, or a message to
them directly), by the time the fake Lark created it. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.common import bot_env, burst_nodes, pct
from bot.domain.pool import POOL_OWNER
from bot.infra.storage.tables import Island
from tests import fakelark, fakelark_events
from tests.dbutil import migrated, scratch_mysql_database, sqlite_url
from tests.larkworld import shown
from tests.system.botprocs import Bot, cluster, free_port

GROUP = "oc_islands"
PORTS = "37000-37899"  # 300 blocks of 3


def bench_env(db_url: str, kubeconfig: Path, fake: fakelark.FakeLark) -> dict[str, str]:
    chat = {
        "ISLANDBOT_LARK_API_URL": fake.api_url,
        "LARK_APP_ID": fakelark_events.APP_ID,
        "LARK_APP_SECRET": fakelark_events.APP_SECRET,
        "LARK_VERIFICATION_TOKEN": fakelark_events.VERIFICATION_TOKEN,
        "LARK_ENCRYPT_KEY": fakelark_events.ENCRYPT_KEY,
    }
    return bot_env(db_url, kubeconfig, PORTS, chat, own=("ISLANDBOT_", "LARK_"))


def say(url: str, fake: fakelark.FakeLark, user: str, text: str) -> float:
    """``user`` mentions the bot in the group with ``text``; the seconds the bot took to
    answer (Lark sends an unanswered callback again, with the same event)."""
    event = fakelark_events.message_event(
        sender=user,
        chat_id=GROUP,
        chat_type="group",
        text="@_user_1 " + text,
        mentions=[(fakelark_events.BOT_OPEN_ID, "islandbot")],
    )
    fake.record_event(event)
    for _attempt in range(5):
        headers, body = fakelark_events.callback_request(
            event, encrypt_key=fakelark_events.ENCRYPT_KEY
        )
        began = time.monotonic()
        status, _answer = fakelark_events.post_callback(url, headers, body, timeout=3.0)
        if status == 200:
            return time.monotonic() - began
    raise RuntimeError(f"the bot never answered {user}'s {text!r}")


def told(fake: fakelark.FakeLark, owners: set[str]) -> dict[str, float]:
    """The owners told so far that their island is ready, with its ports, and when (the
    message's create_time, in seconds since the epoch): a reply in its card's thread that
    mentions them, or a message (a text or their island's card, as the notice to an owner in
    a busy channel is) in their chat with the bot."""
    found: dict[str, float] = {}
    for message in fake.messages():
        if message["sender"] != fake.app_id or " is ready on " not in shown(message):
            continue
        text = shown(message)
        for owner in owners:
            if f'<at user_id="{owner}">' in text or message["chat_id"] == fakelark.p2p_chat(owner):
                found.setdefault(owner, int(message["create_time"]) / 1000)
    return found


def pool_ready(db_url: str) -> int:
    db = migrated(db_url)
    try:
        with db.engine.connect() as conn:
            query = select(Island.id).where(Island.owner_id == POOL_OWNER, Island.state == "ready")
            return len(conn.execute(query).all())
    finally:
        db.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--pool", type=int, default=0, help="a warm dev pool, full first")
    parser.add_argument("--boot-delay", type=float, default=0.5)
    parser.add_argument("--mysql", default=None, help="a MariaDB URL: run on a scratch database")
    parser.add_argument("--spread", type=float, default=0.0, help="seconds the starts spread over")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--timeline", action="store_true", help="Open API calls and owners told, a second"
    )
    args = parser.parse_args()
    people = [f"ou_tester{n:04d}" for n in range(args.starts)]
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        tmp = Path(d)
        db_url = (
            stack.enter_context(scratch_mysql_database(args.mysql))
            if args.mysql
            else sqlite_url(tmp)
        )
        migrated(db_url).engine.dispose()
        fake = fakelark.FakeLark(people=people, chats={GROUP: set(people)})
        nodes = burst_nodes(args.starts + args.pool)
        with cluster(tmp, boot_delay=args.boot_delay, nodes=nodes) as kube, fakelark.serving(fake):
            env = {
                **bench_env(db_url, kube.bot_kubeconfig, fake),
                "ISLANDBOT_POOLS": f"dev={args.pool}",
            }
            bot = Bot(env, free_port(), tmp / "bot.log")
            bot.start()
            if not bot.up():
                print((tmp / "bot.log").read_text()[-3000:], file=sys.stderr)
                return 1
            url = bot.url + "/lark/events"
            try:
                say(url, fake, people[0], "help")  # the first request warms the process up
                warm_by = time.monotonic() + args.timeout
                while pool_ready(db_url) < args.pool and time.monotonic() < warm_by:
                    time.sleep(0.5)
                limited_before, calls_before = fake.rate_limited, len(fake.calls)
                gate = threading.Barrier(args.starts)
                acks: list[float] = []
                asked: dict[str, float] = {}  # when each person sent their command

                def start(user: str, after: float) -> None:
                    gate.wait()
                    time.sleep(after)
                    asked[user] = time.time()
                    acks.append(say(url, fake, user, "start dev"))

                step = args.spread / max(1, args.starts - 1)
                threads = [
                    threading.Thread(target=start, args=(p, n * step)) for n, p in enumerate(people)
                ]
                began = time.time()
                wall_minus_monotonic = began - time.monotonic()
                for t in threads:
                    t.start()
                deadline = time.monotonic() + args.spread + args.timeout
                first: dict[str, float] = {}  # when each owner was told
                while time.monotonic() < deadline and len(first) < len(people):
                    time.sleep(0.2)
                    first.update(told(fake, set(people) - set(first)))
                for t in threads:
                    t.join()
                took = time.time() - began
            finally:
                bot.stop()
        log_tail = (tmp / "bot.log").read_text()[-2000:]
    if len(first) < len(people):
        print(log_tail, file=sys.stderr)
    if args.timeline:
        start = min(c.at for c in fake.calls[calls_before:])
        seconds: dict[int, Counter[str]] = {}
        for c in fake.calls[calls_before:]:
            seconds.setdefault(int(c.at - start), Counter())[str(c.kind)] += 1
        start_wall = start + wall_minus_monotonic
        for at in first.values():  # owners told that second
            seconds.setdefault(int(at - start_wall), Counter())["told"] += 1
        for second, kinds in sorted(seconds.items()):
            print(f"{second:4d}s {dict(kinds)}", file=sys.stderr)
    latencies = [at - asked[owner] for owner, at in first.items()]
    summary: dict[str, Any] = {
        "bench": "lark_burst",
        "starts": args.starts,
        "pool": args.pool,
        "boot_delay_s": args.boot_delay,
        "spread_s": args.spread,
        "database": "mariadb" if args.mysql else "sqlite",
        "ack_ms_p50": round(pct([a * 1000 for a in acks], 50)),
        "ack_ms_p99": round(pct([a * 1000 for a in acks], 99)),
        "command_to_owner_told_s_p50": round(pct(latencies, 50), 2) if latencies else None,
        "command_to_owner_told_s_p99": round(pct(latencies, 99), 2) if latencies else None,
        "rate_limited": fake.rate_limited - limited_before,
        "open_api_calls": len(fake.calls) - calls_before,
        "all_told_s": round(took, 1),
        "failures": len(people) - len(first),
    }
    print(json.dumps(summary))
    return 0 if summary["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
