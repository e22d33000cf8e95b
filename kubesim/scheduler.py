"""Where a pod fits, with the scheduler's own words when it fits nowhere (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kubesim.quantity import cpu_millis, memory_bytes

Obj = dict[str, Any]


@dataclass(frozen=True)
class NodeView:
    name: str
    labels: dict[str, str]
    cpu_millis: int
    memory_bytes: int
    pods: int
    ready: bool
    unschedulable: bool


def pod_requests(pod: Obj) -> tuple[int, int]:
    cpu = mem = 0
    for c in pod.get("spec", {}).get("containers", []):
        requests = (c.get("resources") or {}).get("requests") or {}
        limits = (c.get("resources") or {}).get("limits") or {}
        # as in Kubernetes, a limit without a request counts as the request
        cpu += cpu_millis(requests.get("cpu", limits.get("cpu", 0)))
        mem += memory_bytes(requests.get("memory", limits.get("memory", 0)))
    return cpu, mem


def host_ports(pod: Obj) -> set[tuple[int, str]]:
    return {
        (p["hostPort"], p.get("protocol", "TCP"))
        for c in pod.get("spec", {}).get("containers", [])
        for p in c.get("ports") or []
        if p.get("hostPort")
    }


@dataclass
class NodeUsage:
    """What the pods bound to one node take of it."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    pods: int = 0
    ports: set[tuple[int, str]] = field(default_factory=set)

    def add(self, cpu: int, mem: int, ports: set[tuple[int, str]]) -> None:
        self.cpu_millis += cpu
        self.memory_bytes += mem
        self.pods += 1
        self.ports |= ports


def choose_node(
    pod: Obj, nodes: list[NodeView], usage: dict[str, NodeUsage]
) -> tuple[str | None, str]:
    """Return (node name, "") or (None, the FailedScheduling message).

    Filters, in the scheduler's order: unschedulable (cordoned), not ready, node selector,
    host ports, resources. Among fitting nodes, the least requested memory wins.
    """
    selector = pod.get("spec", {}).get("nodeSelector") or {}
    cpu, mem = pod_requests(pod)
    ports = host_ports(pod)
    reasons: Counter[str] = Counter()
    fits: list[tuple[int, str]] = []
    for node in nodes:
        if node.unschedulable:
            reasons["node(s) were unschedulable"] += 1
            continue
        if not node.ready:
            reasons["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"] += 1
            continue
        if any(node.labels.get(k) != v for k, v in selector.items()):
            reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            continue
        used = usage.get(node.name) or NodeUsage()
        if ports & used.ports:
            reasons["node(s) didn't have free ports for the requested pod ports"] += 1
            continue
        short = []
        if used.pods + 1 > node.pods:
            short.append("Too many pods")
        if used.cpu_millis + cpu > node.cpu_millis:
            short.append("Insufficient cpu")
        if used.memory_bytes + mem > node.memory_bytes:
            short.append("Insufficient memory")
        if short:
            for s in short:
                reasons[s] += 1
            continue
        fits.append((used.memory_bytes + mem, node.name))
    if fits:
        return min(fits)[1], ""
    detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: x[0]))
    return None, f"0/{len(nodes)} nodes are available: {detail}."
