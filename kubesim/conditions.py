"""Pod and node conditions as the API server shows them, and what change of a pod's status is
worth a new resourceVersion (pure)."""

from __future__ import annotations

from typing import Any

from kubesim.store import Obj, now_rfc3339


def condition(
    kind: str, status: bool, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now_rfc3339(),
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def set_condition(pod: Obj, cond: dict[str, Any]) -> None:
    conds = pod["status"].setdefault("conditions", [])
    for i, old in enumerate(conds):
        if old["type"] == cond["type"]:
            if old["status"] == cond["status"]:
                cond["lastTransitionTime"] = old.get("lastTransitionTime")
            cond["observedGeneration"] = pod["metadata"].get("generation", 1)
            conds[i] = cond
            return
    cond["observedGeneration"] = pod["metadata"].get("generation", 1)
    conds.append(cond)


def significant(pod: Obj) -> Any:
    """The parts of a pod whose change is worth a new resourceVersion."""
    st = pod["status"]
    conds = [
        (c["type"], c["status"], c.get("reason"), c.get("message"))
        for c in st.get("conditions", [])
    ]
    return (
        st.get("phase"),
        conds,
        [
            (
                c["name"],
                c["ready"],
                next(iter(c["state"])),
                c["state"].get("waiting", {}).get("reason"),
            )
            for c in st.get("containerStatuses", [])
        ],
    )
