"""Two replicas sharing one MariaDB (issue 15, defect 6), one of them with its clock 7 s ahead
(``tests/system/skewed.py``; why not libfaketime is said there), both taking slash commands
round robin; the
leader is frozen (SIGSTOP) for three lease lifetimes in the middle of it, so the other takes
over, then thawed, when it finds it was deposed. Afterwards every notice was delivered exactly
once and everything else ``check_settled`` asks holds. Bounded: about a minute."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.infra.storage.database import Database
from bot.infra.storage.tables import Lease
from tests import fakeslack
from tests.dbutil import migrated, scratch_mysql_database
from tests.fakeslack import FakeSlack
from tests.system.botprocs import Bot, Driver, bot_env, check_settled, cluster, free_port, settled

PORTS = "36900-37199"
SKEW_S = 7  # the lease lives 2 s: a replica this far ahead would steal it at will on its own clock
CHANNELS = [f"C0REPL{i}" for i in range(4)]


def leader(db: Database) -> tuple[str, int]:
    with db.engine.connect() as conn:
        row = conn.execute(
            select(Lease.holder, Lease.epoch).where(Lease.name == "reconciler")
        ).one()
    return str(row.holder), int(row.epoch)


@pytest.mark.slow
@pytest.mark.mysql
def test_two_replicas_with_skewed_clocks_deliver_each_notice_once(
    mysql_base_url: str, tmp_path: Path
) -> None:
    fake = FakeSlack(channel_rate=1.0)
    with (
        scratch_mysql_database(mysql_base_url) as db_url,
        cluster(tmp_path) as kube,
        fakeslack.serving(fake),
    ):
        db = migrated(db_url)
        env = bot_env(db_url, kube, fake, PORTS)
        bots = [
            Bot(env, free_port(), tmp_path / "a.log").start(),
            Bot(env, free_port(), tmp_path / "b.log", skew_s=SKEW_S).start(),
        ]
        assert all(b.up() for b in bots)
        assert f"clock is +{SKEW_S:.1f} s off" in (tmp_path / "b.log").read_text()
        driver = Driver(fake, bots)
        try:
            with ThreadPoolExecutor(4) as pool:
                for n in range(12):
                    pool.submit(driver.command, f"U0REPL{n:03d}", "start dev", CHANNELS[n % 4])
                time.sleep(4)  # notices are flowing
                holder, epoch = leader(db)
                frozen = next(b for b in bots if b.proc and f"/{b.proc.pid}/" in holder)
                frozen.pause()
                time.sleep(6)
                assert leader(db)[1] > epoch  # the other took over
                for n in range(12, 24):
                    pool.submit(driver.command, f"U0REPL{n:03d}", "start dev", CHANNELS[n % 4])
                time.sleep(2)
                frozen.resume()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not settled(db):
                time.sleep(1)
            time.sleep(3)
            counts = check_settled(db, fake, kube, driver)
        finally:
            for b in bots:
                if b.proc is not None and b.proc.poll() is None:
                    b.resume()  # a frozen process does not see SIGTERM
                b.stop()
        print(json.dumps({"skew_s": SKEW_S, "epochs": leader(db)[1], **counts}))
        assert counts["starts_acknowledged"] == 24
