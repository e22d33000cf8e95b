"""End to end through the console chat: the demo's wiring (``bot.demo.Demo``: storage,
Kubernetes adapter, lifecycle loop on its real scheduler, chat front, HTTP server) against
kubesim over HTTP, on SQLite and MariaDB. What a user types goes in as console lines; what the
bot says is read from the console chat's transcript; the islands are checked over TCP.

The scenarios that read the same in every chat (starts, refusals, buttons, clock requests) run
through the console and Lark alike in ``test_chat_scenarios.py``; here are those that need the
console itself (its home page, the demo process) or kubesim's faults."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.chat.console.chat import ChatEvent
from bot.domain.records import IslandRecord
from bot.domain.states import IslandState
from bot.infra.storage.tables import Island
from bot.run.demo import Demo
from kubesim import running
from tests.demoworld import FAST, PORTS, demo_on, start


def texts(demo: Demo, kind: str | None = None, user: str | None = None) -> list[str]:
    return [
        e.text
        for e in demo.chat.snapshot()
        if (kind is None or e.kind == kind) and (user is None or e.user == user)
    ]


def wait_for(demo: Demo, check: Callable[[list[ChatEvent]], bool], timeout: float = 30) -> None:
    if not demo.chat.wait_for(check, timeout):
        transcript = "\n".join(f"{e.kind} {e.user or ''}: {e.text}" for e in demo.chat.snapshot())
        pytest.fail(f"not seen within {timeout} s; the transcript:\n{transcript}")


def said(demo: Demo, pattern: str, *, count: int = 1, timeout: float = 30) -> None:
    regex = re.compile(pattern)
    wait_for(demo, lambda events: sum(bool(regex.search(e.text)) for e in events) >= count, timeout)


def settle(demo: Demo, timeout: float = 60) -> None:
    assert demo.settle(timeout), f"not settled: {demo.unsettled()}"


def island(demo: Demo, island_id: int) -> IslandRecord:
    return demo.islands.get(island_id)


def ready_replies(demo: Demo, island_id: int) -> list[str]:
    """The island's ready notice: a reply in its thread, or (in a digest) its owner's message."""
    return [
        e.text
        for e in demo.chat.snapshot()
        if e.kind in ("reply", "post") and f"island #{island_id} is ready" in e.text
    ]


def test_capacity_exhausted_tells_the_reason_and_frees_the_ports(
    db_url: str, tmp_path: Path
) -> None:
    with demo_on(db_url, tmp_path, unschedulable_timeout=timedelta(seconds=3)) as (demo, _sim):
        first = start(demo, "alice", "weekly")  # the weekly node has 2Gi: one island fits
        deadline = time.monotonic() + 30  # placed before bob's is asked for (creates of one
        while island(demo, first).state not in ("scheduled", "running", "ready"):  # tick race)
            assert time.monotonic() < deadline, island(demo, first).state
            time.sleep(0.05)
        second = start(demo, "bob", "weekly")
        said(demo, rf"Island #{second} is waiting for room: no weekly node has 1500Mi free")
        said(demo, rf"island #{second} failed: could not be scheduled for \d+s: no weekly node")
        settle(demo)
        assert island(demo, first).state == "ready"
        failed = island(demo, second)
        assert failed.state == "stopped"  # no pod to keep: released at once
        assert "no weekly node has 1500Mi free" in str(failed.failure_reason)
        assert demo.bot.allocator.usage().held == 1  # its block went back to the pool
        third = start(demo, "carol")
        settle(demo)
        assert island(demo, third).ports == failed.ports  # the freed block is handed out again


def test_oom_after_ready_is_told_once_and_the_logs_stay(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo, "alice")
        said(demo, rf"island #{n} is ready")
        sim.kill_container("islands", island(demo, n).pod_name, "altraserver")
        said(demo, rf"island #{n} failed: island #{n} blew up: OOMKilled at the 2048Mi limit")
        settle(demo)
        time.sleep(1.5)  # more ticks and probe rounds: still told once
        assert len([t for t in texts(demo, "reply") if "blew up" in t]) == 1
        demo.handle(f"/island logs {n}")  # the dead server's log (restartPolicy Never)
        logs = texts(demo, "ephemeral")[-1]
        assert "server: listening on" in logs
        assert island(demo, n).state == "failed"  # its pod is kept for the logs


def test_eviction_and_a_pod_deleted_behind_the_bots_back(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        one, two = start(demo, "alice"), start(demo, "alice")
        said(demo, r"is ready on", count=2)
        sim.evict("islands", island(demo, one).pod_name, "The node was low on resource: memory.")
        sim.delete_pod("islands", island(demo, two).pod_name)
        said(demo, rf"island #{one} failed: evicted by Kubernetes: The node was low on resource")
        said(demo, rf"island #{two} failed: its pod (was deleted outside islandbot|is being del)")
        settle(demo)
        assert island(demo, one).state == "failed"  # the evicted pod is kept for its logs
        assert island(demo, two).state in {"failed", "stopped"}  # nothing left to keep
        assert island(demo, two).failure_reason


def test_expiry_warns_extends_and_expires(db_url: str, tmp_path: Path) -> None:
    with demo_on(
        db_url,
        tmp_path,
        expiry_warning=timedelta(seconds=3),
        extend_step=timedelta(seconds=4),
    ) as (demo, _sim):
        n = start(demo, "alice")
        said(demo, rf"island #{n} is ready")
        soon = datetime.now(UTC) + timedelta(seconds=5)
        with demo.bot.db.engine.begin() as conn:  # as if 8 hours had passed
            conn.execute(update(Island).where(Island.id == n).values(expires_at=soon))
        demo.bot.service.poke()
        said(demo, rf"island #{n} expires at")
        root = next(e for e in demo.chat.snapshot() if e.kind == "post")

        def root_updated_after_the_warning(events: list[ChatEvent]) -> bool:
            warned = next(i for i, e in enumerate(events) if "expires at" in e.text)
            return any(e.kind == "update" and e.message == root.message for e in events[warned:])

        wait_for(demo, root_updated_after_the_warning)  # its Extend button saw the new expiry
        extend = next(n for n, label in root.buttons if label.startswith("Extend"))
        demo.press(str(extend))
        assert f"Island #{n} now expires at" in texts(demo, "ephemeral")[-1]
        assert island(demo, n).expires_at > soon
        said(demo, rf"Island #{n} has expired and is being stopped", timeout=30)
        settle(demo)
        assert island(demo, n).state == "stopped"
        assert len([t for t in texts(demo, "reply") if "has expired" in t]) == 1


def test_a_burst_of_30_starts_by_10_users(db_url: str, tmp_path: Path) -> None:
    """2 dev nodes of 16Gi hold 20 islands of 1500Mi: the other 10 wait, then fail with
    the reason; no port is handed out twice, and every island ends ready or failed."""
    with demo_on(db_url, tmp_path, unschedulable_timeout=timedelta(seconds=4)) as (demo, _sim):
        users = [f"user{n}" for n in range(10)]
        threads = [
            threading.Thread(target=demo.command, args=("start dev",), kwargs={"user": u})
            for u in users
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        settle(demo, 120)
        records = demo.islands.live() + [
            island(demo, n) for n in demo.islands.in_states([IslandState.STOPPED])
        ]
        assert len(records) == 30
        # the console has no channel limit: nothing waits in its queue, so no digest (in Slack
        # the same burst shares digests: tests/chat/slack/test_burst.py), a thread each
        assert sum(r.chat_digest for r in records) == 0
        assert len({r.chat_thread for r in records}) == 30
        ports = [p for r in records for p in r.ports]
        assert len(ports) == len(set(ports)) == 90
        ready = [r for r in records if r.state == "ready"]
        refused = [r for r in records if r.state == "stopped"]
        assert (len(ready), len(refused)) == (20, 10)
        replies = texts(demo, "reply") + texts(demo, "post")
        for r in refused:
            assert "no dev node has 1500Mi free" in str(r.failure_reason)
            told = [t for t in replies if f"island #{r.id} failed: could not be scheduled" in t]
            assert len(told) == 1
        for r in ready:
            assert len(ready_replies(demo, r.id)) == 1
        assert sorted({r.owner_id for r in records}) == users


SLOW_BOOT = replace(FAST, boot_delay=3.0)  # time to kill the bot between scheduled and ready


def _demo_process(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ISLANDBOT_", "SLACK_"))}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "islandbot"), "demo", "--json"],
        env={**clean, **env},
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], seen: list[dict[str, Any]], pattern: str) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(json.loads(line))
        if re.search(pattern, seen[-1].get("text", "")):
            return
    pytest.fail(f"{pattern!r} not seen; saw {seen}")


def test_bot_killed_mid_start_and_restarted_still_says_ready_once(
    db_url: str, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    env = {
        "ISLANDBOT_DATABASE_URL": db_url,
        "ISLANDBOT_KUBECONFIG": str(kubeconfig),
        "ISLANDBOT_PORT_RANGE": PORTS,
        "ISLANDBOT_LEASE_TTL": "2s",
    }
    with running(SLOW_BOOT, kubeconfig_path=kubeconfig):
        first = _demo_process(env, tmp_path)
        assert first.stdin is not None
        events: list[dict[str, Any]] = []
        try:
            first.stdin.write("/island start dev\n")
            first.stdin.flush()
            _read_until(first, events, r"is scheduled on node")
        finally:
            first.kill()  # SIGKILL: no goodbye, mid-start
            first.wait(10)
        (island_id,) = {int(m) for e in events for m in re.findall(r"island #(\d+) on", e["text"])}
        assert not [e for e in events if "is ready" in e["text"]]  # killed before ready

        second = _demo_process(env, tmp_path)
        out, _ = second.communicate("wait 60\n/island list\n", timeout=120)
        assert second.returncode == 0
        events += [json.loads(line) for line in out.splitlines()]
    ready = [
        e for e in events if e["kind"] == "reply" and f"island #{island_id} is ready" in e["text"]
    ]
    assert len(ready) == 1
    listing = [e["text"] for e in events if "Live islands" in e["text"]][-1]
    assert re.search(rf"\b{island_id}\s+dev\s+alice\s+ready\b", listing)


def test_the_home_page_lists_islands_and_its_buttons_work(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, _sim):
        mine, theirs = start(demo, "alice"), start(demo, "bob")
        said(demo, r"is ready on", count=2)
        demo.handle("@alice home")
        home = [e for e in demo.chat.snapshot() if e.kind == "home"][-1]
        assert home.user == "alice"
        assert f"#{mine} dev (alice): ready" in home.text
        assert f"#{theirs} dev (bob): ready" in home.text
        assert [label for _n, label in home.buttons] == ["Stop", "Extend 4h", "Logs"]  # mine
        before = island(demo, mine).expires_at
        demo.press(str(home.buttons[1][0]), user="alice")
        assert island(demo, mine).expires_at > before
        homes = [e for e in demo.chat.snapshot() if e.kind == "home"]
        assert len(homes) == 2  # pressed on the home page: the page is published again
