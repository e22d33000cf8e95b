"""The resource metrics API (metrics.k8s.io/v1beta1) through the official client: metrics-server's
shapes and errors, the working-set model, the memory climb that ends in an OOM kill, and a
cluster without metrics-server."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

from kubesim import KubeSim, SimConfig, running
from kubesim.metrics import NODE_BASE_MEMORY
from kubesim.quantity import format_binary, format_nanocores, memory_bytes
from kubesim.tests.conftest import FAST, island_pod
from kubesim.tests.util import container, wait_for, wait_ready
from kubesim.usage import (
    PAGE,
    REFERENCE_MEMORY,
    STEADY_HIGH,
    STEADY_LOW,
    WOBBLE,
    Climb,
    steady_working_set,
    working_set,
)

GV = ("metrics.k8s.io", "v1beta1")
LIMIT = 2048 * 2**20  # island_pod's server container
METRICS_FAST = replace(FAST, metrics_delay=0.3)


@pytest.fixture
def sim_config() -> SimConfig:
    return METRICS_FAST


@pytest.fixture
def metrics(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def pod_metrics(metrics: client.CustomObjectsApi, ns: str = "islands", **kw: Any) -> list[Any]:
    listed = metrics.list_namespaced_custom_object(*GV, ns, "pods", **kw)
    return listed["items"]  # type: ignore[no-any-return]


def memory_of(item: dict[str, Any], name: str = "server") -> int:
    """A container's working set in bytes, from its PodMetrics."""
    (c,) = [c for c in item["containers"] if c["name"] == name]
    return memory_bytes(c["usage"]["memory"])


def start_island(v1: client.CoreV1Api, name: str, **kw: Any) -> None:
    v1.create_namespaced_pod("islands", island_pod(name, **kw))
    wait_ready(v1, name, "islands")


