"""Injected API faults, as the official client sees each of them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kubesim import KubeSim
from kubesim.tests.conftest import island_pod
from kubesim.tests.util import container, is_ready, wait_for, wait_ready


def test_500_for_the_next_n_matching_requests(sim: KubeSim, v1: client.CoreV1Api) -> None:
    sim.fail_requests(r"/pods$", status=500, count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            v1.list_namespaced_pod("default")
        assert err.value.status == 500
        assert json.loads(err.value.body)["reason"] == "InternalError"
    assert v1.list_namespaced_pod("default").items == []
    assert v1.list_node().items  # other paths were never affected


def test_429_carries_retry_after(sim: KubeSim) -> None:
    config = client.Configuration(host=sim.url)
    config.retries = False
    with client.ApiClient(config) as api:
        sim.fail_requests(r"/nodes", status=429, seconds=7)
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(api).list_node()
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "7"
    assert json.loads(err.value.body)["details"]["retryAfterSeconds"] == 7


def test_the_client_waits_out_a_429_by_itself(sim: KubeSim, v1: client.CoreV1Api) -> None:
    # urllib3's default retry honours Retry-After on 429: the caller just sees a slow answer
    sim.fail_requests(r"/nodes", status=429, seconds=1)
    began = time.monotonic()
    assert v1.list_node().items
    assert time.monotonic() - began >= 1.0


def test_dropped_connection(sim: KubeSim, v1: client.CoreV1Api) -> None:
    config = client.Configuration(host=sim.url)
    config.retries = False
    sim.fail_requests(r"/namespaces/default/pods", action="drop", method="GET")
    with client.ApiClient(config) as api, pytest.raises(urllib3.exceptions.HTTPError):
        client.CoreV1Api(api).list_namespaced_pod("default")
    assert v1.list_namespaced_pod("default").items == []


def test_delay_and_request_timeout(sim: KubeSim, v1: client.CoreV1Api) -> None:
    config = client.Configuration(host=sim.url)
    config.retries = False
    sim.fail_requests(r"/nodes", action="delay", seconds=1.0)
    began = time.monotonic()
    with client.ApiClient(config) as api, pytest.raises(urllib3.exceptions.HTTPError):
        client.CoreV1Api(api).list_node(_request_timeout=0.3)
    assert time.monotonic() - began < 1.0
    # the default client retries a read timeout: one slow answer costs only the timeout
    sim.fail_requests(r"/nodes", action="delay", seconds=1.0)
    began = time.monotonic()
    assert v1.list_node(_request_timeout=0.3).items
    assert 0.3 <= time.monotonic() - began < 1.0


def test_control_endpoint_adds_faults_over_http(sim: KubeSim, v1: client.CoreV1Api) -> None:
    request = urllib.request.Request(
        f"{sim.url}/kubesim/v1/faults",
        method="POST",
        data=json.dumps({"path": "/api/v1/nodes", "status": 503}).encode(),
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
    with pytest.raises(ApiException) as err:
        v1.list_node()
    assert err.value.status == 503
    bad = urllib.request.Request(
        f"{sim.url}/kubesim/v1/faults",
        method="POST",
        data=json.dumps({"path": "x", "action": "explode"}).encode(),
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=5)
    assert refused.value.code == 400


def control(sim: KubeSim, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"{sim.url}/kubesim/v1{path}", method="POST", data=json.dumps(body).encode()
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_every_cluster_fault_is_reachable_over_http(sim: KubeSim, v1: client.CoreV1Api) -> None:
    """What `serve` users (and other languages' tests) can do without the Python handle."""
    v1.create_namespaced_pod("default", island_pod("crash"))
    wait_ready(v1, "crash")
    control(
        sim,
        "/namespaces/default/pods/crash/kill",
        {"container": "server", "reason": "Error", "exitCode": 3},
    )
    term = wait_for(
        lambda: container(v1.read_namespaced_pod("crash", "default"), "server").state.terminated
    )
    assert (term.reason, term.exit_code) == ("Error", 3)

    v1.create_namespaced_pod("default", island_pod("wedged", ports=(30810, 30811, 30812)))
    wait_ready(v1, "wedged")
    control(sim, "/namespaces/default/pods/wedged/readiness", {"container": "server"})
    wait_for(lambda: not is_ready(v1.read_namespaced_pod("wedged", "default")))
    control(
        sim, "/namespaces/default/pods/wedged/readiness", {"container": "server", "failing": False}
    )
    wait_ready(v1, "wedged")
    control(
        sim,
        "/namespaces/default/pods/wedged/answering",
        {"container": "server", "answering": False},
    )
    wait_for(lambda: not is_ready(v1.read_namespaced_pod("wedged", "default")))

    control(sim, "/nodes/dev-1/cordon", {"unschedulable": True})
    assert v1.read_node("dev-1").spec.unschedulable is True
    control(sim, "/nodes/dev-1/cordon", {"unschedulable": False})
    assert not v1.read_node("dev-1").spec.unschedulable

    old = v1.list_namespaced_pod("default").metadata.resource_version
    v1.patch_namespaced_pod("crash", "default", {"metadata": {"labels": {"seen": "yes"}}})
    compacted = control(sim, "/compact", {})
    assert int(str(compacted["compactedResourceVersion"])) > int(old)
    with pytest.raises(ApiException) as expired:
        for _ in watch.Watch().stream(
            v1.list_namespaced_pod, "default", resource_version=old, timeout_seconds=2
        ):
            pass
    assert expired.value.status == 410

    for path in ("/namespaces/default/pods/ghost/kill", "/nodes/ghost/cordon"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            control(sim, path, {})
        assert missing.value.code == 404
