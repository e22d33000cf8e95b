"""Rate limits on refused requests: a client that keeps sending wrong tokens is answered 429
(with Retry-After) without the bot doing any work for it."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable


class RefusalLimit:
    """At most ``limit`` refusals per key within ``window_s``; then ``retry_after`` says how
    long the key must wait. Used from one event loop: no locking."""

    def __init__(
        self,
        *,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[Hashable, deque[float]] = {}

    def __len__(self) -> int:
        """How many keys are remembered (never more than ``max_keys``)."""
        return len(self._seen)

    def retry_after(self, key: Hashable) -> float | None:
        """Seconds ``key`` must wait before it may try again, or None."""
        times = self._recent(key)
        if times is None or len(times) < self.limit:
            return None
        return max(0.0, times[0] + self.window_s - self.clock())

    def refused(self, key: Hashable) -> None:
        if key not in self._seen and len(self._seen) >= self.max_keys:
            self._seen.clear()  # a flood of keys: forget them all rather than grow
        self._seen.setdefault(key, deque()).append(self.clock())

    def _recent(self, key: Hashable) -> deque[float] | None:
        times = self._seen.get(key)
        if times is None:
            return None
        cutoff = self.clock() - self.window_s
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._seen[key]
            return None
        return times
