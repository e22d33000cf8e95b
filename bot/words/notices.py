"""The lifecycle's notices in an island's thread, and why an island failed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.domain.lifecycle_rules import Failure, FailureKind, Notice
from bot.words import pool_text
from bot.words.catalogue import _
from bot.words.formatting import (
    clock_time,
    escape,
    format_duration,
    island_ref,
    memory_size,
    utc_time,
)


def explain_unschedulable(message: str, branch: str, memory: str | None) -> str:
    if "Insufficient memory" in message and memory:
        return _(
            "no {branch} node has {memory} free ({message})",
            branch=branch,
            memory=memory,
            message=message,
        )
    if "didn't have free ports" in message:
        return _(
            "the island's ports are taken on every {branch} node ({message})",
            branch=branch,
            message=message,
        )
    if "node affinity/selector" in message and "Insufficient" not in message:
        return _("there is no usable {branch} node ({message})", branch=branch, message=message)
    return message


def _waited(d: Mapping[str, Any]) -> str:
    return format_duration(timedelta(seconds=int(d.get("waited_s", 0))))


def _oom_killed(d: Mapping[str, Any], island_id: int) -> str:
    island = island_ref(island_id)
    limit = d.get("limit")
    if d.get("last_used") is not None:
        last = memory_size(int(d["last_used"]))
        if limit:
            return _(
                "island {island} blew up: OOMKilled at the {limit} limit (its last memory "
                "reading: {last})",
                island=island,
                limit=limit,
                last=last,
            )
        return _(
            "island {island} blew up: OOMKilled (its last memory reading: {last})",
            island=island,
            last=last,
        )
    if limit:
        return _(
            "island {island} blew up: OOMKilled at the {limit} limit", island=island, limit=limit
        )
    return _("island {island} blew up: OOMKilled", island=island)


_FAILURES: dict[FailureKind, Callable[[Mapping[str, Any], int, str], str]] = {
    FailureKind.UNSCHEDULABLE: lambda d, _i, branch: _(
        "could not be scheduled for {waited}: {why}",
        waited=_waited(d),
        why=explain_unschedulable(str(d.get("message")), branch, d.get("memory")),
    ),
    FailureKind.IMAGE_PULL: lambda d, _i, _b: _(
        "its image could not be pulled ({reason}: {message})",
        reason=d.get("reason"),
        message=d.get("message"),
    ),
    FailureKind.OOM_KILLED: lambda d, i, _b: _oom_killed(d, i),
    FailureKind.CRASHED: lambda d, _i, _b: _(
        "its server exited with code {code} ({reason})",
        code=d.get("exit_code"),
        reason=d.get("reason") or "Error",  # Kubernetes' word for it, as in its events
    ),
    FailureKind.EVICTED: lambda d, _i, _b: _(
        "evicted by Kubernetes: {message}", message=d.get("message")
    ),
    FailureKind.POD_DELETED: lambda _d, _i, _b: _("its pod was deleted outside islandbot"),
    FailureKind.POD_DELETING: lambda _d, _i, _b: _(
        "its pod is being deleted by the cluster (node lost, or deleted by someone)"
    ),
    FailureKind.NOT_READY: lambda d, _i, _b: _(
        "its server did not answer within {waited}", waited=_waited(d)
    ),
    FailureKind.POD_REFUSED: lambda d, _i, _b: _(
        "Kubernetes refused its pod: {message}", message=d.get("message")
    ),
    FailureKind.POD_NOT_CREATED: lambda d, _i, _b: _(
        "its pod could not be created: {message}", message=d.get("message")
    ),
    FailureKind.NOT_ANSWERING: lambda d, _i, _b: _(
        "its server stopped answering on its server port ({probes} probes failed)",
        probes=d.get("probes"),
    ),
}


def failure_text(failure: Failure, *, island_id: int, branch: str) -> str:
    """Why an island failed, in the current language (kept as its ``failure_reason``)."""
    return _FAILURES[failure.kind](failure.detail, island_id, branch)


def _added(detail: Mapping[str, Any]) -> Any:
    """How much an extension added: ``added_s`` (seconds) in the current language, else the
    ``added`` text an older notice carries."""
    seconds = detail.get("added_s")
    if seconds is not None:
        return format_duration(timedelta(seconds=int(seconds)))
    return detail.get("added")


def _people_notice(  # noqa: PLR0911 - one return per notice, each its whole sentence
    kind: Notice, detail: Mapping[str, Any], ref: str
) -> str | None:
    """Notices of what a person did (stop, restart, extend, clock changes)."""
    by = detail.get("by")
    if kind == Notice.STOP_REQUESTED:
        return _("<@{by}> is stopping island {island}.", by=by, island=ref)
    if kind == Notice.RESTARTING:
        return _("<@{by}> is restarting (same id and ports) island {island}.", by=by, island=ref)
    if kind == Notice.CLOCK_SHIFTED:
        approved = detail.get("approved_by")
        values = {
            "by": by,
            "island": ref,
            "from_clock": detail.get("from_clock"),
            "to_clock": detail.get("to_clock"),
            "shift": _shift(detail),
        }
        if approved and approved != by:
            return _(
                "<@{by}> (approved by <@{approved}>) moved island {island}'s clock {from_clock} "
                "-> {to_clock} ({shift}).",
                approved=approved,
                **values,
            )
        return _(
            "<@{by}> moved island {island}'s clock {from_clock} -> {to_clock} ({shift}).", **values
        )
    if kind == Notice.CLOCK_FAILED:
        return _(
            "Island {island}'s clock change asked by <@{by}> failed: {error}. Its clock was left "
            "as it was.",
            island=ref,
            by=by,
            error=escape(str(detail.get("error"))),
        )
    if kind == Notice.EXTENDED:
        return _(
            "<@{by}> extended island {island} by {added}: it now expires at {expires}.",
            by=by,
            island=ref,
            added=_added(detail),
            expires=utc_time(detail.get("expires_at")),
        )
    return None


def _ready(
    detail: Mapping[str, Any], ref: str, owner_id: str, ports: Mapping[str, int], clock: str | None
) -> str:
    values = {
        "owner": owner_id,
        "island": ref,
        "host": detail.get("host"),
        "ports": ", ".join(f"{name} {port}" for name, port in ports.items()),
    }
    if detail.get("warm"):
        if clock:
            return _(
                "<@{owner}> island {island} is ready on {host} (a warm island, handed over at "
                "once): {ports}. Clock: {clock}.",
                clock=clock,
                **values,
            )
        return _(
            "<@{owner}> island {island} is ready on {host} (a warm island, handed over at once): "
            "{ports}.",
            **values,
        )
    if clock:
        return _(
            "<@{owner}> island {island} is ready on {host}: {ports}. Clock: {clock}.",
            clock=clock,
            **values,
        )
    return _("<@{owner}> island {island} is ready on {host}: {ports}.", **values)


def notice_text(  # noqa: PLR0911 - one return per notice, each its whole sentence
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
        return _ready(detail, ref, owner_id, ports, clock_time(clock, tz) if clock else None)
    if kind == Notice.FAILED:
        failure = Failure(FailureKind(str(detail.get("kind"))), detail)
        return _(
            "<@{owner}> island {island} failed: {reason}. Its pod is kept for its logs until you "
            "stop it (`/island stop {island_id}`) or it expires.",
            owner=owner_id,
            island=ref,
            reason=failure_text(failure, island_id=island_id, branch=branch),
            island_id=island_id,
        )
    if kind == Notice.MEMORY_HIGH:
        return memory_warning(detail, island_id=island_id, owner_id=owner_id, branch=branch)
    if kind == Notice.EXPIRING:
        return _(
            "<@{owner}> island {island} expires at {expires}. Extend it with `/island extend "
            "{island_id} 4h` to keep it.",
            owner=owner_id,
            island=ref,
            expires=utc_time(detail.get("expires_at")),
            island_id=island_id,
        )
    told = _people_notice(kind, detail, ref)
    if told is not None:
        return told
    if kind == Notice.POOL_MISS:
        return pool_text.miss(detail, branch=branch)
    # these two are shown as their own messages (root message, request); this is the log's
    if kind == Notice.ANNOUNCE:
        return _(
            "<@{owner}>'s island {island} on {branch} is starting.",
            owner=owner_id,
            island=ref,
            branch=escape(branch),
        )
    if kind == Notice.CLOCK_REQUESTED:
        return _(
            "<@{owner}>: a change of island {island}'s clock waits for your decision.",
            owner=owner_id,
            island=ref,
        )
    if kind == Notice.SCHEDULED:
        return _(
            "Island {island} is scheduled on node {node}; starting its server...",
            island=ref,
            node=detail.get("node"),
        )
    if kind == Notice.UNSCHEDULABLE:
        return _(
            "Island {island} is waiting for room: {why}. It keeps trying for a while.",
            island=ref,
            why=explain_unschedulable(str(detail.get("message")), branch, detail.get("memory")),
        )
    if kind == Notice.EXPIRED:
        return _(
            "Island {island} has expired and is being stopped; its ports go back to the pool.",
            island=ref,
        )
    return _("Island {island} is stopped.", island=ref)


def memory_warning(detail: Mapping[str, Any], *, island_id: int, owner_id: str, branch: str) -> str:
    """Its owner warned before the kernel kills the island: what it uses of its limit, and the
    top of the advice (``MEMORY_HIGH``; ``detail``: used, limit and the size its branch lets it
    be started with instead, ``more``, in bytes)."""
    used, limit = int(detail.get("used", 0)), int(detail.get("limit") or 0)
    more = detail.get("more")
    values = {
        "owner": owner_id,
        "island": island_ref(island_id),
        "used": memory_size(used),
        "limit": memory_size(limit),
        "island_id": island_id,
        "branch": escape(branch),
    }
    if more:
        return _(
            "<@{owner}> island {island} is using {used} of its {limit} memory limit; at {limit} "
            "it will be killed (OOMKilled). Restart it to start afresh (`/island restart "
            "{island_id}`), or start a new one with more memory (`/island start {branch} set "
            "memory={more}`).",
            more=memory_size(int(more)),
            **values,
        )
    return _(
        "<@{owner}> island {island} is using {used} of its {limit} memory limit; at {limit} it "
        "will be killed (OOMKilled). Restart it to start afresh (`/island restart {island_id}`); "
        "{branch} islands cannot have more memory.",
        **values,
    )


def status_line(island_id: int, state: str, branch: str) -> str:
    """The one-line state shown on an island's root message."""
    return _(
        "Island {island} ({branch}): {state}",
        island=island_ref(island_id),
        branch=branch,
        state=state,
    )


PLAIN_MAX = 3000  # a notice the chat refused as it was, posted again: well under any limit


def plain(text: str, *, limit: int = PLAIN_MAX) -> str:
    """A notice the chat refused as it was (too long, its blocks refused), as the plain text
    posted instead: cut to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    cut = " … " + _("(shortened: the whole notice was too long for the chat)")
    return text[: limit - len(cut)].rstrip() + cut


def rerouted(text: str, channel: str) -> str:
    """A notice for an island's thread that its channel refused, told to the owner instead."""
    return _(
        "(This could not be posted in <#{channel}>, so it comes to you.) {text}",
        channel=channel,
        text=text,
    )


def _shift(detail: Mapping[str, Any]) -> str:
    """How far a clock moved: ``+2d``, ``-1h30m`` (a notice written before ``shift_s``: its
    English text)."""
    seconds = detail.get("shift_s")
    if not isinstance(seconds, int):
        return str(detail.get("shift"))
    sign = "+" if seconds >= 0 else "-"
    return sign + format_duration(timedelta(seconds=abs(seconds)))
