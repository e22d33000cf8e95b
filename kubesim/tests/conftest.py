"""A fresh simulator per test, with fast timings, and official clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config

from kubesim import KubeSim, SimConfig, running

FAST = SimConfig(
    create_delay=0.05,
    boot_delay=0.1,
    probe_period=0.05,
    grace_period=0.5,
    node_lost_eviction=0.5,
    failing_images=frozenset({"registry.example/missing:1"}),
)


@pytest.fixture
def sim_config() -> SimConfig:
    return FAST


@pytest.fixture
def sim(sim_config: SimConfig, tmp_path: Path) -> Iterator[KubeSim]:
    with running(sim_config, kubeconfig_path=tmp_path / "kubeconfig") as simulator:
        yield simulator


@pytest.fixture
def api_client(sim: KubeSim) -> Iterator[client.ApiClient]:
    api = kube_config.new_client_from_config(str(sim.kubeconfig_path))
    yield api
    api.close()


@pytest.fixture
def v1(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def island_pod(
    name: str = "island-1",
    *,
    ports: tuple[int, int, int] = (30807, 30808, 30809),
    branch: str = "dev",
    memory: str = "1500Mi",
    image: str = "jdk8:latest",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod shaped like the original island pod (server + side container)."""
    names = ("app-common-port", "remote-msg-port", "server-port")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "island", **(labels or {})}},
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": image,
                    "command": [
                        "sh",
                        "/home/seed.sh",
                        "269",
                        "false",
                        "1269",
                        "2021-09-18 23:30:07",
                    ],
                    "env": [
                        {"name": "FAKETIME_TIMESTAMP_FILE", "value": "/tmp/server-faketime.rc"},
                        {"name": "FAKETIME_DONT_RESET", "value": "1"},
                        {"name": "FAKETIME_CACHE_DURATION", "value": "0"},
                        {"name": "LD_PRELOAD", "value": "/usr/lib64/faketime/libfaketime.so.1"},
                    ],
                    "ports": [
                        {"name": n, "containerPort": p, "hostPort": p}
                        for n, p in zip(names, ports, strict=True)
                    ],
                    "readinessProbe": {"tcpSocket": {"port": "server-port"}},
                    "resources": {"requests": {"memory": memory}, "limits": {"memory": "2048Mi"}},
                },
                {
                    "name": "side-container",
                    "image": "alpine:3.14.1",
                    "command": ["/bin/sh", "-ce", "tail -f /dev/null"],
                },
            ],
            "nodeSelector": {"branch": branch},
            "restartPolicy": "Never",
        },
    }
