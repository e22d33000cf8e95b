"""The lifecycle loop at scale, against kubesim running in its own process.

    python -m bench.watcher [--sizes 100,1000,5000] [--ticks 20]

For each N: N islands are started and driven to ready; one tick and probe round settle the
aftermath (reported as ``first_tick_ms``: it re-reads every row the setup changed), then
``--ticks`` steady ticks are timed at the default cadence (1 s apart; ready islands probed every
5 s). Reported per N: Kubernetes API calls per tick, steady tick duration p50/p99, the time
to probe all N server ports at once, and this process's RSS. Then 50 islands are started
together under the real scheduled loop (APScheduler, 1 s interval) and the ready latency is
measured from the moment each simulated server opened its port (kubesim's log timestamp) to the
moment its ready notice was posted.
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import listen_time, pct, start_kubesim
from bot.app.notices import Announcement, Posted
from bot.app.reconcile.engine import LifecycleEngine, LifecycleSettings
from bot.domain.lifecycle_rules import Limits
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.records import StartRequest
from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.kubernetes.reflector import PodReflector
from bot.infra.kubernetes.templates import load_templates
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.tables import Island
from bot.infra.tcp_probe import probe_ports
from bot.run.loop import LifecycleService
from tests.dbutil import migrated, sqlite_url


class TimedNotifier:
    def __init__(self) -> None:
        self.ready_at: dict[int, float] = {}

    def announce(self, a: Announcement) -> None:
        if a.kind == "ready":
            self.ready_at[a.island_id] = time.time()

    def recorded(self, posted: Posted) -> None:
        """Never called: nothing was posted."""


def start_kubesim_nodes(tmp: Path, nodes: int) -> tuple[subprocess.Popen[str], str, Path]:
    spec = ";".join(
        f"node-{i}:branch=dev,memory=256Gi,cpu=64,ip=127.0.{1 + i // 250}.{2 + i % 250}"
        for i in range(nodes)
    )
    return start_kubesim(tmp, spec, boot_delay=0.2)


def api_calls(url: str) -> int:
    with urllib.request.urlopen(f"{url}/kubesim/v1/requests", timeout=10) as response:
        return int(json.loads(response.read())["total"])


def world(tmp: Path, kubeconfig: Path, first_port: int) -> dict[str, Any]:
    db = migrated(sqlite_url(tmp))
    templates = load_templates()
    allocator = Allocator(
        db, layout=BlockLayout(PortRange(first_port, first_port + 15_299), 3), max_live_per_user=3
    )
    allocator.sync_layout()
    kube = Kube.connect(
        KubeSettings(namespace="islands", request_timeout_s=30), kubeconfig=kubeconfig
    )
    reflector = PodReflector(kube).start()  # as `islandbot reconcile` runs it
    reflector.wait_synced(60)
    kube.reflector = reflector
    notifier = TimedNotifier()
    settings = LifecycleSettings(limits=Limits(ready_timeout=timedelta(minutes=30)))
    engine = LifecycleEngine(
        db=db,
        kube=kube,
        templates=templates,
        allocator=allocator,
        notifier=notifier,
        settings=settings,
    )
    return {"db": db, "allocator": allocator, "kube": kube, "engine": engine, "notifier": notifier}


def start_islands(allocator: Allocator, n: int, tag: str) -> list[int]:
    return [
        allocator.allocate(
            StartRequest(
                owner_id=f"U{tag}{i // 3}", owner_name="bench", branch="dev", ttl=timedelta(hours=8)
            )
        ).island_id
        for i in range(n)
    ]


def drive_to_ready(w: dict[str, Any], n: int, tag: str) -> list[int]:
    """Start ``n`` islands and tick until all are ready (at most 15 minutes); their ids."""
    ids = start_islands(w["allocator"], n, tag)
    deadline = time.monotonic() + 900
    while ready_count(w["db"]) < n and time.monotonic() < deadline:
        w["engine"].tick()
    return ids


def close_world(w: dict[str, Any]) -> None:
    if w["kube"].reflector is not None:
        w["kube"].reflector.stop()
    w["kube"].close()
    w["db"].dispose()


def ready_count(db: Any) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Island).where(Island.state == "ready")
            ).scalar_one()
        )


def measure_size(n: int, ticks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, url, kubeconfig = start_kubesim_nodes(tmp, max(2, n // 100 + 1))
        try:
            w = world(tmp, kubeconfig, 40_000)
            drive_to_ready(w, n, "s")
            while w["engine"].deliver():  # steady state: the start-up notices are out
                pass
            durations, calls, probes, rounds = [], [], [], []
            w["engine"].inline_ready_probes = False  # as the service runs them: own jobs
            w["engine"].inline_exclusions = False
            began = time.monotonic()  # the first tick re-reads every row the setup changed
            w["engine"].probe_ready()
            w["engine"].tick()
            first_tick_ms = (time.monotonic() - began) * 1000
            time.sleep(1.0)
            for _ in range(ticks):
                began = time.monotonic()
                probes.append(w["engine"].probe_ready())
                rounds.append((time.monotonic() - began) * 1000)
                began_calls = api_calls(url)
                began = time.monotonic()
                w["engine"].tick()
                durations.append((time.monotonic() - began) * 1000)
                calls.append(api_calls(url) - began_calls)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
            views = w["kube"].list_island_pods()
            targets = [
                (v.host_ip, int(v.server_env["PORT_SERVER_PORT"])) for v in views if v.host_ip
            ]
            began = time.monotonic()
            results = probe_ports(targets, timeout=0.5)
            fanout_ms = (time.monotonic() - began) * 1000
            close_world(w)
            return {
                "islands": n,
                "ready": sum(results.values()),
                "api_calls_per_tick": max(calls),
                "first_tick_ms": round(first_tick_ms, 1),
                "tick_ms_p50": pct(durations, 50),
                "tick_ms_p99": pct(durations, 99),
                "ready_probes_per_round_max": max(probes),
                "ready_probe_round_ms_p99": pct(rounds, 99),
                "probe_fanout_ms": round(fanout_ms, 1),
                "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def measure_ready_latency(count: int = 50) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, _url, kubeconfig = start_kubesim_nodes(tmp, 3)
        try:
            w = world(tmp, kubeconfig, 48_000)
            service = LifecycleService(
                w["engine"], LeaderLease(w["db"]), interval=timedelta(seconds=1)
            )
            service.start()
            ids = start_islands(w["allocator"], count, "r")
            deadline = time.monotonic() + 120
            while len(w["notifier"].ready_at) < count and time.monotonic() < deadline:
                time.sleep(0.2)
            service.stop()
            latencies = []
            for view in w["kube"].list_island_pods():
                opened = listen_time(w["kube"], view.name)
                if view.island_id in w["notifier"].ready_at and opened is not None:
                    latencies.append((w["notifier"].ready_at[view.island_id] - opened) * 1000)
            close_world(w)
            return {
                "islands_started": len(ids),
                "ready": len(w["notifier"].ready_at),
                "ready_latency_ms_p50": pct(latencies, 50),
                "ready_latency_ms_p99": pct(latencies, 99),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args()
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        row = measure_size(n, args.ticks)
        print(json.dumps(row), file=sys.stderr, flush=True)
        results.append(row)
    latency = measure_ready_latency()
    print(json.dumps({"bench": "watcher", "results": results, **latency}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
