"""Durations as users type them: ``90m``, ``4h``, ``2d``, ``1d12h``, ``45s`` (pure)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"([0-9]{1,7})([smhdw])")
_WHOLE = re.compile(r"(?:[0-9]{1,7}[smhdw])+")


def parse_duration(text: str) -> timedelta:
    """Parse a positive duration made of ``<number><unit>`` parts, units s, m, h, d, w.

    Raises ``ValueError`` naming the accepted form when ``text`` is not such a duration.
    """
    compact = text.strip().lower()
    if not _WHOLE.fullmatch(compact):
        raise ValueError(
            f"{text!r} is not a duration; use a number and a unit (s, m, h, d, w), "
            "for example 90m, 4h, 2d or 1d12h"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def duration_parts(delta: timedelta) -> tuple[str, int, int, int, int]:
    """``delta`` as a sign (``"-"`` or ``""``) and whole days, hours, minutes, seconds."""
    total = int(abs(delta.total_seconds()))
    sign = "-" if delta.total_seconds() < 0 else ""
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return sign, days, hours, minutes, seconds


def format_duration(delta: timedelta) -> str:
    """Render a duration compactly, largest units first: ``1d 10h30m``, ``45s``, ``0s`` (in
    English, for logs and settings; people read ``bot.words.formatting.format_duration``)."""
    sign, days, hours, minutes, seconds = duration_parts(delta)
    clock = "".join(
        f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if value
    )
    parts = [f"{days}d"] if days else []
    if clock:
        parts.append(clock)
    return sign + (" ".join(parts) if parts else "0s")
