"""How long to wait before trying again (pure): exponential, capped, with jitter."""

from __future__ import annotations

from datetime import timedelta


def backoff(attempts: int, *, base: timedelta, cap: timedelta, jitter: float) -> timedelta:
    """The wait after ``attempts`` failed attempts (1 after the first): ``base`` doubled each
    time, at most ``cap``, times ``0.5 + jitter`` (``jitter`` in [0, 1): spreads retries)."""
    exponent = min(max(attempts - 1, 0), 32)
    seconds = min(base.total_seconds() * 2**exponent, cap.total_seconds())
    return timedelta(seconds=seconds * (0.5 + min(max(jitter, 0.0), 1.0)))
