"""Discovery documents: enough for the official client and real kubectl (see kubectl-notes)."""

from __future__ import annotations

from typing import Any

# name, kind, namespaced, verbs, short names
RESOURCES: list[tuple[str, str, bool, list[str], list[str]]] = [
    ("pods", "Pod", True, ["create", "delete", "get", "list", "patch", "watch"], ["po"]),
    ("pods/log", "Pod", True, ["get"], []),
    ("pods/exec", "PodExecOptions", True, ["create", "get"], []),
    ("nodes", "Node", False, ["get", "list", "patch", "watch"], ["no"]),
    ("events", "Event", True, ["create", "get", "list", "watch"], ["ev"]),
    ("services", "Service", True, ["create", "delete", "get", "list", "watch"], ["svc"]),
    ("namespaces", "Namespace", False, ["create", "get", "list", "watch"], ["ns"]),
    (
        "resourcequotas",
        "ResourceQuota",
        True,
        ["create", "delete", "get", "list", "watch"],
        ["quota"],
    ),
]

VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0-kubesim",
    "gitCommit": "kubesim",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


# the resource metrics API metrics-server adds (an aggregated API): name, kind, namespaced
METRICS_GROUP, METRICS_VERSION = "metrics.k8s.io", "v1beta1"
METRICS_RESOURCES: list[tuple[str, str, bool]] = [
    ("nodes", "NodeMetrics", False),
    ("pods", "PodMetrics", True),
]


def metrics_api_group() -> dict[str, Any]:
    """``/apis/metrics.k8s.io``, and its entry in ``/apis``."""
    version = {"groupVersion": f"{METRICS_GROUP}/{METRICS_VERSION}", "version": METRICS_VERSION}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": METRICS_GROUP,
        "versions": [version],
        "preferredVersion": version,
    }


def api_group_list(*, metrics: bool = False) -> dict[str, Any]:
    """``/apis``: the metrics group when metrics-server runs (kubectl top looks for it here)."""
    groups = []
    if metrics:
        group = metrics_api_group()
        groups.append({k: group[k] for k in ("name", "versions", "preferredVersion")})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def metrics_resource_list() -> dict[str, Any]:
    """``/apis/metrics.k8s.io/v1beta1``, as metrics-server registers it."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{METRICS_GROUP}/{METRICS_VERSION}",
        "resources": [
            {
                "name": name,
                "singularName": "",
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["get", "list"],
            }
            for name, kind, namespaced in METRICS_RESOURCES
        ],
    }


def api_resource_list() -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "v1",
        "resources": [
            {
                "name": name,
                "singularName": "" if "/" in name else kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": verbs,
                **({"shortNames": short} if short else {}),
            }
            for name, kind, namespaced, verbs, short in RESOURCES
        ],
    }


def openapi_v3_root() -> dict[str, Any]:
    return {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=kubesim"}}}


def openapi_v3_core() -> dict[str, Any]:
    """Just enough for kubectl to use server-side field validation on pods."""
    param = {
        "name": "fieldValidation",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Ignore, Warn or Strict",
    }
    gvk = {"group": "", "version": "v1", "kind": "Pod"}

    def op(name: str, action: str) -> dict[str, Any]:
        return {
            "operationId": name,
            "parameters": [param],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "responses": {"200": {"description": "OK"}},
        }

    # kubectl's query-parameter verifier looks at the PATCH operations of the kind.
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0-kubesim"},
        "paths": {
            "/api/v1/namespaces/{namespace}/pods": {
                "post": op("createCoreV1NamespacedPod", "post")
            },
            "/api/v1/namespaces/{namespace}/pods/{name}": {
                "patch": op("patchCoreV1NamespacedPod", "patch")
            },
        },
        "components": {"schemas": {}},
    }
