"""Everything said about island clocks: views, history, requests and their outcomes."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.domain.durations import format_duration
from bot.domain.island_clock import ClockFault
from bot.domain.records import ClockRecord, ClockView
from bot.words.formatting import clock_offset, clock_time, escape, island_ref


def clock_busy(island_id: int) -> str:
    return f"Another clock change of island {island_ref(island_id)} is being applied."


BUTTON_APPROVE = "Approve"


BUTTON_REJECT = "Reject"


def clock_view(view: ClockView, tz: tzinfo, now: datetime) -> str:
    ref = island_ref(view.island_id)
    if view.offset_s == 0:
        head = f"Island {ref}'s clock runs on real time: {clock_time(now, tz)}."
    else:
        shift = format_duration(timedelta(seconds=abs(view.offset_s)))
        way = "ahead of" if view.offset_s > 0 else "behind"
        head = f"Island {ref}'s clock reads {clock_time(view.clock, tz)}, {shift} {way} real time."
    if view.last is not None:
        head += (
            f" Set by <@{view.last.requested_by}> at "
            f"{clock_time(view.last.applied_at or view.last.requested_at, tz)}."
        )
    return head


def clock_history(island_id: int, records: Sequence[ClockRecord], tz: tzinfo) -> str:
    if not records:
        return f"Island {island_ref(island_id)}'s clock has never been changed."
    lines = [f"Clock changes of island {island_ref(island_id)}, newest first:"]
    for r in records:
        decided = f", decided by <@{r.decided_by}>" if r.decided_by else ""
        why = f" ({escape(r.failure_reason[:120])})" if r.failure_reason else ""
        lines.append(
            f"- {clock_time(r.requested_at, tz)} <@{r.requested_by}>: "
            f"{clock_offset(r.from_offset_s)} -> {clock_offset(r.to_offset_s)}, "
            f"{r.state}{decided}{why}"
        )
    return "\n".join(lines)


def clock_request(r: ClockRecord, owner_id: str, tz: tzinfo, now: datetime) -> str:
    target = (
        clock_time(r.target_at, tz)
        if r.target_at is not None
        else ("real time" if r.kind == "now" else clock_offset(r.to_offset_s - r.from_offset_s))
    )
    head = (
        f"<@{owner_id}>: <@{r.requested_by}> asks to move island {island_ref(r.island_id)}'s "
        f"clock to {target} (now {clock_time(now + timedelta(seconds=r.from_offset_s), tz)})."
    )
    if r.state == "pending":
        return head + f" The request expires at {clock_time(r.expires_at, tz)}."
    outcome = {
        "applying": f"approved by <@{r.decided_by}>, being applied",
        "applied": f"approved by <@{r.decided_by}> and applied",
        "rejected": f"rejected by <@{r.decided_by}>",
        "expired": "expired without a decision",
        "superseded": "superseded by a newer request",
        "failed": f"approved by <@{r.decided_by}> but failed: {escape(r.failure_reason or '')}",
    }.get(r.state, r.state)
    return f"{head} *{outcome[:1].upper() + outcome[1:]}.*"


def clock_requested(island_id: int, owner_id: str) -> str:
    return (
        f"Your request to move island {island_ref(island_id)}'s clock is in the channel; "
        f"<@{owner_id}> (or an admin) decides."
    )


def clock_backwards(island_id: int) -> str:
    return (
        f"Note: island {island_ref(island_id)}'s clock goes backwards; timers that wait on the "
        "wall clock stall until it catches up."
    )


def clock_applied(island_id: int, to_offset_s: int) -> str:
    return f"Island {island_ref(island_id)}'s clock is now at {clock_offset(to_offset_s)}."


def clock_content_refused(content: str) -> str:
    return f"refusing to write {content!r} into the clock file"


def clock_pod_gone() -> str:
    return "the island's pod is gone"


def clock_file_env_missing(variable: str) -> str:
    return f"the server container has no {variable}"


def clock_write_failed(exit_code: int, stderr: str) -> str:
    return f"writing the clock file failed (exit {exit_code}): {shlex.quote(stderr)}"


def clock_not_moved(seen_s: float | None, expected_s: int) -> str:
    reads = f"it reads {round(seen_s)}s" if seen_s is not None else "it could not be read"
    return f"the island's clock did not move as expected: {reads} from real time, not {expected_s}s"


def _cluster(message: str) -> str:
    return message  # the cluster's own words


_FAULTS: dict[ClockFault, Callable[..., str]] = {
    ClockFault.BUSY: clock_busy,
    ClockFault.CLUSTER: _cluster,
    ClockFault.CONTENT_REFUSED: clock_content_refused,
    ClockFault.POD_GONE: clock_pod_gone,
    ClockFault.ENV_MISSING: clock_file_env_missing,
    ClockFault.WRITE_FAILED: clock_write_failed,
    ClockFault.NOT_MOVED: clock_not_moved,
}


def clock_fault(fault: ClockFault, detail: Mapping[str, Any]) -> str:
    """Why a clock change was not made, from the fault and its details."""
    return _FAULTS[fault](**detail)


def clock_failed(island_id: int, reason: str) -> str:
    return f"Island {island_ref(island_id)}'s clock was not changed: {escape(reason)[:300]}"
