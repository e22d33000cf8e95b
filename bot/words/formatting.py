"""How the words show ids, times, durations and user text (pure)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.domain.durations import duration_parts
from bot.words.catalogue import N_, _, p_

STATE_WORDS = {
    "requested": N_("starting"),
    "creating": N_("starting"),
    "scheduled": N_("scheduled, starting its server"),
    "running": N_("running, waiting for its server"),
    "ready": N_("ready"),
    "failed": N_("failed"),
    "stopping": N_("stopping"),
    "stopped": N_("stopped"),
}


# An island's state by its name (in English its value: ``Island #4 is running``, a table's
# state column).
_ISLAND_STATES: dict[str, Callable[[], str]] = {
    "requested": lambda: p_("island state", "requested"),
    "creating": lambda: p_("island state", "creating"),
    "scheduled": lambda: p_("island state", "scheduled"),
    "running": lambda: p_("island state", "running"),
    "ready": lambda: p_("island state", "ready"),
    "failed": lambda: p_("island state", "failed"),
    "stopping": lambda: p_("island state", "stopping"),
    "stopped": lambda: p_("island state", "stopped"),
}


def state_name(state: str) -> str:
    """An island's state by its name, in the current language (``running``: 运行中)."""
    words = _ISLAND_STATES.get(state)
    return words() if words else state


def state_words(state: str) -> str:
    """An island's state as people read it, in the current language."""
    words = STATE_WORDS.get(state)
    return _(words) if words else state


def format_duration(delta: timedelta) -> str:
    """A duration compactly, largest units first, in the current language: ``1d 10h30m``,
    ``45s``, ``0s`` (zh-CN: ``1天10小时30分``)."""
    sign, days, hours, minutes, seconds = duration_parts(delta)
    clock = "".join(
        part
        for value, part in (
            (hours, p_("duration", "{hours}h", hours=hours)),
            (minutes, p_("duration", "{minutes}m", minutes=minutes)),
            (seconds, p_("duration", "{seconds}s", seconds=seconds)),
        )
        if value
    )
    if days and clock:
        text = p_(
            "duration", "{days} {clock}", days=p_("duration", "{days}d", days=days), clock=clock
        )
    elif days:
        text = p_("duration", "{days}d", days=days)
    else:
        text = clock or p_("duration", "{seconds}s", seconds=0)
    return sign + text


def width(text: str) -> int:
    """How many columns ``text`` takes in a monospaced font: a wide (CJK) character two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def pad(text: str, columns: int, *, right: bool = False, cut: bool = False) -> str:
    """``text`` padded to ``columns``, counting wide characters as two, so that a table's
    columns line up in any language (``right``: aligned to the right; ``cut``: a longer text
    is cut to fit, else it is left whole, as ``format`` does)."""
    if cut:
        kept = ""
        for c in text:
            if width(kept + c) > columns:
                break
            kept += c
        text = kept
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


def sentences(*texts: str) -> str:
    """Sentences one after the other, as the current language writes them (English: a space
    between; Chinese: none after its full stop)."""
    said = ""
    for text in texts:
        if text:
            said = p_("sentences", "{first} {then}", first=said, then=text) if said else text
    return said


def island_ref(island_id: int) -> str:
    return f"#{island_id}"


def zone_name(tz: tzinfo) -> str:
    """The zone as the team configured it (``Asia/Shanghai``, ``UTC``)."""
    return str(getattr(tz, "key", None) or tz.tzname(None) or tz)


def clock_time(at: datetime, tz: tzinfo) -> str:
    """A clock time in the team's zone, named: ``2021-09-18 23:30:07 Asia/Shanghai``."""
    return f"{at.astimezone(tz).strftime('%Y-%m-%d %H:%M:%S')} {zone_name(tz)}"


def duration_text(value: Any) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)


def escape(text: str) -> str:
    """Make user-supplied text inert in Slack mrkdwn (no links, mentions or @channel)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utc_time(at: object) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if isinstance(at, datetime) else str(at)


def relative_time(when: datetime, now: datetime) -> str:
    delta = when - now
    if delta.total_seconds() >= 0:
        return _(
            "in {duration}", duration=format_duration(timedelta(seconds=int(delta.total_seconds())))
        )
    return _(
        "{duration} ago", duration=format_duration(timedelta(seconds=int(-delta.total_seconds())))
    )


def clock_offset(seconds: int) -> str:
    if seconds == 0:
        return _("real time")
    sign = "+" if seconds > 0 else "-"
    return sign + format_duration(timedelta(seconds=abs(seconds)))


def memory_size(size: int) -> str:
    """Bytes as people read memory sizes: ``1.9Gi``, ``2Gi``, ``612Mi``, ``96Ki`` (one decimal
    of a Gi, whole Mi below that, rounded down: never more than what was read)."""
    gi, mi = 2**30, 2**20
    if size >= gi:
        tenths = size * 10 // gi
        return f"{tenths // 10}Gi" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}Gi"
    if size >= mi:
        return f"{size // mi}Mi"
    return f"{size // 1024}Ki"


def memory_figures(used: int, limit: int | None) -> str:
    """A memory reading without its leading word: ``1.6Gi of 2Gi (80 %)``, ``612Mi``."""
    if not limit:
        return memory_size(used)
    return _(
        "{used} of {limit} ({percent} %)",
        used=memory_size(used),
        limit=memory_size(limit),
        percent=used * 100 // limit,
    )


def memory_use(used: int, limit: int | None) -> str:
    """``memory 1.6Gi of 2Gi (80 %)``, or ``memory 612Mi`` without a limit."""
    if not limit:
        return _("memory {used}", used=memory_size(used))
    return _(
        "memory {used} of {limit} ({percent} %)",
        used=memory_size(used),
        limit=memory_size(limit),
        percent=used * 100 // limit,
    )
