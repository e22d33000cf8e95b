"""ResourceQuota admission for pods, as the API server's quota admission plugin does it: a pod
whose create would take its namespace past a quota's ``spec.hard`` is refused with 403
Forbidden ("exceeded quota"), and one that leaves out a resource a quota tracks is refused too
("must specify"). Tracked: ``pods``, ``requests.cpu``/``cpu``, ``requests.memory``/``memory``,
``limits.cpu`` and ``limits.memory``; pods that have finished (Succeeded, Failed) count for
nothing. (``status.used`` is not kept up to date: admission computes usage from the pods.)"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from aiohttp import web

from kubesim import status
from kubesim.quantity import parse_quantity
from kubesim.store import Obj, Store

# quota resource name -> (which part of a container's resources, which resource)
_TRACKED = {
    "requests.cpu": ("requests", "cpu"),
    "cpu": ("requests", "cpu"),
    "requests.memory": ("requests", "memory"),
    "memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
}
_FINISHED = frozenset({"Succeeded", "Failed"})


def _containers(pod: Obj) -> Iterable[dict[str, Any]]:
    return pod.get("spec", {}).get("containers") or []


def _amount(container: dict[str, Any], part: str, resource: str) -> Any:
    """A container's request or limit; a request left out defaults to the limit (as the API
    server's defaulting sets it)."""
    resources = container.get("resources") or {}
    value = (resources.get(part) or {}).get(resource)
    if value is None and part == "requests":
        value = (resources.get("limits") or {}).get(resource)
    return value


def _unspecified(pod: Obj, part: str, resource: str) -> list[str]:
    return sorted(c["name"] for c in _containers(pod) if _amount(c, part, resource) is None)


def usage(pod: Obj, name: str) -> Decimal:
    """What ``pod`` takes of the quota resource ``name``."""
    if name == "pods":
        return Decimal(1)
    part, resource = _TRACKED[name]
    return sum(
        (parse_quantity(_amount(c, part, resource) or 0) for c in _containers(pod)), Decimal(0)
    )


def _show(name: str, amount: Decimal) -> str:
    if name in ("pods",) or name.endswith("cpu") or amount % 1 or amount < 2**20:
        return f"{name}={amount.normalize():f}"
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20)):
        if amount % size == 0:
            return f"{name}={amount // size}{suffix}"
    return f"{name}={amount:f}"


def admit(store: Store, pod: Obj) -> web.Response | None:
    """None when every quota of the pod's namespace has room for it, else the 403."""
    namespace = pod["metadata"]["namespace"]
    name = pod["metadata"]["name"]
    live = [
        p
        for p in store.items("pods", namespace)
        if p.get("status", {}).get("phase") not in _FINISHED
    ]
    for quota in sorted(
        store.items("resourcequotas", namespace), key=lambda q: q["metadata"]["name"]
    ):
        hard: dict[str, Any] = quota.get("spec", {}).get("hard") or {}
        tracked = sorted(r for r in hard if r == "pods" or r in _TRACKED)
        quota_name = quota["metadata"]["name"]
        missing = [
            f"{r} for: {','.join(names)}"
            for r in tracked
            if r != "pods" and (names := _unspecified(pod, *_TRACKED[r]))
        ]
        if missing:
            return _forbidden(
                name, f"failed quota: {quota_name}: must specify {'; '.join(missing)}"
            )
        over = []
        for resource in tracked:
            limit = parse_quantity(hard[resource])
            used = sum((usage(p, resource) for p in live), Decimal(0))
            wanted = usage(pod, resource)
            if used + wanted > limit:
                over.append((resource, wanted, used, limit))
        if over:
            requested = ",".join(_show(r, w) for r, w, _u, _l in over)
            used_text = ",".join(_show(r, u) for r, _w, u, _l in over)
            limited = ",".join(_show(r, lim) for r, _w, _u, lim in over)
            return _forbidden(
                name,
                f"exceeded quota: {quota_name}, requested: {requested}, used: {used_text}, "
                f"limited: {limited}",
            )
    return None


def _forbidden(name: str, why: str) -> web.Response:
    return status.error(
        403, "Forbidden", f'pods "{name}" is forbidden: {why}', {"name": name, "kind": "pods"}
    )
