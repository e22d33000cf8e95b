"""The lifecycle's notices in an island's thread, and why an island failed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.domain.durations import format_duration
from bot.domain.lifecycle_rules import Failure, FailureKind, Notice
from bot.words import pool_text
from bot.words.formatting import clock_time, escape, island_ref, memory_size, utc_time


def explain_unschedulable(message: str, branch: str, memory: str | None) -> str:
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
        f"{explain_unschedulable(str(d.get('message')), branch, d.get('memory'))}"
    ),
    FailureKind.IMAGE_PULL: lambda d, _i, _b: (
        f"its image could not be pulled ({d.get('reason')}: {d.get('message')})"
    ),
    FailureKind.OOM_KILLED: lambda d, i, _b: (
        f"island {island_ref(i)} blew up: OOMKilled"
        + (f" at the {d['limit']} limit" if d.get("limit") else "")
        + (
            f" (its last memory reading: {memory_size(int(d['last_used']))})"
            if d.get("last_used") is not None
            else ""
        )
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
    FailureKind.POD_NOT_CREATED: lambda d, _i, _b: (
        f"its pod could not be created: {d.get('message')}"
    ),
    FailureKind.NOT_ANSWERING: lambda d, _i, _b: (
        f"its server stopped answering on its server port ({d.get('probes')} probes failed)"
    ),
}


def failure_text(failure: Failure, *, island_id: int, branch: str) -> str:
    return _FAILURES[failure.kind](failure.detail, island_id, branch)


def _people_notice(kind: Notice, detail: Mapping[str, Any], ref: str) -> str | None:
    """Notices of what a person did (stop, restart, extend, clock changes)."""
    if kind in (Notice.STOP_REQUESTED, Notice.RESTARTING):
        verb = "stopping" if kind == Notice.STOP_REQUESTED else "restarting (same id and ports)"
        return f"<@{detail.get('by')}> is {verb} island {ref}."
    if kind == Notice.CLOCK_SHIFTED:
        approved = detail.get("approved_by")
        by = f"<@{detail.get('by')}>"
        if approved and approved != detail.get("by"):
            by += f" (approved by <@{approved}>)"
        return (
            f"{by} moved island {ref}'s clock {detail.get('from_clock')} -> "
            f"{detail.get('to_clock')} ({detail.get('shift')})."
        )
    if kind == Notice.CLOCK_FAILED:
        return (
            f"Island {ref}'s clock change asked by <@{detail.get('by')}> failed: "
            f"{escape(str(detail.get('error')))}. Its clock was left as it was."
        )
    if kind == Notice.EXTENDED:
        return (
            f"<@{detail.get('by')}> extended island {ref} by {detail.get('added')}: it now "
            f"expires at {utc_time(detail.get('expires_at'))}."
        )
    return None


def notice_text(
    kind: Notice,
    detail: Mapping[str, Any],
    *,
    island_id: int,
    owner_id: str,
    branch: str,
    ports: Mapping[str, int],
    clock: datetime | None,
    tz: tzinfo,
) -> str:
    """``clock``: the island's, when it is not real time, shown in the team's zone ``tz``."""
    ref = island_ref(island_id)
    if kind == Notice.READY:
        listing = ", ".join(f"{name} {port}" for name, port in ports.items())
        clock_part = f" Clock: {clock_time(clock, tz)}." if clock else ""
        warm = " (a warm island, handed over at once)" if detail.get("warm") else ""
        return (
            f"<@{owner_id}> island {ref} is ready on {detail.get('host')}{warm}: "
            f"{listing}.{clock_part}"
        )
    if kind == Notice.FAILED:
        failure = Failure(FailureKind(str(detail.get("kind"))), detail)
        return (
            f"<@{owner_id}> island {ref} failed: "
            f"{failure_text(failure, island_id=island_id, branch=branch)}. Its pod is kept "
            f"for its logs until you stop it (`/island stop {island_id}`) or it expires."
        )
    if kind == Notice.MEMORY_HIGH:
        return memory_warning(detail, island_id=island_id, owner_id=owner_id, branch=branch)
    if kind == Notice.EXPIRING:
        return (
            f"<@{owner_id}> island {ref} expires at {utc_time(detail.get('expires_at'))}. Extend "
            f"it with `/island extend {island_id} 4h` to keep it."
        )
    told = _people_notice(kind, detail, ref)
    if told is not None:
        return told
    simple = {
        Notice.POOL_MISS: pool_text.miss(detail, branch=branch),
        # these two are shown as their own messages (root message, request); this is the log's
        Notice.ANNOUNCE: f"<@{owner_id}>'s island {ref} on {escape(branch)} is starting.",
        Notice.CLOCK_REQUESTED: f"<@{owner_id}>: a change of island {ref}'s clock waits for "
        "your decision.",
        Notice.SCHEDULED: f"Island {ref} is scheduled on node {detail.get('node')}; "
        "starting its server...",
        Notice.UNSCHEDULABLE: f"Island {ref} is waiting for room: "
        f"{explain_unschedulable(str(detail.get('message')), branch, detail.get('memory'))}. "
        "It keeps trying for a while.",
        Notice.EXPIRED: f"Island {ref} has expired and is being stopped; its ports go back "
        "to the pool.",
    }
    return simple.get(kind, f"Island {ref} is stopped.")


def memory_warning(detail: Mapping[str, Any], *, island_id: int, owner_id: str, branch: str) -> str:
    """Its owner warned before the kernel kills the island: what it uses of its limit, and the
    top of the advice (``MEMORY_HIGH``; ``detail``: used, limit and the size its branch lets it
    be started with instead, ``more``, in bytes)."""
    used, limit = int(detail.get("used", 0)), int(detail.get("limit") or 0)
    more = detail.get("more")
    restart = f"Restart it to start afresh (`/island restart {island_id}`)"
    if more:
        advice = (
            f"{restart}, or start a new one with more memory "
            f"(`/island start {escape(branch)} set memory={memory_size(int(more))}`)."
        )
    else:
        advice = f"{restart}; {escape(branch)} islands cannot have more memory."
    return (
        f"<@{owner_id}> island {island_ref(island_id)} is using {memory_size(used)} of its "
        f"{memory_size(limit)} memory limit; at {memory_size(limit)} it will be killed "
        f"(OOMKilled). {advice}"
    )


def status_line(island_id: int, state: str, branch: str) -> str:
    """The one-line state shown on an island's root message."""
    return f"Island {island_ref(island_id)} ({branch}): {state}"


PLAIN_MAX = 3000  # a notice the chat refused as it was, posted again: well under any limit


def plain(text: str, *, limit: int = PLAIN_MAX) -> str:
    """A notice the chat refused as it was (too long, its blocks refused), as the plain text
    posted instead: cut to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    cut = " … (shortened: the whole notice was too long for the chat)"
    return text[: limit - len(cut)].rstrip() + cut


def rerouted(text: str, channel: str) -> str:
    """A notice for an island's thread that its channel refused, told to the owner instead."""
    return f"(This could not be posted in <#{channel}>, so it comes to you.) {text}"
