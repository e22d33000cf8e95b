"""The chat front's bounded work pool, and the keys that make a redelivered request act once."""

from __future__ import annotations

import hashlib
import logging
import threading
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
    """A fixed number of threads and a bounded backlog: ``submit`` says False when full."""

    def __init__(self, workers: int, max_pending: int) -> None:
        self._workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="chat-work")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._idle = threading.Condition()
        self._busy = 0  # queued or running
        self._reserved = 0

    def reserve(self) -> bool:
        """Take a worker that is idle now for work to ``submit`` (``reserved=True``) at once;
        False when none is (every worker busy, or promised). One not used is given back with
        ``unreserve``."""
        with self._idle:
            if self._busy + self._reserved >= self._workers:
                return False
            if not self._slots.acquire(blocking=False):
                return False
            self._reserved += 1
            return True

    def unreserve(self) -> None:
        with self._idle:
            self._reserved -= 1
        self._slots.release()

    def submit(self, work: Callable[[], None], *, reserved: bool = False) -> bool:
        """Queue ``work``; False when full (nothing queued). ``reserved``: on the worker taken
        with ``reserve``."""
        if not reserved and not self._slots.acquire(blocking=False):
            return False
        with self._idle:
            self._busy += 1
            if reserved:
                self._reserved -= 1

        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("chat work failed")
            finally:
                self._slots.release()
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        try:
            self._pool.submit(run)
        except RuntimeError:  # shut down: nothing runs any more
            self._slots.release()
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()
            return False
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False when ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