def not_found(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as missing:
        call()
    assert missing.value.status == 404
    return json.loads(missing.value.body)  # type: ignore[no-any-return]


def test_pod_metrics_have_metrics_servers_shapes(
    v1: client.CoreV1Api, metrics: client.CustomObjectsApi
) -> None:
    start_island(v1, "island-a", labels={"owner": "u1"})
    start_island(v1, "island-b", labels={"owner": "u2"}, ports=(31000, 31001, 31002))
    listed = wait_for(
        lambda: (
            (m := metrics.list_namespaced_custom_object(*GV, "islands", "pods"))
            and len(m["items"]) == 2
            and m
        )
    )
    assert (listed["kind"], listed["apiVersion"]) == ("PodMetricsList", "metrics.k8s.io/v1beta1")
    item = listed["items"][0]
    assert set(item) == {"metadata", "timestamp", "window", "containers"}
    assert item["metadata"]["name"] == "island-a" and item["metadata"]["namespace"] == "islands"
    assert item["metadata"]["labels"] == {"app": "island", "owner": "u1"}
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
    assert re.match(stamp, item["metadata"]["creationTimestamp"])
    assert re.match(stamp, item["timestamp"]) and item["window"] == "15s"
    assert [c["name"] for c in item["containers"]] == ["server", "side-container"]
    for c in item["containers"]:
        assert set(c["usage"]) == {"cpu", "memory"}
        assert re.fullmatch(r"\d+[nm]?", c["usage"]["cpu"]), c
        assert re.fullmatch(r"\d+(Ki|Mi)", c["usage"]["memory"]), c
        assert parse_quantity(c["usage"]["memory"]) % PAGE == 0
    # the working set: 30-45 % of the limit, within its wobble of the predicted steady value
    spec = island_pod("island-a")["spec"]["containers"][0]
    steady = steady_working_set("islands", "island-a", spec)
    assert STEADY_LOW * LIMIT <= steady <= STEADY_HIGH * LIMIT
    assert abs(memory_of(item) - steady) <= WOBBLE * steady + PAGE

    one = metrics.get_namespaced_custom_object(*GV, "islands", "pods", "island-b")
    assert (one["kind"], one["apiVersion"]) == ("PodMetrics", "metrics.k8s.io/v1beta1")
    assert one["metadata"]["labels"]["owner"] == "u2"
    assert [i["metadata"]["name"] for i in pod_metrics(metrics, label_selector="owner=u2")] == [
        "island-b"
    ]
    assert pod_metrics(metrics, label_selector="owner in (u1, u3)")[0]["metadata"]["name"] == (
        "island-a"
    )
    assert pod_metrics(metrics, field_selector="metadata.name=island-b")[0]["containers"]
    assert pod_metrics(metrics, "default") == []
    everywhere = metrics.list_cluster_custom_object(*GV, "pods")["items"]
    assert [i["metadata"]["name"] for i in everywhere] == ["island-a", "island-b"]
    with pytest.raises(ApiException) as bad:
        pod_metrics(metrics, label_selector="owner in (u1")
    assert bad.value.status == 400
    with pytest.raises(ApiException) as watch:  # metrics-server serves no watch of pods
        metrics.list_namespaced_custom_object(*GV, "islands", "pods", watch=True)
    assert watch.value.status == 405


def test_a_pod_has_no_metrics_until_its_containers_run(
    v1: client.CoreV1Api, metrics: client.CustomObjectsApi, tmp_path: Path
) -> None:
    v1.create_namespaced_pod("islands", island_pod("nowhere", branch="nowhere"))  # Pending
    start_island(v1, "running", ports=(31000, 31001, 31002))
    wait_for(lambda: pod_metrics(metrics))
    assert [i["metadata"]["name"] for i in pod_metrics(metrics)] == ["running"]
    body = not_found(
        lambda: metrics.get_namespaced_custom_object(*GV, "islands", "pods", "nowhere")
    )
    assert body["reason"] == "NotFound" and body["kind"] == "Status"
    assert body["message"] == 'podmetrics.metrics.k8s.io "islands/nowhere" not found'
    assert body["details"] == {
        "name": "islands/nowhere",
        "group": "metrics.k8s.io",
        "kind": "podmetrics",
    }
    body = not_found(lambda: metrics.get_namespaced_custom_object(*GV, "islands", "pods", "ghost"))
    assert body["message"] == 'pods "ghost" not found'
    # a pod that has just started running: metrics-server has not scraped it twice yet
    with running(replace(FAST, metrics_delay=60), kubeconfig_path=tmp_path / "kc") as slow:
        api = kube_config.new_client_from_config(str(slow.kubeconfig_path))
        fresh_v1, fresh = client.CoreV1Api(api), client.CustomObjectsApi(api)
        start_island(fresh_v1, "fresh")
        assert fresh.list_namespaced_custom_object(*GV, "islands", "pods")["items"] == []
        not_found(lambda: fresh.get_namespaced_custom_object(*GV, "islands", "pods", "fresh"))
        api.close()


def test_node_metrics_sum_their_pods_over_a_base(
    sim: KubeSim, v1: client.CoreV1Api, metrics: client.CustomObjectsApi
) -> None:
    start_island(v1, "island-a", branch="weekly")  # weekly-1 is the only weekly node
    wait_for(lambda: pod_metrics(metrics))
    nodes = metrics.list_cluster_custom_object(*GV, "nodes")
    assert (nodes["kind"], nodes["apiVersion"]) == ("NodeMetricsList", "metrics.k8s.io/v1beta1")
    by_name = {n["metadata"]["name"]: n for n in nodes["items"]}
    assert list(by_name) == ["dev-1", "dev-2", "weekly-1"]
    assert by_name["dev-1"]["usage"]["memory"] == format_binary(NODE_BASE_MEMORY)
    assert by_name["dev-1"]["metadata"]["labels"]["branch"] == "dev"
    weekly = memory_bytes(by_name["weekly-1"]["usage"]["memory"]) - NODE_BASE_MEMORY
    (item,) = pod_metrics(metrics)
    pod = memory_of(item, "server") + memory_of(item, "side-container")
    assert abs(weekly - pod) <= 0.01 * pod  # the same containers, a moment apart
    one = metrics.get_cluster_custom_object(*GV, "nodes", "weekly-1")
    assert one["kind"] == "NodeMetrics" and set(one["usage"]) == {"cpu", "memory"}
    selected = metrics.list_cluster_custom_object(*GV, "nodes", label_selector="branch=weekly")
    assert [n["metadata"]["name"] for n in selected["items"]] == ["weekly-1"]
    body = not_found(lambda: metrics.get_cluster_custom_object(*GV, "nodes", "nope"))
    assert body["message"] == 'nodes "nope" not found'
    sim.set_node_ready("weekly-1", False)  # its kubelet cannot be scraped
    body = not_found(lambda: metrics.get_cluster_custom_object(*GV, "nodes", "weekly-1"))
    assert body["message"] == 'nodemetrics.metrics.k8s.io "weekly-1" not found'
    assert pod_metrics(metrics) == []


def test_a_memory_climb_reaches_the_limit_and_the_container_is_oomkilled(
    sim: KubeSim, v1: client.CoreV1Api, metrics: client.CustomObjectsApi
) -> None:
    start_island(v1, "leaky")
    wait_for(lambda: pod_metrics(metrics))
    before = memory_of(pod_metrics(metrics)[0])
    climb = sim.memory_climb("islands", "leaky", 2.0)
    assert climb.limit_bytes == LIMIT and abs(climb.start_bytes - before) <= 0.05 * before
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = pod_metrics(metrics)
        server = [c for i in items for c in i["containers"] if c["name"] == "server"]
        if not server:
            break  # killed: a terminated container is not reported
        seen.append(memory_bytes(server[0]["usage"]["memory"]))
        time.sleep(0.1)
    assert len(seen) >= 5, seen  # ~15 samples over the 2 s climb
    assert seen == sorted(seen) and seen[-1] <= LIMIT
    assert seen[-1] > 0.85 * LIMIT, seen  # it got close to the limit before the kill
    pod = wait_for(
        lambda: (
            (p := v1.read_namespaced_pod("leaky", "islands"))
            and container(p, "server").state.terminated
            and p
        )
    )
    terminated = container(pod, "server").state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)
    assert pod.status.phase == "Running"  # the side container runs on (restartPolicy Never)
    assert "java.lang.OutOfMemoryError: Java heap space" in sim.container_logs(
        "islands", "leaky", "server"
    )
    (left,) = pod_metrics(metrics)
    assert [c["name"] for c in left["containers"]] == ["side-container"]
    assert sim.working_set("islands", "leaky", "server") is None


