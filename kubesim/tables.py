"""``kubectl get`` tables (``Accept: ...;as=Table;v=v1;g=meta.k8s.io``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def _age(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    secs = int((datetime.now(UTC) - then).total_seconds())
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def _pod_status(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    st = pod.get("status", {})
    if st.get("reason"):
        return str(st["reason"])
    for cs in st.get("containerStatuses", []):
        state = cs.get("state", {})
        if "waiting" in state and state["waiting"].get("reason"):
            return str(state["waiting"]["reason"])
        if (
            "terminated" in state
            and state["terminated"].get("reason")
            and st.get("phase") != "Running"
        ):
            return str(state["terminated"]["reason"])
    for cond in st.get("conditions", []):
        if cond["type"] == "PodScheduled" and cond["status"] == "False":
            return "Pending"
    return str(st.get("phase", "Pending"))


def _pod_row(pod: Obj) -> list[Any]:
    st = pod.get("status", {})
    statuses = st.get("containerStatuses", [])
    ready = sum(1 for c in statuses if c.get("ready"))
    total = len(pod["spec"].get("containers", []))
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(pod),
        0,
        _age(pod["metadata"].get("creationTimestamp")),
        st.get("podIP", "<none>"),
        pod["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def _node_row(node: Obj) -> list[Any]:
    ready = next(
        (c["status"] for c in node["status"].get("conditions", []) if c["type"] == "Ready"),
        "Unknown",
    )
    status = "Ready" if ready == "True" else "NotReady"
    if node["spec"].get("unschedulable"):
        status += ",SchedulingDisabled"
    ip = next(
        (a["address"] for a in node["status"].get("addresses", []) if a["type"] == "InternalIP"),
        "<none>",
    )
    return [
        node["metadata"]["name"],
        status,
        "<none>",
        _age(node["metadata"].get("creationTimestamp")),
        node["status"]["nodeInfo"]["kubeletVersion"],
        ip,
    ]


def _event_row(ev: Obj) -> list[Any]:
    inv = ev["involvedObject"]
    return [
        _age(ev.get("lastTimestamp")),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
        ev.get("message", ""),
    ]


_COLUMNS = {
    "pods": (
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES",
        ],
        [0, 0, 0, 0, 0, 1, 1, 1, 1],
        _pod_row,
    ),
    "nodes": (
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"],
        [0, 0, 0, 0, 0, 1],
        _node_row,
    ),
    "events": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], [0, 0, 0, 0, 0], _event_row),
}


def wants_table(accept: str) -> bool:
    first = accept.split(",", maxsplit=1)[0]
    return "as=Table" in first


def to_table(kind: str, items: list[Obj], rv: str) -> Obj | None:
    if kind not in _COLUMNS:
        return None
    names, priorities, row = _COLUMNS[kind]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [
            {
                "name": n,
                "type": "string",
                "format": "name" if n == "NAME" else "",
                "description": n,
                "priority": p,
            }
            for n, p in zip(names, priorities, strict=True)
        ],
        "rows": [
            {
                "cells": row(o),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                },
            }
            for o in items
        ],
    }
