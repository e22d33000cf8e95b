"""What the benchmarks share: percentiles, kubesim in its own process, and when a simulated
island server opened its server port."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.infra.kubernetes.client import Kube


def burst_nodes(islands: int) -> str:
    """kubesim's ``--nodes`` for a burst of ``islands`` dev islands of 1500Mi: nodes of 64Gi
    (42 islands each), three at least."""
    count = max(3, -(-islands // 40))
    return ";".join(
        f"dev-{i}:branch=dev,memory=64Gi,pods=200,ip=127.0.0.{i + 1}" for i in range(1, count + 1)
    )


def bot_env(
    db_url: str, kubeconfig: Path, ports: str, chat: dict[str, str], *, own: tuple[str, ...]
) -> dict[str, str]:
    """An ``islandbot run`` process's environment: production settings but for where things
    are, ``chat``'s settings, and none of this shell's settings under the prefixes ``own``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return {
        **clean,
        "ISLANDBOT_DATABASE_URL": db_url,
        "ISLANDBOT_KUBECONFIG": str(kubeconfig),
        "ISLANDBOT_NAMESPACE": "islands",
        "ISLANDBOT_PORT_RANGE": ports,
        "ISLANDBOT_LOG_LEVEL": "WARNING",
        **chat,
    }


def pct(values: list[float], q: int) -> float:
    """The q-th percentile, rounded to 0.1 (0 for no values)."""
    if len(values) < 2:
        return round(values[0], 1) if values else 0.0
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def start_kubesim(
    tmp: Path, nodes: str, *, boot_delay: float, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], str, Path]:
    """``python -m kubesim serve`` with ``nodes`` (its ``--nodes`` spec) and ``extra``
    options, in its own process as an API server would be; (process, URL, kubeconfig) once it
    listens."""
    kubeconfig = tmp / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubesim",
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--nodes",
            nodes,
            "--boot-delay",
            str(boot_delay),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[2]
    return proc, url, kubeconfig


def listen_time(kube: Kube, pod: str) -> float | None:
    """When the simulated server opened its server port, from its timestamped log."""
    response: Any = kube.core.read_namespaced_pod_log(
        pod, "islands", container="altraserver", timestamps=True, _preload_content=False
    )
    for line in response.data.decode().splitlines():
        stamp, _, text = line.partition(" ")
        if "(server-port)" in text:
            return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    return None
