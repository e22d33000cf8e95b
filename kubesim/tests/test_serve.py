"""``python -m kubesim serve`` in a real subprocess, driven over HTTP like a user would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config

from kubesim import running
from kubesim.tests.conftest import island_pod
from kubesim.tests.util import container, serve, serve_refused, wait_for, wait_ready


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_serve_writes_a_kubeconfig_and_obeys_the_control_api(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    proc = serve(
        "--kubeconfig",
        str(kubeconfig),
        "--nodes",
        "only:branch=dev,memory=4Gi,ip=127.0.0.7",
        "--boot-delay",
        "0.1",
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("kubesim serving http://127.0.0.1:")
        url = line.split()[2]
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == url
        api = kube_config.new_client_from_config(str(kubeconfig))
        v1 = client.CoreV1Api(api)
        assert [n.metadata.name for n in v1.list_node().items] == ["only"]
        v1.create_namespaced_pod("default", island_pod("p"))
        pod = wait_ready(v1, "p")
        assert pod.status.host_ip == "127.0.0.7"
        post(
            f"{url}/kubesim/v1/namespaces/default/pods/p/kill",
            {"container": "server", "reason": "OOMKilled"},
        )
        term = wait_for(
            lambda: container(v1.read_namespaced_pod("p", "default"), "server").state.terminated
        )
        assert term.reason == "OOMKilled"
        post(f"{url}/kubesim/v1/namespaces/default/pods/p/evict", {})
        wait_for(lambda: v1.read_namespaced_pod("p", "default").status.reason == "Evicted")
        post(f"{url}/kubesim/v1/nodes/only/ready", {"ready": False})
        assert v1.read_node("only").status.conditions[0].status == "Unknown"
        api.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_request_counts_over_http(tmp_path: Path) -> None:
    with running(kubeconfig_path=tmp_path / "kc") as sim:
        api = kube_config.new_client_from_config(str(sim.kubeconfig_path))
        client.CoreV1Api(api).list_node()
        client.CoreV1Api(api).list_node()
        api.close()
        with urllib.request.urlopen(f"{sim.url}/kubesim/v1/requests", timeout=5) as response:
            counts = json.loads(response.read())
    assert counts["by_path"]["GET /api/v1/nodes"] == 2
    assert counts["total"] >= 2


def test_serve_refuses_bad_timings() -> None:
    for flag, value in (
        ("--probe-period", "0"),
        ("--create-delay", "-1"),
        ("--boot-delay", "-2"),
        ("--metrics-delay", "-1"),
    ):
        result = serve_refused(flag, value)
        assert result.returncode == 2, result.stderr
        assert f"{flag} must be at least" in result.stderr


def test_serve_without_metrics_server(tmp_path: Path) -> None:
    """``--no-metrics``: the metrics.k8s.io group is not discovered and its paths are 404."""
    proc = serve("--kubeconfig", str(tmp_path / "kc.yaml"), "--no-metrics")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[2]
        with urllib.request.urlopen(f"{url}/apis", timeout=5) as response:
            assert json.loads(response.read())["groups"] == []
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/apis/metrics.k8s.io/v1beta1/nodes", timeout=5)
        assert missing.value.code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_audit_log_names_who_changed_what(tmp_path: Path) -> None:
    """As the API server's audit log: every request that changes something (not the reads),
    with its user agent and status, oldest first; the Python handle reads the same."""
    with running(kubeconfig_path=tmp_path / "kc") as sim:
        api = kube_config.new_client_from_config(str(sim.kubeconfig_path))
        api.user_agent = "islandbot/test (host/42)"
        v1 = client.CoreV1Api(api)
        v1.list_node()
        body = island_pod("p")
        v1.create_namespaced_pod("default", body)
        with pytest.raises(client.ApiException):
            v1.create_namespaced_pod("default", body)  # 409: audited too
        v1.delete_namespaced_pod("p", "default")
        api.close()
        with urllib.request.urlopen(f"{sim.url}/kubesim/v1/audit", timeout=5) as response:
            items = json.loads(response.read())["items"]
        assert sim.audit() == items
    assert [(i["verb"], i["path"], i["code"]) for i in items] == [
        ("POST", "/api/v1/namespaces/default/pods", 201),
        ("POST", "/api/v1/namespaces/default/pods", 409),
        ("DELETE", "/api/v1/namespaces/default/pods/p", 200),
    ]
    assert {i["userAgent"] for i in items} == {"islandbot/test (host/42)"}
    assert items[0]["time"] <= items[1]["time"] <= items[2]["time"]
