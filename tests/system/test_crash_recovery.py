"""SIGKILL the bot at random points while islands start, again and again; then let one run end
cleanly. Afterwards no id, port or pod has leaked, no island is stuck, and every notice was
delivered exactly once. Bounded: 8 kills, a few seconds each."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.records import StartRequest
from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.tables import Island, PortBlock
from kubesim import SimConfig, running
from tests.dbutil import migrated

ISLANDBOT = str(Path(sys.executable).parent / "islandbot")
SIM = SimConfig(create_delay=0.1, boot_delay=0.3, probe_period=0.05, grace_period=0.5)
PORTS = "36100-36189"


def bot_env(db_url: str, kubeconfig: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ISLANDBOT_", "SLACK_"))}
    return {
        **clean,
        "ISLANDBOT_DATABASE_URL": db_url,
        "ISLANDBOT_KUBECONFIG": str(kubeconfig),
        "ISLANDBOT_PORT_RANGE": PORTS,
        "ISLANDBOT_RECONCILE_INTERVAL": "1s",
        "ISLANDBOT_READY_PROBE_INTERVAL": "1s",
        "ISLANDBOT_LEASE_TTL": "2s",
        "ISLANDBOT_MAX_ISLANDS_PER_USER": "10",
        "ISLANDBOT_LOG_LEVEL": "WARNING",
    }


@pytest.mark.slow
def test_killed_bots_leak_nothing_and_announce_once(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261128)
    notices = tmp_path / "notices.jsonl"
    with running(SIM, kubeconfig_path=tmp_path / "kubeconfig") as sim:
        env = bot_env(db_url, sim.kubeconfig_path)
        db = migrated(db_url)
        allocator = Allocator(
            db, layout=BlockLayout(PortRange.parse(PORTS), 3), max_live_per_user=10
        )
        allocator.sync_layout()
        started: list[int] = []

        def start_one() -> None:
            started.append(
                allocator.allocate(
                    StartRequest(
                        owner_id="U0ALICE", owner_name="alice", branch="dev", ttl=timedelta(hours=1)
                    )
                ).island_id
            )

        for _ in range(3):
            start_one()
        for round_ in range(8):
            proc = subprocess.Popen(
                [ISLANDBOT, "reconcile", "--notices-file", str(notices)],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.5, 3.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if round_ % 3 == 1:
                start_one()

        final = subprocess.Popen(
            [ISLANDBOT, "reconcile", "--notices-file", str(notices)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                with db.engine.connect() as conn:
                    states = dict(conn.execute(select(Island.id, Island.state)).all())
                if all(states.get(i) == "ready" for i in started):
                    break
                time.sleep(0.3)
            time.sleep(2.5)  # a few more ticks: nothing new may be announced
        finally:
            final.send_signal(signal.SIGTERM)
            _, err = final.communicate(timeout=20)
        assert final.returncode == 0, err
        assert states == {i: "ready" for i in started}

        with db.engine.connect() as conn:
            held = dict(
                conn.execute(
                    select(PortBlock.island_id, PortBlock.first_port).where(
                        PortBlock.island_id.is_not(None)
                    )
                ).all()
            )
            rows = {r.id: r.first_port for r in conn.execute(select(Island.id, Island.first_port))}
        assert held == rows and len(set(held.values())) == len(started)

        kube = Kube.connect(KubeSettings(namespace="islands"), kubeconfig=sim.kubeconfig_path)
        pods = kube.list_island_pods()
        kube.close()
        assert sorted(p.island_id for p in pods) == sorted(started)  # no orphans, none missing

        lines = [json.loads(line) for line in notices.read_text().splitlines()]
        per_island = Counter((n["island_id"], n["kind"]) for n in lines)
        for island_id in started:
            assert per_island[(island_id, "ready")] == 1, per_island
            assert per_island[(island_id, "scheduled")] == 1, per_island
        assert max(per_island.values()) == 1
        db.dispose()


def test_a_bot_that_cannot_reach_its_cluster_says_so(tmp_path: Path) -> None:
    env = bot_env(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "missing-kubeconfig")
    env.pop("ISLANDBOT_KUBECONFIG")
    env["KUBECONFIG"] = str(tmp_path / "missing-kubeconfig")
    result = subprocess.run(
        [ISLANDBOT, "reconcile"],
        env=env,
        cwd=tmp_path,
        timeout=60,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "no usable Kubernetes configuration" in result.stderr
