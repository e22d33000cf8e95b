"""Everything said about island clocks: views, history, requests and their outcomes."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.domain.island_clock import ClockFault
from bot.domain.records import ClockRecord, ClockView
from bot.words.catalogue import N_, _, p_
from bot.words.formatting import (
    clock_offset,
    clock_time,
    escape,
    format_duration,
    island_ref,
    sentences,
)


def clock_busy(island_id: int) -> str:
    return _(
        "Another clock change of island {island} is being applied.", island=island_ref(island_id)
    )


BUTTON_APPROVE = N_("Approve")  # translated where shown: _(BUTTON_APPROVE)


BUTTON_REJECT = N_("Reject")


def clock_view(view: ClockView, tz: tzinfo, now: datetime) -> str:
    ref = island_ref(view.island_id)
    if view.offset_s == 0:
        head = _(
            "Island {island}'s clock runs on real time: {time}.",
            island=ref,
            time=clock_time(now, tz),
        )
    else:
        shift = format_duration(timedelta(seconds=abs(view.offset_s)))
        time = clock_time(view.clock, tz)
        if view.offset_s > 0:
            head = _(
                "Island {island}'s clock reads {time}, {shift} ahead of real time.",
                island=ref,
                time=time,
                shift=shift,
            )
        else:
            head = _(
                "Island {island}'s clock reads {time}, {shift} behind real time.",
                island=ref,
                time=time,
                shift=shift,
            )
    if view.last is not None:
        head = _(
            "{head} Set by <@{user}> at {time}.",
            head=head,
            user=view.last.requested_by,
            time=clock_time(view.last.applied_at or view.last.requested_at, tz),
        )
    return head


def _request_state(state: str) -> str:
    """A clock request's state as people read it (an unknown one as it is stored)."""
    words = {
        "pending": p_("clock request", "pending"),
        "applying": p_("clock request", "applying"),
        "applied": p_("clock request", "applied"),
        "rejected": p_("clock request", "rejected"),
        "expired": p_("clock request", "expired"),
        "superseded": p_("clock request", "superseded"),
        "failed": p_("clock request", "failed"),
    }
    return words.get(state, state)


def clock_history(island_id: int, records: Sequence[ClockRecord], tz: tzinfo) -> str:
    if not records:
        return _("Island {island}'s clock has never been changed.", island=island_ref(island_id))
    lines = [_("Clock changes of island {island}, newest first:", island=island_ref(island_id))]
    for r in records:
        outcome = _request_state(r.state)
        if r.decided_by:
            outcome = _("{state}, decided by <@{user}>", state=outcome, user=r.decided_by)
        if r.failure_reason:
            outcome = _("{state} ({reason})", state=outcome, reason=escape(r.failure_reason[:120]))
        lines.append(
            _(
                "- {time} <@{user}>: {old} -> {new}, {outcome}",
                time=clock_time(r.requested_at, tz),
                user=r.requested_by,
                old=clock_offset(r.from_offset_s),
                new=clock_offset(r.to_offset_s),
                outcome=outcome,
            )
        )
    return "\n".join(lines)


def _outcome(r: ClockRecord) -> str:
    """How a decided request ended, as its message's last sentence (bold)."""
    by = r.decided_by
    outcomes = {
        "applying": lambda: _("*Approved by <@{user}>, being applied.*", user=by),
        "applied": lambda: _("*Approved by <@{user}> and applied.*", user=by),
        "rejected": lambda: _("*Rejected by <@{user}>.*", user=by),
        "expired": lambda: _("*Expired without a decision.*"),
        "superseded": lambda: _("*Superseded by a newer request.*"),
        "failed": lambda: _(
            "*Approved by <@{user}> but failed: {reason}.*",
            user=by,
            reason=escape(r.failure_reason or ""),
        ),
    }
    outcome = outcomes.get(r.state)
    if outcome is None:  # a state this module does not know
        return f"*{r.state[:1].upper() + r.state[1:]}.*"
    return outcome()


def clock_request(r: ClockRecord, owner_id: str, tz: tzinfo, now: datetime) -> str:
    values = {
        "owner": owner_id,
        "user": r.requested_by,
        "island": island_ref(r.island_id),
        "now": clock_time(now + timedelta(seconds=r.from_offset_s), tz),
    }
    if r.target_at is None and r.kind == "now":
        head = _(
            "<@{owner}>: <@{user}> asks to move island {island}'s clock to real time (now {now}).",
            **values,
        )
    else:
        head = _(
            "<@{owner}>: <@{user}> asks to move island {island}'s clock to {target} (now {now}).",
            target=(
                clock_time(r.target_at, tz)
                if r.target_at is not None
                else clock_offset(r.to_offset_s - r.from_offset_s)
            ),
            **values,
        )
    if r.state == "pending":
        return _(
            "{request} The request expires at {time}.",
            request=head,
            time=clock_time(r.expires_at, tz),
        )
    return sentences(head, _outcome(r))


def clock_requested(island_id: int, owner_id: str) -> str:
    return _(
        "Your request to move island {island}'s clock is in the channel; "
        "<@{owner}> (or an admin) decides.",
        island=island_ref(island_id),
        owner=owner_id,
    )


def clock_backwards(island_id: int) -> str:
    return _(
        "Note: island {island}'s clock goes backwards; timers that wait on the "
        "wall clock stall until it catches up.",
        island=island_ref(island_id),
    )


def clock_applied(island_id: int, to_offset_s: int) -> str:
    return _(
        "Island {island}'s clock is now at {offset}.",
        island=island_ref(island_id),
        offset=clock_offset(to_offset_s),
    )


def clock_content_refused(content: str) -> str:
    return _("refusing to write {content} into the clock file", content=repr(content))


def clock_pod_gone() -> str:
    return _("the island's pod is gone")


def clock_file_env_missing(variable: str) -> str:
    return _("the server container has no {variable}", variable=variable)


def clock_write_failed(exit_code: int, stderr: str) -> str:
    return _(
        "writing the clock file failed (exit {code}): {stderr}",
        code=exit_code,
        stderr=shlex.quote(stderr),
    )


def clock_not_moved(seen_s: float | None, expected_s: int) -> str:
    if seen_s is None:
        return _(
            "the island's clock did not move as expected: it could not be read from real time, "
            "not {expected}s",
            expected=expected_s,
        )
    return _(
        "the island's clock did not move as expected: it reads {seen}s from real time, "
        "not {expected}s",
        seen=round(seen_s),
        expected=expected_s,
    )


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
    return _(
        "Island {island}'s clock was not changed: {reason}",
        island=island_ref(island_id),
        reason=escape(reason)[:300],
    )
