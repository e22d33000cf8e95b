"""What a kubelet makes of a pod spec: its containers (env with the downward API resolved,
host ports by name), the port its readiness probe checks, and the pod status it reports."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

from kubesim.conditions import condition, set_condition
from kubesim.runtime import ContainerRuntime
from kubesim.store import Obj

_FIELD_REFS = {  # the downward API's fieldRef paths kubesim resolves
    "metadata.name": ("metadata", "name"),
    "metadata.namespace": ("metadata", "namespace"),
    "metadata.uid": ("metadata", "uid"),
    "spec.nodeName": ("spec", "nodeName"),
    "spec.serviceAccountName": ("spec", "serviceAccountName"),
    "status.podIP": ("status", "podIP"),
    "status.hostIP": ("status", "hostIP"),
}


def env_value(item: Obj, pod: Obj) -> str:
    """An env var's value: ``value``, or a ``fieldRef`` resolved as the kubelet does."""
    if "value" in item:
        return str(item["value"])
    path = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    where = _FIELD_REFS.get(str(path))
    if where is None:
        return ""
    return str((pod.get(where[0]) or {}).get(where[1]) or "")


def make_containers(pod: Obj, root: Path) -> dict[str, ContainerRuntime]:
    """The pod's containers as the kubelet starts them: env resolved, host ports named, each
    with a directory of its own under ``root``."""
    meta = pod["metadata"]
    containers = {}
    for c in pod["spec"]["containers"]:
        root = root / meta["namespace"] / meta["name"] / c["name"]
        root.mkdir(parents=True, exist_ok=True)
        env = {e["name"]: env_value(e, pod) for e in c.get("env") or [] if "name" in e}
        ports = {
            str(p.get("name") or p["hostPort"]): int(p["hostPort"])
            for p in c.get("ports") or []
            if p.get("hostPort")
        }
        command = [*(c.get("command") or []), *(c.get("args") or [])]
        containers[c["name"]] = ContainerRuntime(
            c["name"], c.get("image", ""), env, root, command, ports
        )
    return containers


def server_port(pod: Obj | None, c: ContainerRuntime) -> int | None:
    """The port the readiness probe checks (named or numbered), else the last port."""
    for spec in (pod or {}).get("spec", {}).get("containers", []):
        if spec["name"] != c.name:
            continue
        probe = (spec.get("readinessProbe") or {}).get("tcpSocket") or {}
        port = probe.get("port")
        if isinstance(port, int):
            return port
        if isinstance(port, str) and port in c.ports:
            return c.ports[port]
    return list(c.ports.values())[-1] if c.ports else None


def container_ready(pod: Obj, c: ContainerRuntime) -> bool:
    if c.state != "running":
        return False
    spec: Obj = next((s for s in pod["spec"]["containers"] if s["name"] == c.name), {})
    if not spec.get("readinessProbe"):
        return True
    if c.readiness_failing:
        return False
    return c.server is not None and c.server.listening


def pod_status(pod: Obj, containers: Iterable[ContainerRuntime], *, node_ready: bool) -> Obj:
    """A copy of ``pod`` with phase, conditions and container statuses recomputed from its
    containers."""
    new = copy.deepcopy(pod)
    st = new["status"]
    cs = list(containers)
    ready = {c.name: container_ready(pod, c) for c in cs}
    st["containerStatuses"] = [c.status(ready[c.name]) for c in cs]
    states = [c.state for c in cs]
    if any(s == "waiting" for s in states):
        phase = "Pending"
    elif any(s == "running" for s in states):
        phase = "Running"
    elif all(c.exit_code == 0 for c in cs):
        phase = "Succeeded"
    else:
        phase = "Failed"
    st["phase"] = phase
    all_ready = all(ready.values()) and node_ready
    reason = None if all_ready else "ContainersNotReady"
    unready = [n for n, r in ready.items() if not r]
    message = (
        None
        if all_ready
        else (
            f"containers with unready status: [{' '.join(unready)}]"
            if unready
            else "node is not ready"
        )
    )
    set_condition(new, condition("ContainersReady", all_ready, reason, message))
    set_condition(new, condition("Ready", all_ready, reason, message))
    return new


def mark_evicted(pod: Obj, message: str) -> None:
    """The status a kubelet gives a pod it evicted under node pressure."""
    pod["status"]["phase"] = "Failed"
    pod["status"]["reason"] = "Evicted"
    pod["status"]["message"] = message
    set_condition(pod, condition("Ready", False, "PodFailed"))
    set_condition(pod, condition("ContainersReady", False, "PodFailed"))
    set_condition(pod, condition("DisruptionTarget", True, "TerminationByKubelet", message))
