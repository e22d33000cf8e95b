"""Every sentence islandbot shows a person, in one place, so wording and tone stay consistent."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.core.durations import format_duration
from bot.core.lifecycle import Failure, FailureKind, Notice


def island_ref(island_id: int) -> str:
    return f"#{island_id}"


def quota_exceeded(*, limit: int, island_ids: Sequence[int]) -> str:
    refs = ", ".join(island_ref(i) for i in island_ids)
    return (
        f"You already have {len(island_ids)} live islands ({refs}); the limit is {limit} per "
        f"person. Stop one with `/island stop <id>` and try again."
    )


def ports_exhausted(*, port_range: str, live_islands: int) -> str:
    return (
        f"no free port block in {port_range}: {live_islands} islands live. "
        "Try again when an island has stopped, or ask an admin to widen the port range."
    )


def request_key_taken(*, request_key: str) -> str:
    return f"request {request_key!r} was already used by someone else; nothing was started."


def island_not_found(island_id: int) -> str:
    return f"There is no island {island_ref(island_id)}."


def ports_still_needed(island_id: int, state: str) -> str:
    return (
        f"Island {island_ref(island_id)} is {state}: its ports are freed only once it is "
        "stopped and its pod is gone."
    )


def unknown_branch(branch: str, known: Sequence[str]) -> str:
    return f"There is no branch {branch!r}. Known branches: {', '.join(known)}."


# ---- lifecycle ------------------------------------------------------------------------------


def _explain_unschedulable(message: str, branch: str, memory: str | None) -> str:
    if "Insufficient memory" in message and memory:
        return f"no {branch} node has {memory} free ({message})"
    if "didn't have free ports" in message:
        return f"the island's ports are taken on every {branch} node ({message})"
    if "node affinity/selector" in message and "Insufficient" not in message:
        return f"there is no usable {branch} node ({message})"
    return message


def _waited(d: Mapping[str, Any]) -> str:
    return format_duration(timedelta(seconds=int(d.get("waited_s", 0))))


_FAILURES: dict[FailureKind, Callable[[Mapping[str, Any], int, str], str]] = {
    FailureKind.UNSCHEDULABLE: lambda d, _i, branch: (
        f"could not be scheduled for {_waited(d)}: "
        f"{_explain_unschedulable(str(d.get('message')), branch, d.get('memory'))}"
    ),
    FailureKind.IMAGE_PULL: lambda d, _i, _b: (
        f"its image could not be pulled ({d.get('reason')}: {d.get('message')})"
    ),
    FailureKind.OOM_KILLED: lambda d, i, _b: (
        f"island {island_ref(i)} blew up: OOMKilled"
        + (f" at the {d['limit']} limit" if d.get("limit") else "")
    ),
    FailureKind.CRASHED: lambda d, _i, _b: (
        f"its server exited with code {d.get('exit_code')} ({d.get('reason') or 'Error'})"
    ),
    FailureKind.EVICTED: lambda d, _i, _b: f"evicted by Kubernetes: {d.get('message')}",
    FailureKind.POD_DELETED: lambda _d, _i, _b: "its pod was deleted outside islandbot",
    FailureKind.POD_DELETING: lambda _d, _i, _b: (
        "its pod is being deleted by the cluster (node lost, or deleted by someone)"
    ),
    FailureKind.NOT_READY: lambda d, _i, _b: f"its server did not answer within {_waited(d)}",
    FailureKind.POD_REFUSED: lambda d, _i, _b: f"Kubernetes refused its pod: {d.get('message')}",
    FailureKind.NOT_ANSWERING: lambda d, _i, _b: (
        f"its server stopped answering on its server port ({d.get('probes')} probes failed)"
    ),
}


def failure_text(failure: Failure, *, island_id: int, branch: str) -> str:
    return _FAILURES[failure.kind](failure.detail, island_id, branch)


def notice_text(
    kind: Notice,
    detail: Mapping[str, Any],
    *,
    island_id: int,
    owner_id: str,
    branch: str,
    ports: Mapping[str, int],
    clock: str | None,
) -> str:
    ref = island_ref(island_id)
    if kind == Notice.READY:
        listing = ", ".join(f"{name} {port}" for name, port in ports.items())
        clock_part = f" Clock: {clock}." if clock else ""
        return (
            f"<@{owner_id}> island {ref} is ready on {detail.get('host')}: {listing}.{clock_part}"
        )
    if kind == Notice.FAILED:
        failure = Failure(FailureKind(str(detail.get("kind"))), detail)
        return (
            f"<@{owner_id}> island {ref} failed: "
            f"{failure_text(failure, island_id=island_id, branch=branch)}. Its pod is kept "
            f"for its logs until you stop it (`/island stop {island_id}`) or it expires."
        )
    if kind == Notice.EXPIRING:
        when = detail.get("expires_at")
        at = when.strftime("%Y-%m-%d %H:%M UTC") if isinstance(when, datetime) else str(when)
        return (
            f"<@{owner_id}> island {ref} expires at {at}. Extend it with "
            f"`/island extend {island_id} 4h` to keep it."
        )
    simple = {
        Notice.SCHEDULED: f"Island {ref} is scheduled on node {detail.get('node')}; "
        "starting its server...",
        Notice.UNSCHEDULABLE: f"Island {ref} is waiting for room: "
        f"{_explain_unschedulable(str(detail.get('message')), branch, detail.get('memory'))}. "
        "It keeps trying for a while.",
        Notice.EXPIRED: f"Island {ref} has expired and is being stopped; its ports go back "
        "to the pool.",
    }
    return simple.get(kind, f"Island {ref} is stopped.")


def status_line(island_id: int, state: str, branch: str) -> str:
    """The one-line state shown on an island's root message."""
    return f"Island {island_ref(island_id)} ({branch}): {state}"
