"""kubesim at scale: N island pods on M nodes with in-process servers.

    python -m bench.kubesim_scale [--pods 5000] [--nodes 50]

Creates the pods through the official client (8 threads), waits until every pod is Ready (its
three listeners open), then times label-selected LISTs. Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client
from kubernetes import config as kube_config

from kubesim import NodeSpec, SimConfig, running


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--lists", type=int, default=20)
    args = parser.parse_args()
    nodes = tuple(
        NodeSpec(
            f"node-{n}",
            {"branch": "dev"},
            memory="64Gi",
            address=f"127.0.{1 + n // 250}.{2 + n % 250}",
        )
        for n in range(args.nodes)
    )
    config = SimConfig(nodes=nodes, create_delay=0.0, boot_delay=0.0, probe_period=0.5)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(config, kubeconfig_path=Path(tmp) / "kc") as sim,
    ):
        api = kube_config.new_client_from_config(str(sim.kubeconfig_path))
        api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 8
        v1 = client.CoreV1Api(api)
        began = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: v1.create_namespaced_pod("islands", pod(i)), range(args.pods)))
        created_s = time.perf_counter() - began
        while True:
            ready = sum(
                1
                for p in v1.list_namespaced_pod("islands").items
                if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            )
            if ready == args.pods:
                break
            time.sleep(0.5)
        ready_s = time.perf_counter() - began
        timings = {"all": [], "one_island": [], "branch": []}
        selectors = {
            "all": "app.kubernetes.io/managed-by=islandbot",
            "one_island": "islandbot.io/island-id=42",
            "branch": "branch in (weekly)",
        }
        counts = {}
        for _ in range(args.lists):
            for key, selector in selectors.items():
                t = time.perf_counter()
                # raw JSON, as the bot's adapter would read it: no model building in the timing
                resp = v1.list_namespaced_pod(
                    "islands", label_selector=selector, _preload_content=False
                )
                data = json.loads(resp.data)
                timings[key].append((time.perf_counter() - t) * 1000)
                counts[key] = len(data["items"])
        api.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def p(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)

    result = {
        "bench": "kubesim_scale",
        "pods": args.pods,
        "nodes": args.nodes,
        "create_s": round(created_s, 1),
        "all_ready_s": round(ready_s, 1),
        "list_ms": {
            k: {"items": counts[k], "p50": p(v, 50), "p99": p(v, 99)} for k, v in timings.items()
        },
        "rss_mb": round(rss_mb),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
