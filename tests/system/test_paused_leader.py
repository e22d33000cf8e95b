"""A leader paused past its lease (issue 21): two ``islandbot run`` replicas on MariaDB, kubesim
in its own process keeping an audit log of every change and who made it (each bot's user agent
names its process). While islands start and stop, the leader is frozen (SIGSTOP) in the middle
of a burst of starts for three lease lifetimes, so the other takes over; then it is thawed
(SIGCONT). It believes it leads until its next renewal, and its jobs fire at once on waking:
whatever they decided before the pause, it creates, deletes and sweeps no pod from then on
(every decision a tick writes is fenced by the lease, and pods are deleted only after the lease
was found held). Afterwards everything ``check_settled`` asks holds. Bounded: about a minute."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest

from tests import fakeslack
from tests.dbutil import migrated, scratch_mysql_database
from tests.fakeslack import FakeSlack
from tests.system.botprocs import (
    Bot,
    Driver,
    bot_env,
    check_settled,
    cluster,
    free_port,
    settled,
    traffic,
)
from tests.system.test_replicas import leader

SEED = 20261203
PORTS = "34300-34899"
CHANNELS = [f"C0PAUSE{i}" for i in range(4)]
LEASE_TTL_S = 2.0  # botprocs' bots run with ISLANDBOT_LEASE_TTL=2s


def changes_by(audit: list[dict[str, object]], pid: int, since: float) -> list[str]:
    """Pod creates and deletes the process ``pid`` made at or after ``since`` (unix time)."""
    return [
        f"{e['verb']} {e['path']} -> {e['code']}"
        for e in audit
        if f"/{pid})" in str(e["userAgent"])
        and "/pods" in str(e["path"])
        and float(str(e["time"])) >= since
    ]


@pytest.mark.slow
@pytest.mark.mysql
def test_a_leader_paused_past_its_lease_changes_nothing_when_it_wakes(
    mysql_base_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    fake = FakeSlack(channel_rate=1.0)
    with (
        scratch_mysql_database(mysql_base_url) as db_url,
        cluster(tmp_path) as kube,
        fakeslack.serving(fake),
    ):
        db = migrated(db_url)
        env = bot_env(db_url, kube, fake, PORTS)
        bots = [Bot(env, free_port(), tmp_path / f"{n}.log").start() for n in "ab"]
        assert all(b.up() for b in bots)
        driver = Driver(fake, bots)
        stop = threading.Event()
        sender = threading.Thread(
            target=traffic, args=(driver, db, rng, stop, CHANNELS), daemon=True
        )
        sender.start()
        try:
            time.sleep(5)  # islands starting, ready, stopping
            holder, epoch = leader(db)
            frozen = next(b for b in bots if b.proc and f"/{b.proc.pid}/" in holder)
            assert frozen.proc is not None
            for n in range(8):  # a burst: creates the leader decides, some cut short by SIGSTOP
                threading.Thread(
                    target=driver.command,
                    args=(f"U0PAUSE{n:03d}", "start dev", CHANNELS[n % 4]),
                    daemon=True,
                ).start()
            time.sleep(rng.uniform(0.3, 0.9))
            frozen.pause()
            time.sleep(3 * LEASE_TTL_S)
            assert leader(db)[1] > epoch, "the other replica did not take over"
            time.sleep(2)  # the new leader acts on what the old one left
            woke = time.time()
            frozen.resume()
            time.sleep(6)  # its jobs fire, its tick and deliveries run into the fence
        finally:
            stop.set()
            sender.join(timeout=60)
        try:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and not settled(db):
                time.sleep(1)
            time.sleep(3)
            counts = check_settled(db, fake, kube, driver)
            audit = kube.audit()
            made = changes_by(audit, frozen.proc.pid, since=woke)
            assert made == [], f"the paused leader changed the cluster after waking: {made}"
            before = changes_by(audit, frozen.proc.pid, since=0)
            assert before, "the paused replica never led: the test proved nothing"
            log = (tmp_path / f"{'ab'[bots.index(frozen)]}.log").read_text()
            assert "stopped leading reconciler" in log
            assert "Traceback" not in log, log[-4000:]
        finally:
            for b in bots:
                if b.proc is not None and b.proc.poll() is None:
                    b.resume()
                b.stop()
        print(
            json.dumps(
                {
                    "seed": SEED,
                    "epochs": leader(db)[1],
                    "changes_by_paused_before": len(before),
                    **counts,
                }
            )
        )
        assert counts["starts_acknowledged"] >= 15
