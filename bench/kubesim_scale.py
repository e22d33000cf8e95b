"""kubesim at scale: N island pods on M nodes with in-process servers.

    python -m bench.kubesim_scale [--pods 5000] [--nodes 50]

kubesim runs in its own process (``python -m kubesim serve``). Creates the pods through the
official client (8 threads), waits until every pod is Ready (its three listeners open), then
times label-selected LISTs. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
from kubernetes import client
from kubernetes import config as kube_config

from bench.common import start_kubesim


def pod(i: int) -> dict:
    base = 30000 + 3 * i
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"island-{i}",
            "labels": {
                "app.kubernetes.io/managed-by": "islandbot",
                "islandbot.io/island-id": str(i),
                "branch": "dev" if i % 5 else "weekly",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "jdk8",
                    "ports": [
                        {"name": n, "containerPort": base + k, "hostPort": base + k}
                        for k, n in enumerate(("app-common-port", "remote-msg-port", "server-port"))
                    ],
                    "readinessProbe": {"tcpSocket": {"port": "server-port"}},
                    "resources": {"requests": {"memory": "100Mi"}},
                },
                {"name": "side-container", "image": "alpine"},
            ],
            "restartPolicy": "Never",
        },
    }


def rss_of(pid: int) -> int:
    """Resident memory of a process in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--lists", type=int, default=20)
    args = parser.parse_args()
    nodes = ";".join(
        f"node-{n}:branch=dev,memory=64Gi,ip=127.0.{1 + n // 250}.{2 + n % 250}"
        for n in range(args.nodes)
    )
    with tempfile.TemporaryDirectory() as tmp:
        # Its own process, as an API server is: the client's garbage collections then walk the
        # client's objects only, not the simulator's millions of small dicts.
        proc, _url, kubeconfig = start_kubesim(
            Path(tmp),
            nodes,
            boot_delay=0.0,
            extra=("--create-delay", "0", "--probe-period", "0.5"),
        )
        try:
            api = kube_config.new_client_from_config(str(kubeconfig))
            api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 8
            v1 = client.CoreV1Api(api)
            began = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda i: v1.create_namespaced_pod("islands", pod(i)), range(args.pods)
                    )
                )
            created_s = time.perf_counter() - began
            while True:
                ready = sum(
                    1
                    for p in v1.list_namespaced_pod("islands").items
                    if any(
                        c.type == "Ready" and c.status == "True" for c in p.status.conditions or []
                    )
                )
                if ready == args.pods:
                    break
                time.sleep(0.5)
            ready_s = time.perf_counter() - began
            timings: dict[str, list[float]] = {"all": [], "one_island": [], "branch": []}
            answered: dict[str, list[float]] = {key: [] for key in timings}
            selectors = {
                "all": "app.kubernetes.io/managed-by=islandbot",
                "one_island": "islandbot.io/island-id=42",
                "branch": "branch in (weekly)",
            }
            counts, sizes = {}, {}
            for _ in range(args.lists):
                for key, selector in selectors.items():
                    t = time.perf_counter()
                    # raw JSON, as the bot's adapter reads it: no model building in the timing
                    resp = v1.list_namespaced_pod(
                        "islands", label_selector=selector, _preload_content=False
                    )
                    body = resp.data  # every byte of the answer is in
                    answered[key].append((time.perf_counter() - t) * 1000)
                    data = orjson.loads(body)  # as the bot's adapter parses it
                    timings[key].append((time.perf_counter() - t) * 1000)
                    counts[key] = len(data["items"])
                    sizes[key] = len(body)
                    del data, body  # freeing 5,000 parsed pods takes time too: not the next's
            api.close()
            sim_rss_mb = rss_of(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def p(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)

    result = {
        "bench": "kubesim_scale",
        "pods": args.pods,
        "nodes": args.nodes,
        "create_s": round(created_s, 1),
        "all_ready_s": round(ready_s, 1),
        # answered: request sent to the last byte received; parsed: plus the client's orjson.loads
        "list_ms": {
            k: {
                "items": counts[k],
                "answered_p50": p(answered[k], 50),
                "answered_p99": p(answered[k], 99),
                "parsed_p50": p(v, 50),
                "parsed_p99": p(v, 99),
                "bytes": sizes[k],
            }
            for k, v in timings.items()
        },
        "kubesim_rss_mb": sim_rss_mb,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
