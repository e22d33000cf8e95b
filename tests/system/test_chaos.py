"""Chaos (issue 15): the real bot (``islandbot run``, Slack HTTP mode) on MariaDB, kubesim in its
own process under the shipped RBAC, the fake Slack Web API; SIGKILLed at random moments (some
right after a burst of concurrent commands) and restarted, while signed ``/island start`` and
owner ``/island stop`` requests keep coming; then the last bot settles everything. Afterwards:
no acknowledged command lost or done twice (starts served from a warm pool of
dev islands the bots keep refilling, too), no island without its root message, exactly one
ready reply per island that became ready, no notice doubled, no island stuck, no orphan pod, no
leaked port block (``botprocs.check_settled``).

Seeded (``ISLANDBOT_CHAOS_SEED``; ``ISLANDBOT_CHAOS_KILLS`` kills): the kill moments, the
commands and their channels come from the seed, so a failure can be replayed (timing on a
busy machine still varies). Bounded: the kills take about a minute and a half, settling at
most three minutes."""

from __future__ import annotations

import json
import os
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
    Settling,
    bot_env,
    check_settled,
    cluster,
    free_port,
    traffic,
)

SEED = int(os.environ.get("ISLANDBOT_CHAOS_SEED", "20261201"))
KILLS = int(os.environ.get("ISLANDBOT_CHAOS_KILLS", "15"))
CHANNELS = [f"C0CHAOS{i}" for i in range(8)]  # each channel is paced at ~1 post a second
PORTS = "36300-36899"  # 200 blocks
POOL = 4  # warm dev islands: starts claim them (killed mid-claim too) while the keeper refills


def burst(driver: Driver, rng: random.Random, first_user: int, count: int) -> None:
    """``count`` starts at once (fired without waiting for them)."""
    for n in range(count):
        threading.Thread(
            target=driver.command,
            args=(f"U0BURST{first_user + n:04d}", "start dev", rng.choice(CHANNELS)),
            daemon=True,
        ).start()


@pytest.mark.slow
@pytest.mark.mysql
def test_sigkilled_bots_lose_nothing_and_announce_everything_once(
    mysql_base_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    fake = FakeSlack(channel_rate=1.0)  # Slack's pace per channel, enforced with 429s
    with (
        scratch_mysql_database(mysql_base_url) as db_url,
        cluster(tmp_path) as kube,
        fakeslack.serving(fake),
    ):
        db = migrated(db_url)
        env = {**bot_env(db_url, kube, fake, PORTS), "ISLANDBOT_POOLS": f"dev={POOL}"}
        bot = Bot(env, free_port(), tmp_path / "bot.log").start()
        assert bot.up(), (tmp_path / "bot.log").read_text()[-3000:]
        driver = Driver(fake, [bot])
        stop = threading.Event()
        sender = threading.Thread(
            target=traffic, args=(driver, db, rng, stop, CHANNELS), daemon=True
        )
        sender.start()
        bursts = 0
        try:
            for kill in range(KILLS):
                if kill % 4 == 1:  # some kills land in the middle of a burst
                    burst(driver, rng, bursts * 10, 10)
                    bursts += 1
                    time.sleep(rng.uniform(0.05, 0.6))
                else:
                    time.sleep(rng.uniform(1.5, 5.0))
                bot.kill()
                restarted = time.monotonic()
                bot.start()
                assert bot.up(), (tmp_path / "bot.log").read_text()[-3000:]
        finally:
            stop.set()
            sender.join(timeout=60)
        # traffic went on a while after the restart
        settling = Settling(db, since=restarted, fake=fake)
        settled_s = settling.wait(180)
        time.sleep(3)  # anything still moving after "settled" would show now
        try:
            counts = check_settled(db, fake, kube, driver)
        except AssertionError:
            print((tmp_path / "bot.log").read_text()[-6000:])
            raise
        finally:
            assert bot.stop() == 0
        print(
            json.dumps(
                {
                    "seed": SEED,
                    "kills": KILLS,
                    "bot_starts": bot.starts,
                    "settled_s_after_last_restart": round(settled_s, 1),
                    **settling.report(),
                    "rate_limited": fake.rate_limited,
                    **counts,
                }
            )
        )
        assert counts["starts_acknowledged"] >= 40 and counts["stops_acknowledged"] >= 3
        assert counts["claimed_from_pool"] >= 1
