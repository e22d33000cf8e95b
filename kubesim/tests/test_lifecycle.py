"""Scheduler and kubelet simulation, and the faults a test can inject, through the client."""

from __future__ import annotations

import time

from kubernetes import client

from kubesim import KubeSim
from kubesim.tests.conftest import island_pod
from kubesim.tests.util import (
    can_connect,
    condition,
    container,
    is_ready,
    tcp_line,
    wait_for,
    wait_ready,
)


def test_island_pod_goes_creating_running_ready_with_real_listeners(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("islands", island_pod("isl"))
    bound = wait_for(lambda: (p := v1.read_namespaced_pod("isl", "islands")).spec.node_name and p)
    assert bound.spec.node_name in ("dev-1", "dev-2")
    assert condition(bound, "PodScheduled").status == "True"
    pod = wait_ready(v1, "isl", "islands")
    assert pod.status.phase == "Running"
    assert pod.status.host_ip in ("127.0.0.2", "127.0.0.3")
    assert all(c.ready for c in pod.status.container_statuses)
    for port in (30807, 30808, 30809):
        assert can_connect(pod.status.host_ip, port)
    assert tcp_line(pod.status.host_ip, 30809, "PING") == "PONG"
    assert tcp_line(pod.status.host_ip, 30807, "") == "ISLAND app-common-port"
    reasons = [
        e.reason
        for e in v1.list_namespaced_event("islands", field_selector="involvedObject.name=isl").items
    ]
    assert reasons[:2] == ["Scheduled", "Started"]


def test_island_clock_starts_at_the_seed_clock_and_ticks(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("clock"))
    pod = wait_ready(v1, "clock")
    first = float(tcp_line(pod.status.host_ip, 30809, "TIME").split()[1])
    start = time.mktime(time.strptime("2021-09-18 23:30:07", "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert start <= first < start + 30  # @date with DONT_RESET: date + process uptime
    time.sleep(0.3)
    second = float(tcp_line(pod.status.host_ip, 30809, "TIME").split()[1])
    assert 0.2 < second - first < 2


def test_unschedulable_pod_gets_the_schedulers_message_and_an_event(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("big", memory="20Gi", branch="weekly"))
    pod = wait_for(
        lambda: (
            (p := v1.read_namespaced_pod("big", "default")) and condition(p, "PodScheduled") and p
        )
    )
    cond = condition(pod, "PodScheduled")
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    assert cond.message == (
        "0/3 nodes are available: 1 Insufficient memory, "
        "2 node(s) didn't match Pod's node affinity/selector."
    )
    assert pod.status.phase == "Pending"
    events = v1.list_namespaced_event("default", field_selector="involvedObject.name=big").items
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "FailedScheduling", cond.message)
    ]


def test_cordoned_and_not_ready_nodes_are_skipped(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.cordon("dev-1")
    sim.set_node_ready("dev-2", False)
    v1.create_namespaced_pod("default", island_pod("nowhere"))
    pod = wait_for(
        lambda: (
            (p := v1.read_namespaced_pod("nowhere", "default"))
            and condition(p, "PodScheduled")
            and p
        )
    )
    message = condition(pod, "PodScheduled").message
    assert "1 node(s) were unschedulable" in message
    assert "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }" in message
    sim.cordon("dev-1", False)
    wait_for(lambda: v1.read_namespaced_pod("nowhere", "default").spec.node_name == "dev-1")


def test_failing_image_goes_err_image_pull_then_back_off(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("pull", image="registry.example/missing:1"))
    wait_for(
        lambda: (
            container(v1.read_namespaced_pod("pull", "default"), "server").state.waiting.reason
            == "ErrImagePull"
        )
    )
    pod = wait_for(
        lambda: (
            (p := v1.read_namespaced_pod("pull", "default"))
            and container(p, "server").state.waiting.reason == "ImagePullBackOff"
            and p
        )
    )
    assert pod.status.phase == "Pending"
    assert any(e.reason == "Failed" for e in v1.list_namespaced_event("default").items)


def test_oom_kill_terminates_the_server_but_the_side_container_keeps_the_pod(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("oom"))
    pod = wait_ready(v1, "oom")
    sim.kill_container("default", "oom", "server", reason="OOMKilled")
    pod = wait_for(
        lambda: (p := v1.read_namespaced_pod("oom", "default")) and not is_ready(p) and p
    )
    term = container(pod, "server").state.terminated
    assert (term.exit_code, term.reason) == (137, "OOMKilled")
    assert container(pod, "side-container").state.running is not None
    # as in Kubernetes: with a container still running the phase stays Running
    assert pod.status.phase == "Running"
    assert not can_connect(pod.status.host_ip, 30809)
    logs = v1.read_namespaced_pod_log("oom", "default", container="server")
    assert "OutOfMemoryError" in logs and "exited with code 137 (OOMKilled)" in logs


def test_crash_with_an_exit_code(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("crash"))
    wait_ready(v1, "crash")
    sim.kill_container("default", "crash", "server", reason="Error", exit_code=3)
    term = wait_for(
        lambda: container(v1.read_namespaced_pod("crash", "default"), "server").state.terminated
    )
    assert (term.exit_code, term.reason) == (3, "Error")


def test_all_containers_exited_means_failed(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("dead"))
    wait_ready(v1, "dead")
    sim.kill_container("default", "dead", "server", reason="OOMKilled")
    sim.kill_container("default", "dead", "side-container", reason="Error", exit_code=143)
    wait_for(lambda: v1.read_namespaced_pod("dead", "default").status.phase == "Failed")


def test_a_wedged_server_refuses_connects_and_goes_unready_then_recovers(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("wedged"))
    pod = wait_ready(v1, "wedged")
    sim.set_answering("default", "wedged", "server", False)
    assert not can_connect(pod.status.host_ip, 30809)
    wait_for(lambda: not is_ready(v1.read_namespaced_pod("wedged", "default")))
    assert container(v1.read_namespaced_pod("wedged", "default"), "server").state.running
    sim.set_answering("default", "wedged", "server", True)
    wait_ready(v1, "wedged")
    assert tcp_line(pod.status.host_ip, 30809, "PING") == "PONG"


def test_a_failing_readiness_probe_makes_the_pod_unready_while_its_ports_answer(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("flaky"))
    pod = wait_ready(v1, "flaky")
    sim.fail_readiness("default", "flaky", "server", True)
    wait_for(lambda: not is_ready(v1.read_namespaced_pod("flaky", "default")))
    assert tcp_line(pod.status.host_ip, 30809, "PING") == "PONG"
    sim.fail_readiness("default", "flaky", "server", False)
    wait_ready(v1, "flaky")


def test_eviction(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("ev"))
    pod = wait_ready(v1, "ev")
    sim.evict("default", "ev")
    pod = wait_for(
        lambda: (p := v1.read_namespaced_pod("ev", "default")) and p.status.phase == "Failed" and p
    )
    assert pod.status.reason == "Evicted"
    assert "low on resource: memory" in pod.status.message
    assert not can_connect(pod.status.host_ip, 30809)
    assert any(e.reason == "Evicted" for e in v1.list_namespaced_event("default").items)


def test_node_lost_makes_pods_unready_then_deletes_them(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("lost", branch="weekly"))
    pod = wait_ready(v1, "lost")
    sim.set_node_ready("weekly-1", False)
    wait_for(lambda: not is_ready(v1.read_namespaced_pod("lost", "default")))
    assert not can_connect(pod.status.host_ip, 30809)
    node = v1.read_node("weekly-1")
    assert [c.status for c in node.status.conditions if c.type == "Ready"] == ["Unknown"]
    wait_for(lambda: v1.read_namespaced_pod("lost", "default").metadata.deletion_timestamp)


def test_pod_deleted_behind_the_bots_back(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("gone"))
    wait_ready(v1, "gone")
    sim.delete_pod("default", "gone", grace=0)
    assert [p.metadata.name for p in v1.list_namespaced_pod("default").items] == []
