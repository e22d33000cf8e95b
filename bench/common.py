"""What the benchmarks share: percentiles, kubesim in its own process, and when a simulated
island server opened its server port."""

from __future__ import annotations

import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.infra.kubernetes.client import Kube


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
