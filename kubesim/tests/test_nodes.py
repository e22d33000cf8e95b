"""Custom node specs: addresses, labels and memory accounting."""

from __future__ import annotations

from dataclasses import replace

import pytest
from kubernetes import client

from kubesim import KubeSim, NodeSpec, SimConfig, parse_nodes
from kubesim.tests.conftest import FAST, island_pod
from kubesim.tests.util import condition, wait_for, wait_ready


def test_parse_nodes() -> None:
    nodes = parse_nodes("dev-1:branch=dev,memory=8Gi,ip=127.0.0.9;weekly-1:branch=weekly")
    assert nodes[0] == NodeSpec("dev-1", {"branch": "dev"}, "8", "8Gi", 110, "127.0.0.9")
    assert nodes[1].address == "127.0.0.3" and nodes[1].labels == {"branch": "weekly"}
    with pytest.raises(ValueError, match="quantities"):
        parse_nodes("x:memory=lots")
    with pytest.raises(ValueError, match="key=value"):
        parse_nodes("x:branch")


@pytest.fixture
def sim_config() -> SimConfig:
    return replace(
        FAST,
        nodes=(
            NodeSpec("small", {"branch": "dev"}, memory="2Gi", address="127.0.0.5"),
            NodeSpec("other", {"branch": "weekly"}, address="127.0.0.6"),
        ),
    )


def test_node_specs_and_memory_accounting(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("a", ports=(33000, 33001, 33002)))
    v1.create_namespaced_pod("default", island_pod("b", ports=(33003, 33004, 33005)))
    a = wait_ready(v1, "a")
    assert a.status.host_ip == "127.0.0.5"
    b = wait_for(
        lambda: (p := v1.read_namespaced_pod("b", "default")) and condition(p, "PodScheduled") and p
    )
    assert condition(b, "PodScheduled").message == (
        "0/2 nodes are available: 1 Insufficient memory, "
        "1 node(s) didn't match Pod's node affinity/selector."
    )
    v1.delete_namespaced_pod("a", "default")
    wait_ready(v1, "b")
