"""Island clocks: what ``/island time <id> <when>`` means, and what libfaketime is told (pure).

An island's clock is an offset in seconds from real time (the database is the source of
truth). ``<when>`` is one of:

- ``now``: back to real time (offset 0);
- a relative shift of the island's clock, ``+2d``, ``-90m``, ``+1d12h`` (units s, m, h, d, w);
- an absolute time ``YYYY-MM-DD HH:MM[:SS]`` in the team's time zone.

libfaketime's timestamp file is written as ``+N``/``-N`` seconds for a running server (with
``FAKETIME_DONT_RESET=1``, ``@date`` would be taken from the process start); ``@date`` only
before the server starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from bot.domain.durations import format_duration

_RELATIVE = re.compile(r"([+-])((?:[0-9]{1,7}[smhdw])+)")
_PART = re.compile(r"([0-9]{1,7})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_ABSOLUTE = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")
_CONTENT = re.compile(r"[+-][0-9]{1,12}")


class ClockFault(StrEnum):
    """Why a clock change being applied was not made, where no ``Refusal`` says it. Each
    one's details are named where it is raised; ``bot.words.clock_text.clock_fault`` words it."""

    BUSY = "busy"  # island_id: another change of its clock held it too long
    CLUSTER = "cluster"  # message: what the cluster answered
    CONTENT_REFUSED = "content_refused"  # content: not a valid relative offset
    POD_GONE = "pod_gone"
    ENV_MISSING = "env_missing"  # variable: the server container lacks it
    WRITE_FAILED = "write_failed"  # exit_code, stderr
    NOT_MOVED = "not_moved"  # seen_s (None: unreadable), expected_s


class WhenKind(StrEnum):
    NOW = "now"
    RELATIVE = "relative"
    ABSOLUTE = "absolute"


@dataclass(frozen=True)
class When:
    kind: WhenKind
    shift_s: int = 0  # RELATIVE: seconds to add to the island's clock
    at: datetime | None = None  # ABSOLUTE: the instant (aware, UTC)


class BadWhen(ValueError):
    """Not a ``<when>``; the message says which forms are accepted."""


def parse_when(text: str, tz: tzinfo = UTC) -> When:
    raw = text.strip()
    if raw.lower() == "now":
        return When(WhenKind.NOW)
    match = _RELATIVE.fullmatch(raw.lower())
    if match is not None:
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(match.group(2)))
        if seconds == 0:
            raise BadWhen(f"{text!r} does not move the clock")
        return When(WhenKind.RELATIVE, shift_s=seconds if match.group(1) == "+" else -seconds)
    for fmt in _ABSOLUTE:
        try:
            local = datetime.strptime(raw, fmt)
        except ValueError:
            continue
        if not 1971 <= local.year <= 2099:
            break
        return When(WhenKind.ABSOLUTE, at=local.replace(tzinfo=tz).astimezone(UTC))
    raise BadWhen(
        f"{text!r} is not a time: use `now`, a shift such as `+2d`, `-90m` or `+1d12h`, or a "
        '"YYYY-MM-DD HH:MM[:SS]" time'
    )


def new_offset(when: When, *, current_offset_s: int, real_now: datetime) -> int:
    """The island's offset after ``when``."""
    if when.kind == WhenKind.NOW:
        return 0
    if when.kind == WhenKind.RELATIVE:
        return current_offset_s + when.shift_s
    assert when.at is not None
    return round((when.at - real_now).total_seconds())


def out_of_bounds(offset_s: int, bound: timedelta) -> bool:
    return abs(offset_s) > bound.total_seconds()


def island_time(offset_s: int, real_now: datetime) -> datetime:
    return real_now + timedelta(seconds=offset_s)


def describe_shift(from_offset_s: int, to_offset_s: int) -> str:
    """``+1d 10h30m``, ``-2h``, ``0s``."""
    delta = to_offset_s - from_offset_s
    sign = "+" if delta >= 0 else "-"
    return sign + format_duration(timedelta(seconds=abs(delta)))


def faketime_relative(offset_s: int) -> str:
    """File content for a running server: an offset from the real clock, in seconds."""
    return f"+{offset_s}" if offset_s >= 0 else f"-{-offset_s}"


def faketime_start_at(clock: datetime) -> str:
    """File content before the server starts: start there and tick."""
    return "@" + clock.strftime("%Y-%m-%d %H:%M:%S")


def valid_relative_content(text: str) -> bool:
    """Only what ``faketime_relative`` makes may be written into a running server's file."""
    return _CONTENT.fullmatch(text) is not None
