"""The resource metrics API (``metrics.k8s.io/v1beta1``) as metrics-server serves it behind the
API server: ``PodMetrics`` and ``NodeMetrics``, computed from the simulated containers' usage
(``kubesim.usage``) at the moment of the request, so that a climbing working set shows at once.

What metrics-server does and this does too: only running containers are reported, and only
once they have run for ``SimConfig.metrics_delay`` (metrics-server needs two scrapes of a
container): a pod with none is left out of lists and its get is 404 NotFound
(``podmetrics.metrics.k8s.io "ns/name" not found``); a pod that does not exist is ``pods "name"
not found``; a NotReady node (its kubelet unreachable) has no metrics, nor do its pods;
``creationTimestamp`` is the time of the request; label selectors and the ``metadata.name``/
``metadata.namespace`` field selectors filter lists; watches are refused (405).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from kubesim import status
from kubesim.cluster import Cluster, PodRuntime
from kubesim.discovery import METRICS_GROUP, METRICS_VERSION
from kubesim.jsonio import json_response
from kubesim.quantity import format_binary, format_nanocores
from kubesim.runtime import ContainerRuntime
from kubesim.selectors import (
    SelectorError,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from kubesim.store import Obj, Store, now_rfc3339
from kubesim.usage import nanocores, working_set

GROUP, VERSION = METRICS_GROUP, METRICS_VERSION
API_VERSION = f"{GROUP}/{VERSION}"
PREFIX = f"/apis/{API_VERSION}"
WINDOW = "15s"  # metrics-server's default --metric-resolution: the window of its CPU rates
# what a node uses besides its pods (kubelet, container runtime, system daemons)
NODE_BASE_MEMORY = 512 * 2**20
NODE_BASE_NANOCORES = 40_000_000
_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def memory_now(ns: str, pod: str, spec: Obj, c: ContainerRuntime, now: float) -> int:
    """A running container's working set at monotonic time ``now``, in bytes: its climb if
    one is under way, else its steady value with its wobble."""
    if c.climb is not None:
        return c.climb.at(now)
    return working_set(ns, pod, spec, now - (c.running_since or now))


def cpu_now(ns: str, pod: str, spec: Obj, c: ContainerRuntime, now: float) -> int:
    return nanocores(ns, pod, spec, now - (c.running_since or now))


def node_is_ready(node: Obj | None) -> bool:
    return node is not None and any(
        cond["type"] == "Ready" and cond["status"] == "True"
        for cond in node["status"].get("conditions", [])
    )


def method_not_supported(resource: str) -> web.Response:
    return status.error(
        405,
        "MethodNotAllowed",
        f'watch is not supported on resources of kind "{resource}.{GROUP}"',
        {"group": GROUP, "kind": resource},
    )


def page_not_found() -> web.Response:
    """What the API server answers for a path no API serves (its handler of last resort is Go's
    ``http.NotFound``): a cluster without metrics-server, asked for the metrics API."""
    return web.Response(
        status=404,
        text="404 page not found\n",
        headers={"X-Content-Type-Options": "nosniff"},
    )


class MetricsApi:
    def __init__(self, store: Store, cluster: Cluster) -> None:
        self.store = store
        self.cluster = cluster

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PREFIX + "/pods", self.list_pods),
            web.get(PREFIX + "/namespaces/{namespace}/pods", self.list_pods),
            web.get(PREFIX + "/namespaces/{namespace}/pods/{name}", self.get_pod),
            web.get(PREFIX + "/nodes", self.list_nodes),
            web.get(PREFIX + "/nodes/{name}", self.get_node),
        ]

    # ---- building the objects ---------------------------------------------------------------

    def _reported(
        self, pod: Obj, runtime: PodRuntime, now: float
    ) -> Iterable[tuple[Obj, ContainerRuntime]]:
        """The pod's containers metrics-server knows of: running for ``metrics_delay``."""
        for spec in pod["spec"]["containers"]:
            c = runtime.containers.get(spec["name"])
            if c is None or c.state != "running" or c.running_since is None:
                continue
            if now - c.running_since >= self.cluster.config.metrics_delay:
                yield spec, c

    def pod_metrics(self, pod: Obj, now: float) -> Obj | None:
        """The pod's ``PodMetrics`` (without kind), or None while it has none."""
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        runtime = self.cluster.runtimes.get((ns, name))
        if runtime is None or pod["status"].get("phase") != "Running":
            return None
        if not node_is_ready(self.store.get("nodes", "", runtime.node)):
            return None
        containers = [
            {
                "name": spec["name"],
                "usage": {
                    "cpu": format_nanocores(cpu_now(ns, name, spec, c, now)),
                    "memory": format_binary(memory_now(ns, name, spec, c, now)),
                },
            }
            for spec, c in self._reported(pod, runtime, now)
        ]
        if not containers:
            return None
        return {
            "metadata": _meta(name, ns, meta.get("labels")),
            "timestamp": now_rfc3339(),
            "window": WINDOW,
            "containers": containers,
        }

    def node_metrics(self, node: Obj, now: float) -> Obj | None:
        """The node's ``NodeMetrics`` (without kind): its pods' running containers plus a base;
        None while the node is NotReady."""
        if not node_is_ready(node):
            return None
        name = node["metadata"]["name"]
        memory, cpu = NODE_BASE_MEMORY, NODE_BASE_NANOCORES
        for (ns, pod_name), runtime in self.cluster.runtimes.items():
            pod = self.store.get("pods", ns, pod_name)
            if runtime.node != name or pod is None:
                continue
            for spec in pod["spec"]["containers"]:
                c = runtime.containers.get(spec["name"])
                if c is not None and c.state == "running":
                    memory += memory_now(ns, pod_name, spec, c, now)
                    cpu += cpu_now(ns, pod_name, spec, c, now)
        return {
            "metadata": _meta(name, None, node["metadata"].get("labels")),
            "timestamp": now_rfc3339(),
            "window": WINDOW,
            "usage": {"cpu": format_nanocores(cpu), "memory": format_binary(memory)},
        }

    # ---- handlers ---------------------------------------------------------------------------

    def _list(self, request: web.Request, resource: str, kind: str, ns: str | None) -> web.Response:
        if request.query.get("watch") in ("true", "1"):
            return method_not_supported(resource)
        try:
            labels = parse_label_selector(request.query.get("labelSelector"))
            fields = parse_field_selector(request.query.get("fieldSelector"), _FIELDS)
        except SelectorError as exc:
            return status.bad_request(str(exc))
        now = time.monotonic()
        build: Callable[[Obj, float], Obj | None]
        build = self.pod_metrics if kind == "PodMetrics" else self.node_metrics
        objects = sorted(
            (
                o
                for o in self.store.items("pods" if kind == "PodMetrics" else "nodes", ns)
                if labels_match(labels, o["metadata"].get("labels")) and fields(o)
            ),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        items = [m for o in objects if (m := build(o, now)) is not None]
        return json_response(
            {"kind": f"{kind}List", "apiVersion": API_VERSION, "metadata": {}, "items": items}
        )

    async def list_pods(self, request: web.Request) -> web.Response:
        return self._list(request, "podmetrics", "PodMetrics", request.match_info.get("namespace"))

    async def list_nodes(self, request: web.Request) -> web.Response:
        return self._list(request, "nodemetrics", "NodeMetrics", None)

    async def get_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod = self.store.get("pods", ns, name)
        if pod is None:
            return status.not_found("pods", name)
        found = self.pod_metrics(pod, time.monotonic())
        if found is None:
            return _no_metrics("podmetrics", f"{ns}/{name}")
        return json_response({"kind": "PodMetrics", "apiVersion": API_VERSION, **found})

    async def get_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        node = self.store.get("nodes", "", name)
        if node is None:
            return status.not_found("nodes", name)
        found = self.node_metrics(node, time.monotonic())
        if found is None:
            return _no_metrics("nodemetrics", name)
        return json_response({"kind": "NodeMetrics", "apiVersion": API_VERSION, **found})


def _meta(name: str, namespace: str | None, labels: dict[str, str] | None) -> Obj:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["creationTimestamp"] = now_rfc3339()
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _no_metrics(resource: str, name: str) -> web.Response:
    """metrics-server's 404 for an object it has no metrics for (``podmetrics.metrics.k8s.io
    "islands/x" not found``)."""
    return status.error(
        404,
        "NotFound",
        f'{resource}.{GROUP} "{name}" not found',
        {"name": name, "group": GROUP, "kind": resource},
    )