def test_a_new_pod_of_the_same_name_is_back_to_its_steady_working_set(
    sim: KubeSim, v1: client.CoreV1Api, metrics: client.CustomObjectsApi
) -> None:
    """The bot restarts an island by deleting its pod and creating it again."""
    start_island(v1, "island-r")
    sim.memory_climb("islands", "island-r", 10.0)
    time.sleep(0.5)
    climbed = sim.working_set("islands", "island-r", "server")
    spec = island_pod("island-r")["spec"]["containers"][0]
    steady = steady_working_set("islands", "island-r", spec)
    assert climbed is not None and climbed > steady * (1 + WOBBLE)
    sim.delete_pod("islands", "island-r", grace=0)
    start_island(v1, "island-r")
    now = sim.working_set("islands", "island-r", "server")
    assert now is not None and abs(now - steady) <= WOBBLE * steady + PAGE


def test_the_climb_over_the_control_api(sim: KubeSim, v1: client.CoreV1Api) -> None:
    start_island(v1, "island-c")

    def post(pod: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{sim.url}/kubesim/v1/namespaces/islands/pods/{pod}/memory-climb",
            data=json.dumps(body).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    code, body = post("island-c", {"seconds": 30})
    assert code == 200
    assert body["container"] == "server" and body["limitBytes"] == LIMIT
    assert body["seconds"] == 30 and 0 < body["fromBytes"] < LIMIT
    code, body = post("ghost", {"seconds": 1})
    assert code == 404 and body["reason"] == "NotFound"
    code, body = post("island-c", {"seconds": 1, "container": "side-container"})
    assert code == 400 and "has no memory limit" in body["message"]
    assert post("island-c", {"seconds": -1})[0] == 400
    assert post("island-c", {"seconds": "soon"})[0] == 400


def test_without_metrics_server_the_group_is_absent(tmp_path: Path) -> None:
    with running(replace(FAST, metrics=False), kubeconfig_path=tmp_path / "kc") as sim:
        api = kube_config.new_client_from_config(str(sim.kubeconfig_path))
        groups = client.ApisApi(api).get_api_versions().groups
        assert groups == []
        for call in (
            lambda: client.CustomObjectsApi(api).list_namespaced_custom_object(
                *GV, "islands", "pods"
            ),
            lambda: client.CustomObjectsApi(api).list_cluster_custom_object(*GV, "nodes"),
        ):
            with pytest.raises(ApiException) as missing:
                call()
            assert missing.value.status == 404 and missing.value.body == "404 page not found\n"
        with pytest.raises(urllib.error.HTTPError) as discovery:
            urllib.request.urlopen(f"{sim.url}/apis/metrics.k8s.io/v1beta1", timeout=5)
        assert discovery.value.code == 404
        api.close()


def test_discovery_lists_the_metrics_group(sim: KubeSim, api_client: client.ApiClient) -> None:
    (group,) = client.ApisApi(api_client).get_api_versions().groups
    assert group.name == "metrics.k8s.io"
    assert group.preferred_version.group_version == "metrics.k8s.io/v1beta1"
    with urllib.request.urlopen(f"{sim.url}/apis/metrics.k8s.io/v1beta1", timeout=5) as answer:
        listed = json.loads(answer.read())
    assert (listed["kind"], listed["groupVersion"]) == ("APIResourceList", "metrics.k8s.io/v1beta1")
    resources = {r["name"]: r for r in listed["resources"]}
    assert resources["pods"]["kind"] == "PodMetrics" and resources["pods"]["namespaced"]
    assert resources["nodes"]["kind"] == "NodeMetrics" and not resources["nodes"]["namespaced"]
    assert all(r["verbs"] == ["get", "list"] for r in resources.values())


# ---- the model, pure ------------------------------------------------------------------------


def test_the_steady_working_set_is_fixed_by_the_pod_and_its_memory() -> None:
    def spec(**resources: dict[str, str]) -> dict[str, Any]:
        return {"name": "server", "resources": resources}

    limited = spec(limits={"memory": "2Gi"}, requests={"memory": "1Gi"})
    values = [steady_working_set("islands", f"island-{i}", limited) for i in range(200)]
    assert all(STEADY_LOW * 2**31 <= v <= STEADY_HIGH * 2**31 and v % PAGE == 0 for v in values)
    assert len(set(values)) > 150 and max(values) - min(values) > 0.1 * 2**31  # spread out
    assert steady_working_set("islands", "island-1", limited) == values[1]  # deterministic
    requested = steady_working_set("islands", "x", spec(requests={"memory": "1Gi"}))
    assert STEADY_LOW * 2**30 <= requested <= STEADY_HIGH * 2**30
    bare = steady_working_set("islands", "x", spec())
    assert STEADY_LOW * REFERENCE_MEMORY <= bare <= STEADY_HIGH * REFERENCE_MEMORY
    steady = values[0]
    moving = [working_set("islands", "island-0", limited, t / 4) for t in range(200)]
    assert all(abs(v - steady) <= WOBBLE * steady + PAGE for v in moving)
    assert max(moving) - min(moving) > WOBBLE * steady  # it does wobble


def test_a_climb_is_a_straight_line_to_the_limit() -> None:
    climb = Climb(started=100.0, start_bytes=2**30, limit_bytes=2**31, seconds=4.0)
    assert climb.at(99.0) == 2**30 and climb.at(100.0) == 2**30
    assert climb.at(102.0) == 3 * 2**29
    assert climb.at(104.0) == climb.at(200.0) == 2**31
    assert Climb(0.0, 2**30, 2**31, 0.0).at(0.0) == 2**31


@pytest.mark.parametrize(
    ("value", "printed"),
    [(0, "0"), (1000, "1000"), (19468288, "19012Ki"), (2**31, "2Gi"), (5 * 2**20, "5Mi")],
)
def test_memory_is_printed_as_binary_si(value: int, printed: str) -> None:
    assert format_binary(value) == printed
    assert parse_quantity(printed) == value


@pytest.mark.parametrize(
    ("value", "printed"),
    [(0, "0"), (2052498, "2052498n"), (5_000_000, "5m"), (3000, "3u"), (2 * 10**9, "2")],
)
def test_cpu_is_printed_as_scaled_nanocores(value: int, printed: str) -> None:
    assert format_nanocores(value) == printed
    assert parse_quantity(printed) * 10**9 == value
