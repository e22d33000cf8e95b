"""Whether the database answers, as this process sees it: one warning when it stops answering,
one line when it answers again, and a counter of the operations that failed meanwhile.

An outage makes every job fail at once (the tick, deliveries, the lease, the chat's intake),
each on its own schedule; logging each would bury the one fact that matters in tracebacks. So
the database boundary reports every failure here and the callers log nothing more
(``bot.domain.errors.log_failure``).
"""

from __future__ import annotations

import logging
import threading
import time

from bot.infra import metrics

log = logging.getLogger("bot.infra.storage.database")


class DatabaseHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None  # time.monotonic() of the first failure
        self._failed = 0  # operations failed since then
        self.outages = 0  # how many times the database went away (for tests)

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, what: str, cause: str) -> float:
        """An operation could not reach the database; returns for how long it has not."""
        metrics.DATABASE_UNREACHABLE.inc()
        now = time.monotonic()
        with self._lock:
            self._failed += 1
            if self._down_since is None:
                self._down_since = now
                self.outages += 1
                metrics.DATABASE_UP.set(0)
                log.warning(
                    "the database is unreachable (%s: %s); work waits until it answers again",
                    what,
                    cause,
                )
            return now - self._down_since

    def succeeded(self) -> None:
        """An operation reached the database."""
        if not self.down:  # the common case, without the lock
            return
        with self._lock:
            since, failed = self._down_since, self._failed
            self._down_since, self._failed = None, 0
        if since is None:  # another thread saw it answer first
            return
        down_for = time.monotonic() - since
        metrics.DATABASE_UP.set(1)
        log.info(
            "the database answers again after %.1f s unreachable (%d operations failed meanwhile)",
            down_for,
            failed,
        )
