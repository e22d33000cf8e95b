"""What people read about the warm pools: ``/island pool``, an admin's size or refresh, and a
start that could not get a warm island (``POOL_MISS``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from bot.domain.durations import format_duration
from bot.domain.pool import HOLD_AFTER, Miss, PoolStatus
from bot.words.formatting import clock_time, escape

_SOURCE = {
    "chat": "set from chat",
    "setting": "ISLANDBOT_POOLS",
    "profile": "its branch profile",
}


def pools(shown: Sequence[PoolStatus], *, branch: str | None, now: datetime, tz: tzinfo) -> str:
    """``/island pool [BRANCH]``."""
    if not shown:
        which = f"The {escape(branch)} branch has no warm pool" if branch else "No warm pools"
        return (
            f"{which}. Admins start one with `/island pool {escape(branch or '<branch>')} size=N`."
        )
    lines = ["*Warm pools* (islands started ahead, handed out at once by `/island start`):"]
    for s in shown:
        source = _SOURCE[s.size_source] + (f" by <@{s.size_set_by}>" if s.size_set_by else "")
        parts = [f"{s.ready} ready", f"{s.starting} starting"]
        if s.stopping:
            parts.append(f"{s.stopping} being renewed")
        if s.failed:
            parts.append(f"{s.failed} failed")
        lines.append(
            f"- *{escape(s.branch)}*: {', '.join(parts)} of {s.size} ({source}); today "
            f"{s.claims_today} handed out, {s.misses_today} started fresh instead; renewed "
            f"after {format_duration(s.max_age)}"
            + (f", code {escape(s.code_version)}" if s.code_version else "")
            + (f", refreshed {clock_time(s.refreshed_at, tz)}" if s.refreshed_at else "")
            + "."
            + _failing(s, now, tz)
        )
    return "\n".join(lines)


def _failing(status: PoolStatus, now: datetime, tz: tzinfo) -> str:
    """A pool whose islands keep failing: what the keeper does about it."""
    streak = status.streak
    if streak.failures < HOLD_AFTER or not status.size:
        return ""
    said = f" Its last {streak.failures} warm islands failed"
    if streak.held(now) and streak.held_until is not None:
        return f"{said}: none started until {clock_time(streak.held_until, tz)}, then one."
    return f"{said}: starting one at a time until one is ready."


def size_set(status: PoolStatus, *, by_default: bool) -> str:
    if by_default:
        return f"The {escape(status.branch)} pool is back to the deployment's size: {status.size}."
    if status.size == 0:
        return f"The {escape(status.branch)} pool is off: its warm islands are being stopped."
    return (
        f"The {escape(status.branch)} pool now keeps {status.size} warm islands "
        f"({status.ready} ready, {status.starting} starting)."
    )


def refreshed(branch: str, stale: int) -> str:
    if not stale:
        name = escape(branch)
        return (
            f"No warm {name} island was started before now: whatever the {name} pool starts "
            "from now on boots the current code."
        )
    return (
        f"The {escape(branch)} pool's {stale} warm islands started before now are being "
        "renewed on the current code; none of them will be handed out."
    )


def miss(detail: Mapping[str, Any], *, branch: str) -> str:
    """A start of a branch with a warm pool that got a fresh island (``POOL_MISS``)."""
    typical = detail.get("typical_s")
    takes = (
        f"usually about {format_duration_s(int(typical))}"
        if isinstance(typical, int) and typical > 0
        else "this takes as long as the server needs to start"
    )
    if detail.get("why") == Miss.OPTIONS.value:
        return (
            f"A warm {escape(branch)} island cannot take `set` options (its pod is already "
            f"made), so this is a fresh one: {takes}."
        )
    return f"No warm {escape(branch)} island was free, so this is a fresh one: {takes}."


def format_duration_s(seconds: int) -> str:
    """A boot time in words: seconds under two minutes, else minutes."""
    if seconds < 120:
        return f"{seconds} s"
    return f"{round(seconds / 60)} minutes"
