"""``python -m tests.system.skewed SECONDS islandbot-args...``: run ``islandbot`` with its wall
clock ``SECONDS`` ahead (negative: behind), as on a machine whose clock is off. Python's wall
clock is skewed where Python reads it (``time.time``, ``time.time_ns``, ``datetime.now``,
``datetime.utcnow``); the monotonic clock is left alone, as a skewed machine's is.

Not libfaketime: with Debian's 0.9.10 and Python 3.11 every ``time.sleep`` of a process under it
fails with EINVAL (Python sleeps with ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``,
which libfaketime mis-converts), and faking the monotonic clock too makes every timed wait
oversleep by the skew."""

from __future__ import annotations

import datetime as _datetime
import sys
import time

SKEW = float(sys.argv[1])
_time, _time_ns = time.time, time.time_ns
time.time = lambda: _time() + SKEW
time.time_ns = lambda: _time_ns() + int(SKEW * 1e9)


class _SkewedDatetime(_datetime.datetime):
    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> _SkewedDatetime:
        return super().now(tz) + _datetime.timedelta(seconds=SKEW)  # type: ignore[return-value]

    @classmethod
    def utcnow(cls) -> _SkewedDatetime:
        return cls.now(_datetime.UTC).replace(tzinfo=None)


_datetime.datetime = _SkewedDatetime  # type: ignore[misc]

from bot.run.cli import main  # noqa: E402 - after the clock is skewed

ahead = _datetime.datetime.now(_datetime.UTC).timestamp() - _time()
print(f"skewed: this process's clock is {ahead:+.1f} s off", file=sys.stderr, flush=True)

sys.exit(main(sys.argv[2:]))
