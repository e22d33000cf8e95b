"""The chat front's bounded work pool, and the keys that make a redelivered request act once."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


def delivery_key(kind: str, ident: str) -> str:
    """A key for ``Deliveries`` and the allocation's request key (at most 128 characters)."""
    key = f"{kind}:{ident}"
    if len(key) <= 100:
        return key
    return f"{kind}:sha256:{hashlib.sha256(ident.encode()).hexdigest()}"


class WorkPool:
    """A fixed number of threads and a bounded backlog: ``submit`` says False when full.

    The backlog is the pool's own, in order: work is handed to a thread only while one is
    free, so a thread ``reserve``d for a request taken at acceptance is never behind queued
    work."""

    def __init__(self, workers: int, max_pending: int) -> None:
        self._workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="chat-work")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._idle = threading.Condition()
        self._busy = 0  # waiting or running
        self._running = 0
        self._reserved = 0
        self._waiting: deque[Callable[[], None]] = deque()
        self._closed = False

    def reserve(self) -> bool:
        """Take a thread that is idle now for work to ``submit`` (``reserved=True``) at once;
        False when none is (every thread busy or promised, or the pool is shut down). One not
        used is given back with ``unreserve``."""
        with self._idle:
            if self._closed or self._running + self._reserved >= self._workers:
                return False
            if not self._slots.acquire(blocking=False):
                return False
            self._reserved += 1
            return True

    def unreserve(self) -> None:
        with self._idle:
            self._reserved -= 1
            start = self._next()
        self._slots.release()
        self._start(start)

    def submit(self, work: Callable[[], None], *, reserved: bool = False) -> bool:
        """Queue ``work``; False when full or shut down (nothing queued). ``reserved``: on the
        thread taken with ``reserve``, at once."""
        if not reserved and not self._slots.acquire(blocking=False):
            return False
        with self._idle:
            if self._closed and not reserved:
                self._slots.release()
                return False
            self._busy += 1
            if reserved:
                self._reserved -= 1
                self._running += 1
                start: Callable[[], None] | None = work
            else:
                self._waiting.append(work)
                start = self._next()
        self._start(start)
        return True

    def _next(self) -> Callable[[], None] | None:
        """Under ``_idle``: the first waiting work, if a thread is free for it (counted)."""
        if self._waiting and self._running + self._reserved < self._workers:
            self._running += 1
            return self._waiting.popleft()
        return None

    def _start(self, work: Callable[[], None] | None) -> None:
        if work is None:
            return

        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("chat work failed")
            finally:
                self._slots.release()
                with self._idle:
                    self._busy -= 1
                    self._running -= 1
                    following = self._next()
                    self._idle.notify_all()
                self._start(following)

        self._pool.submit(run)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False when ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def shutdown(self) -> None:
        """Take no more work; return once what was queued has run."""
        with self._idle:
            self._closed = True
            self._idle.wait_for(lambda: self._busy == 0 and not self._reserved)
        self._pool.shutdown(wait=True, cancel_futures=False)
