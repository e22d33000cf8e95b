"""The simulated nodes: their Node objects as a kubelet registers them, and what the scheduler
sees of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from kubesim.conditions import condition
from kubesim.config import NodeSpec
from kubesim.quantity import cpu_millis, memory_bytes
from kubesim.scheduler import NodeView
from kubesim.store import Obj


def node_object(spec: NodeSpec) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": {
                "kubernetes.io/hostname": spec.name,
                "kubernetes.io/os": "linux",
                **spec.labels,
            },
        },
        "spec": {},
        "status": {
            "capacity": {
                "cpu": spec.cpu,
                "memory": spec.memory,
                "pods": str(spec.pods),
            },
            "allocatable": {
                "cpu": spec.cpu,
                "memory": spec.memory,
                "pods": str(spec.pods),
            },
            "addresses": [
                {"type": "InternalIP", "address": spec.address},
                {"type": "Hostname", "address": spec.name},
            ],
            "conditions": [
                condition("Ready", True, "KubeletReady", "kubelet is posting ready status")
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.37.0-kubesim",
                "osImage": "kubesim",
                "containerRuntimeVersion": "kubesim://1",
                "kubeProxyVersion": "",
                "kernelVersion": "6.1.0-kubesim",
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, spec.name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, spec.name)),
                "bootID": str(uuid.uuid4()),
                "architecture": "amd64",
                "operatingSystem": "linux",
            },
        },
    }


def node_views(nodes: Iterable[Obj]) -> list[NodeView]:
    """What the scheduler needs to know of each node."""
    views = []
    for node in nodes:
        alloc = node["status"]["allocatable"]
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node["status"].get("conditions", [])
        )
        views.append(
            NodeView(
                node["metadata"]["name"],
                node["metadata"].get("labels", {}),
                cpu_millis(alloc["cpu"]),
                memory_bytes(alloc["memory"]),
                int(alloc["pods"]),
                ready,
                bool(node["spec"].get("unschedulable")),
            )
        )
    return views


def set_node_ready(node: Obj, ready: bool) -> None:
    """The node's Ready condition as its kubelet posts it, or Unknown (with the unreachable
    taint) once the kubelet stopped posting."""
    node["status"]["conditions"] = [
        condition("Ready", True, "KubeletReady", "kubelet is posting ready status")
        if ready
        else {
            **condition(
                "Ready", False, "NodeStatusUnknown", "Kubelet stopped posting node status."
            ),
            "status": "Unknown",
        }
    ]
    taints = [
        t for t in node["spec"].get("taints", []) if t["key"] != "node.kubernetes.io/unreachable"
    ]
    if not ready:
        taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"})
    node["spec"]["taints"] = taints
