"""The REST API as the official client sees it: objects, errors, selectors, paging, delete."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubesim import KubeSim
from kubesim.tests.conftest import island_pod
from kubesim.tests.util import wait_for


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def test_version_nodes_and_namespaces(api_client: client.ApiClient, v1: client.CoreV1Api) -> None:
    assert client.VersionApi(api_client).get_code().minor == "37"
    nodes = {n.metadata.name: n for n in v1.list_node().items}
    assert set(nodes) == {"dev-1", "dev-2", "weekly-1"}
    dev = nodes["dev-1"]
    assert dev.metadata.labels["branch"] == "dev"
    assert dev.status.allocatable["memory"] == "16Gi"
    assert [a.address for a in dev.status.addresses if a.type == "InternalIP"] == ["127.0.0.2"]
    assert {ns.metadata.name for ns in v1.list_namespace().items} >= {"default", "islands"}
    assert v1.list_node(label_selector="branch=weekly").items[0].metadata.name == "weekly-1"


def test_server_sets_fields_and_resource_versions_increase(v1: client.CoreV1Api) -> None:
    first = v1.create_namespaced_pod("default", island_pod("a", ports=(31000, 31001, 31002)))
    second = v1.create_namespaced_pod(
        "default",
        {**island_pod("x", ports=(31003, 31004, 31005)), "metadata": {"generateName": "gen-"}},
    )
    assert first.metadata.uid and first.metadata.creation_timestamp
    assert first.status.phase == "Pending"
    assert isinstance(first.metadata.resource_version, str)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert second.metadata.name.startswith("gen-") and len(second.metadata.name) > 4
    assert first.metadata.namespace == "default"


def test_errors_are_status_bodies_with_the_right_codes(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_pod("nope", "default")
    assert missing.value.status == 404
    body = status_of(missing.value)
    assert (body["kind"], body["reason"], body["message"]) == (
        "Status",
        "NotFound",
        'pods "nope" not found',
    )
    v1.create_namespaced_pod("default", island_pod("dup"))
    with pytest.raises(ApiException) as dup:
        v1.create_namespaced_pod("default", island_pod("dup"))
    assert dup.value.status == 409 and status_of(dup.value)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as no_ns:
        v1.create_namespaced_pod("ghost", island_pod("p"))
    assert no_ns.value.status == 404
    with pytest.raises(ApiException) as bad_selector:
        v1.list_namespaced_pod("default", label_selector="a in (b")
    assert bad_selector.value.status == 400
    with pytest.raises(ApiException) as bad_field:
        v1.list_namespaced_pod("default", field_selector="spec.schedulerName=x")
    assert bad_field.value.status == 400
    assert "field label not supported" in status_of(bad_field.value)["message"]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda p: p["metadata"].update(name="Bad_Name"), "metadata.name", "RFC 1123"),
        (
            lambda p: p["metadata"]["labels"].update(owner="no spaces allowed"),
            "metadata.labels",
            "valid label",
        ),
        (
            lambda p: p["spec"]["containers"][1].update(name="server"),
            "spec.containers[1].name",
            "Duplicate value",
        ),
        (
            lambda p: p["spec"]["containers"][0].pop("image"),
            "spec.containers[0].image",
            "Required value",
        ),
        (
            lambda p: p["spec"]["containers"][0]["ports"][0].update(hostPort=70000),
            "spec.containers[0].ports[0].hostPort",
            "between 1 and 65535",
        ),
    ],
)
def test_invalid_pods_get_422_with_causes(
    v1: client.CoreV1Api, mutate, field: str, fragment: str
) -> None:
    pod = island_pod("valid-name")
    mutate(pod)
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod("default", pod)
    assert err.value.status == 422
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    causes = body["details"]["causes"]
    assert any(c["field"] == field and fragment in c["message"] for c in causes), causes
    assert v1.list_namespaced_pod("default").items == []


def test_label_and_field_selectors(v1: client.CoreV1Api) -> None:
    specs = [
        ("p1", {"tier": "a", "owner": "u1"}, "dev"),
        ("p2", {"tier": "b"}, "dev"),
        ("p3", {"tier": "c", "owner": "u2"}, "weekly"),
    ]
    for i, (name, labels, branch) in enumerate(specs):
        base = 32000 + 3 * i
        v1.create_namespaced_pod(
            "default",
            island_pod(name, labels=labels, branch=branch, ports=(base, base + 1, base + 2)),
        )

    def names(**kw: str) -> list[str]:
        return sorted(p.metadata.name for p in v1.list_namespaced_pod("default", **kw).items)

    assert names(label_selector="tier=a") == ["p1"]
    assert names(label_selector="tier==b") == ["p2"]
    assert names(label_selector="tier!=a") == ["p2", "p3"]
    assert names(label_selector="tier in (a, c)") == ["p1", "p3"]
    assert names(label_selector="tier notin (a,c)") == ["p2"]
    assert names(label_selector="owner") == ["p1", "p3"]
    assert names(label_selector="!owner") == ["p2"]
    assert names(label_selector="app=island,owner,tier!=c") == ["p1"]
    assert names(field_selector="metadata.name=p2") == ["p2"]
    wait_for(lambda: names(field_selector="spec.nodeName=weekly-1") == ["p3"])
    assert names(field_selector="status.phase!=Failed") == ["p1", "p2", "p3"]
    all_ns = client.CoreV1Api(v1.api_client).list_pod_for_all_namespaces(label_selector="tier")
    assert len(all_ns.items) == 3


def test_limit_and_continue_page_through_everything_once(v1: client.CoreV1Api) -> None:
    for i in range(7):
        v1.create_namespaced_pod(
            "default",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"page-{i}"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        )
    seen, token, pages = [], None, 0
    while True:
        page = v1.list_namespaced_pod("default", limit=3, _continue=token)
        seen += [p.metadata.name for p in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert sorted(seen) == [f"page-{i}" for i in range(7)] and pages == 3


def test_delete_lingers_terminating_holds_ports_then_404(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    pod = island_pod("old", branch="weekly")  # weekly has a single node
    v1.create_namespaced_pod("default", pod)
    wait_for(lambda: v1.read_namespaced_pod("old", "default").spec.node_name)
    deleted = v1.delete_namespaced_pod("old", "default")
    assert deleted.metadata.deletion_timestamp is not None
    assert v1.read_namespaced_pod("old", "default").metadata.deletion_timestamp
    with pytest.raises(ApiException) as again:
        v1.create_namespaced_pod("default", pod)  # still there while terminating
    assert again.value.status == 409
    v1.create_namespaced_pod("default", island_pod("new", branch="weekly"))  # same host ports
    time.sleep(0.2)
    new = v1.read_namespaced_pod("new", "default")
    assert new.spec.node_name is None
    assert "didn't have free ports" in next(
        c.message for c in new.status.conditions if c.type == "PodScheduled"
    )
    wait_for(lambda: _gone(v1, "old"), timeout=5)
    wait_for(lambda: v1.read_namespaced_pod("new", "default").spec.node_name == "weekly-1")
    with pytest.raises(ApiException) as gone:
        v1.delete_namespaced_pod("old", "default")
    assert gone.value.status == 404


def test_patch_labels_and_annotations_only(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("p"))
    patched = v1.patch_namespaced_pod(
        "p",
        "default",
        {
            "metadata": {
                "labels": {"state": "ready"},
                "annotations": {"islandbot.io/clock": "+86400"},
            }
        },
    )
    assert patched.metadata.labels == {"app": "island", "state": "ready"}
    assert patched.metadata.annotations == {"islandbot.io/clock": "+86400"}
    removed = v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"state": None}}})
    assert removed.metadata.labels == {"app": "island"}
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod("p", "default", {"spec": {"nodeName": "dev-2"}})
    assert err.value.status == 422


def test_services_list_shows_node_ports(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_service(
        "default",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}],
            },
        },
    )
    services = v1.list_service_for_all_namespaces().items
    assert [(s.metadata.name, s.spec.ports[0].node_port) for s in services] == [("web", 30080)]


def _gone(v1: client.CoreV1Api, name: str) -> bool:
    try:
        v1.read_namespaced_pod(name, "default")
    except ApiException as exc:
        return exc.status == 404
    return False
