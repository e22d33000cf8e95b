"""The database gone under traffic (issue 21): the real bot (``islandbot run``, Slack HTTP mode)
reaches MariaDB through a TCP proxy of the test's own. While signed ``/island start`` and owner
``stop`` requests keep coming, the proxy resets every connection and refuses new ones for
``DOWN_S`` seconds; later it stalls the open connections for ``STALL_S`` seconds without closing
them. Afterwards (``botprocs.check_settled``): every acknowledged command carried out once, every
island announced once, no island stuck, no orphan pod, no leaked port block; what the outage
turned away was told truly ("cannot reach its database", never "busy" or "sorry") and did
nothing; the bot is alive, its log holds one warning for the outage, one line when the database
answered again, and no traceback.

Seeded (``ISLANDBOT_OUTAGE_SEED``): the commands, their channels and pauses. Bounded: about a
minute of traffic, settling within three minutes."""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.words import island_text
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
from tests.tcpproxy import proxying

SEED = int(os.environ.get("ISLANDBOT_OUTAGE_SEED", "20261203"))
CHANNELS = [f"C0OUTAGE{i}" for i in range(4)]
PORTS = "35300-35899"  # 200 blocks
BEFORE_S, DOWN_S, BETWEEN_S, STALL_S, AFTER_S = 6.0, 20.0, 8.0, 5.0, 8.0


@pytest.mark.slow
@pytest.mark.mysql
def test_a_database_outage_under_traffic_loses_nothing_and_is_told_truly(
    mysql_base_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    fake = FakeSlack(channel_rate=1.0)
    log = tmp_path / "bot.log"
    with (
        scratch_mysql_database(mysql_base_url) as db_url,
        cluster(tmp_path) as kube,
        fakeslack.serving(fake),
    ):
        url = make_url(db_url)
        with proxying((url.host or "127.0.0.1", url.port or 3306)) as proxy:
            db = migrated(db_url)  # the test's own, straight to MariaDB
            through = url.set(host=proxy.address[0], port=proxy.port)
            env = bot_env(through.render_as_string(hide_password=False), kube, fake, PORTS)
            env["ISLANDBOT_LOG_LEVEL"] = "INFO"
            bot = Bot(env, free_port(), log).start()
            assert bot.up(), log.read_text()[-3000:]
            driver = Driver(fake, [bot])
            stop = threading.Event()
            sender = threading.Thread(
                target=traffic, args=(driver, db, rng, stop, CHANNELS), daemon=True
            )
            sender.start()
            try:
                time.sleep(BEFORE_S)
                proxy.outage(DOWN_S)
                time.sleep(DOWN_S + BETWEEN_S)
                proxy.stall(STALL_S)
                time.sleep(STALL_S + AFTER_S)
            finally:
                stop.set()
                sender.join(timeout=60)
            last_fault = time.monotonic() - AFTER_S
            settling = Settling(db, since=last_fault, fake=fake)
            settled_after = settling.wait(180)
            time.sleep(3)  # anything still moving after "settled" would show now
            try:
                counts = check_settled(db, fake, kube, driver)
                told = [s.answer for s in driver.refused("start") + driver.refused("stop")]
                assert told, "the outage turned nothing away: it did not happen"
                assert all(island_text.DATABASE_DOWN in answer for answer in told), told
                assert not any(island_text.SORRY in str(r.get("text")) for r in fake.responses)
                assert bot.proc is not None and bot.proc.poll() is None, "the bot died"
                text = log.read_text()
                assert "Traceback" not in text, text[-6000:]
                assert len(re.findall(r"WARNING .*the database is unreachable", text)) == 1, text
                assert len(re.findall(r"INFO .*the database answers again after", text)) == 1
                # the lease (2 s) lapses in the cut and may in the stall, each told once
                assert len(re.findall(r"stopped leading reconciler", text)) <= 2, text
            except AssertionError:
                print(log.read_text()[-6000:])
                raise
            finally:
                assert bot.stop() == 0
        print(
            json.dumps(
                {
                    "seed": SEED,
                    "turned_away": len(told),
                    "settled_s_after_last_fault": round(settled_after, 1),
                    **settling.report(),
                    **counts,
                }
            )
        )
        assert counts["starts_acknowledged"] >= 20 and counts["stops_acknowledged"] >= 2
