"""What people read about the warm pools: ``/island pool``, an admin's size or refresh, and a
start that could not get a warm island (``POOL_MISS``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from bot.domain.pool import HOLD_AFTER, Miss, PoolStatus
from bot.words.catalogue import N_, _
from bot.words.formatting import clock_time, escape, format_duration, sentences

_SOURCE = {
    "chat": N_("set from chat"),
    "setting": N_("ISLANDBOT_POOLS"),
    "profile": N_("its branch profile"),
}


def pools(shown: Sequence[PoolStatus], *, branch: str | None, now: datetime, tz: tzinfo) -> str:
    """``/island pool [BRANCH]``."""
    if not shown:
        if branch:
            return _(
                "The {branch} branch has no warm pool. "
                "Admins start one with `/island pool {branch} size=N`.",
                branch=escape(branch),
            )
        return _(
            "No warm pools. Admins start one with `/island pool {branch} size=N`.",
            branch=escape("<branch>"),
        )
    lines = [_("*Warm pools* (islands started ahead, handed out at once by `/island start`):")]
    for s in shown:
        lines.append(_pool_line(s, now, tz))
    return "\n".join(lines)


def _pool_line(s: PoolStatus, now: datetime, tz: tzinfo) -> str:
    who = f"<@{s.size_set_by}>"
    if s.size_set_by and s.size_source == "chat":
        source = _("set from chat by {who}", who=who)
    elif s.size_set_by:
        source = _("{source} by {who}", source=_(_SOURCE[s.size_source]), who=who)
    else:
        source = _(_SOURCE[s.size_source])
    parts = [_("{count} ready", count=s.ready), _("{count} starting", count=s.starting)]
    if s.stopping:
        parts.append(_("{count} being renewed", count=s.stopping))
    if s.failed:
        parts.append(_("{count} failed", count=s.failed))
    extras = ""
    if s.code_version:
        extras += _(", code {code}", code=escape(s.code_version))
    if s.refreshed_at:
        extras += _(", refreshed {time}", time=clock_time(s.refreshed_at, tz))
    line = _(
        "- *{branch}*: {counts} of {size} ({source}); today {claims} handed out, "
        "{misses} started fresh instead; renewed after {max_age}{extras}.",
        branch=escape(s.branch),
        counts=", ".join(parts),
        size=s.size,
        source=source,
        claims=s.claims_today,
        misses=s.misses_today,
        max_age=format_duration(s.max_age),
        extras=extras,
    )
    failing = _failing(s, now, tz)
    return sentences(line, failing)


def _failing(status: PoolStatus, now: datetime, tz: tzinfo) -> str:
    """A pool whose islands keep failing: what the keeper does about it."""
    streak = status.streak
    if streak.failures < HOLD_AFTER or not status.size:
        return ""
    if streak.held(now) and streak.held_until is not None:
        return _(
            "Its last {failures} warm islands failed: none started until {time}, then one.",
            failures=streak.failures,
            time=clock_time(streak.held_until, tz),
        )
    return _(
        "Its last {failures} warm islands failed: starting one at a time until one is ready.",
        failures=streak.failures,
    )


def size_set(status: PoolStatus, *, by_default: bool) -> str:
    branch = escape(status.branch)
    if by_default:
        return _(
            "The {branch} pool is back to the deployment's size: {size}.",
            branch=branch,
            size=status.size,
        )
    if status.size == 0:
        return _("The {branch} pool is off: its warm islands are being stopped.", branch=branch)
    return _(
        "The {branch} pool now keeps {size} warm islands ({ready} ready, {starting} starting).",
        branch=branch,
        size=status.size,
        ready=status.ready,
        starting=status.starting,
    )


def refreshed(branch: str, stale: int) -> str:
    if not stale:
        return _(
            "No warm {branch} island was started before now: whatever the {branch} pool starts "
            "from now on boots the current code.",
            branch=escape(branch),
        )
    return _(
        "The {branch} pool's {stale} warm islands started before now are being "
        "renewed on the current code; none of them will be handed out.",
        branch=escape(branch),
        stale=stale,
    )


def miss(detail: Mapping[str, Any], *, branch: str) -> str:
    """A start of a branch with a warm pool that got a fresh island (``POOL_MISS``)."""
    typical = detail.get("typical_s")
    took = format_duration_s(typical) if isinstance(typical, int) and typical > 0 else ""
    if detail.get("why") == Miss.OPTIONS.value:
        if took:
            return _(
                "A warm {branch} island cannot take `set` options (its pod is already "
                "made), so this is a fresh one: usually about {took}.",
                branch=escape(branch),
                took=took,
            )
        return _(
            "A warm {branch} island cannot take `set` options (its pod is already "
            "made), so this is a fresh one: this takes as long as the server needs to start.",
            branch=escape(branch),
        )
    if took:
        return _(
            "No warm {branch} island was free, so this is a fresh one: usually about {took}.",
            branch=escape(branch),
            took=took,
        )
    return _(
        "No warm {branch} island was free, so this is a fresh one: "
        "this takes as long as the server needs to start.",
        branch=escape(branch),
    )


def format_duration_s(seconds: int) -> str:
    """A boot time in words: seconds under two minutes, else minutes."""
    if seconds < 120:
        return _("{seconds} s", seconds=seconds)
    return _("{minutes} minutes", minutes=round(seconds / 60))
