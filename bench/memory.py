"""Reading every island's memory at scale, against kubesim running in its own process (its
metrics API as metrics-server serves it).

    python -m bench.memory [--sizes 100,1000] [--readings 10]

For each N: N islands are started and driven to ready; then ``--readings`` memory readings
(``MemoryCheck.run``: one LIST of the namespace's pod metrics, each island judged, one
transaction on SQLite) are timed, 1 s apart, with one memory climb under way so that the
warning path is taken too (warned at 70 %: the climb stays that high for several samples).
Reported per N: Kubernetes API calls per reading, reading duration p50/p99, readings kept,
warnings given.
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import pct
from bench.watcher import api_calls, close_world, drive_to_ready, start_kubesim_nodes, world
from bot.app.memory_check import MemoryCheck
from bot.domain.memory_watch import MemoryPolicy
from bot.infra.kubernetes.pod_metrics import PodMetrics
from bot.infra.storage.memory import MemoryStore


def climb(url: str, pod: str, seconds: float) -> None:
    request = urllib.request.Request(
        f"{url}/kubesim/v1/namespaces/islands/pods/{pod}/memory-climb",
        data=json.dumps({"seconds": seconds}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def measure_size(n: int, readings: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, url, kubeconfig = start_kubesim_nodes(tmp, max(2, n // 100 + 1))
        try:
            w = world(tmp, kubeconfig, 40_000)
            ids = drive_to_ready(w, n, "m")
            check = MemoryCheck(
                metrics_api=PodMetrics(w["kube"]),
                kube=w["kube"],
                store=MemoryStore(w["db"]),
                policy=MemoryPolicy(warn_at=0.7),  # high for ~4 s of the climb: a warning
            )
            check.run()  # the first reading inserts every island's row
            climb(url, w["kube"].snapshot().pods[ids[0]].name, seconds=readings * 0.8)
            durations, calls, warned = [], [], 0
            for _ in range(readings):
                began_calls = api_calls(url)
                began = time.monotonic()
                warned += len(check.run())
                durations.append((time.monotonic() - began) * 1000)
                calls.append(api_calls(url) - began_calls)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
            kept = len(MemoryStore(w["db"]).last(ids))
            close_world(w)
            return {
                "islands": n,
                "api_calls_per_reading": max(calls),
                "reading_ms_p50": pct(durations, 50),
                "reading_ms_p99": pct(durations, 99),
                "readings_kept": kept,
                "warnings": warned,
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--readings", type=int, default=10)
    args = parser.parse_args()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        result = measure_size(n, args.readings)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(json.dumps({"bench": "memory", "date": time.strftime("%Y-%m-%d"), "sizes": results}))


if __name__ == "__main__":
    main()
