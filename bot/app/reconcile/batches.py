"""A tick's decisions carried out together: pods deleted and created a bounded number at once,
the changes written in one transaction for all the islands, not one per island and one after
another. The creates of a burst of starts may run on a worker of their own (the service's
choice), so that the next ticks go on meanwhile and see the islands started before them ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bot.app.reconcile.apply import Applier
from bot.domain.errors import IslandbotError, log_failure
from bot.domain.lifecycle_rules import Decision
from bot.domain.records import IslandRecord

log = logging.getLogger(__name__)

Changes = Sequence[tuple[IslandRecord, Decision]]


class Batches:
    def __init__(self, applier: Applier, *, concurrency: int) -> None:
        """``concurrency``: requests to the API server at once (creates, deletes)."""
        self.applier = applier
        self.concurrency = concurrency
        # True: creates are carried out before ``carry_out`` returns (what a test calling
        # tick() expects); the service turns this off
        self.inline_creates = True
        # called once changes are written: right after the tick's transitions (before its
        # creates), and when creates carried out on the worker have written their notices
        self.on_written: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()  # islands whose creates are under way on the worker
        self._pool: ThreadPoolExecutor | None = None
        self._creator: ThreadPoolExecutor | None = None

    def in_flight(self) -> frozenset[int]:
        """Islands whose pod's create is under way on the worker: a tick leaves them alone."""
        with self._lock:
            return frozenset(self._in_flight)

    def carry_out(self, changes: Changes, now: datetime, report: Callable[[str], None]) -> int:
        """Every change but the creates, then the creates (inline, or handed to the worker).
        Each failure is reported (``report``) and logged; returns how many were written."""
        others = [c for c in changes if not c[1].create_pod]
        creates = [c for c in changes if c[1].create_pod]
        written = 0
        if others:
            written = self._run(self.applier.apply_many, others, now, report)
            if written:
                self.on_written()
        if not creates:
            return written
        if self.inline_creates:
            return written + self._run(self.applier.create_many, creates, now, report)
        with self._lock:
            self._in_flight.update(island.id for island, _ in creates)
            if self._creator is None:
                self._creator = ThreadPoolExecutor(1, thread_name_prefix="tick-creates")
            creator = self._creator
        creator.submit(self._create_on_worker, creates, now)
        return written

    def _create_on_worker(self, creates: Changes, now: datetime) -> None:
        try:
            if self._run(self.applier.create_many, creates, now, lambda _why: None):
                self.on_written()
        except Exception as exc:  # the next tick decides again
            log_failure(log, f"creating {len(creates)} pods failed", exc)
        finally:
            with self._lock:
                self._in_flight.difference_update(island.id for island, _ in creates)

    def _run(
        self,
        carry_out: Callable[..., tuple[int, list[tuple[int, Exception]]]],
        changes: Changes,
        now: datetime,
        report: Callable[[str], None],
    ) -> int:
        try:
            written, failed = carry_out(changes, now, self._requests().map)
        except IslandbotError as exc:  # the cluster or the database: the next tick decides again
            report(f"{len(changes)} islands: {exc}")
            log_failure(log, f"carrying out the decisions on {len(changes)} islands", exc)
            return 0
        for island_id, why in failed:
            report(f"island {island_id}: {why}")
            log.warning("island %d: %s", island_id, why)
        return written

    def _requests(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="tick-kube")
            return self._pool

    def close(self) -> None:
        """Wait for the creates under way, then let the threads go."""
        with self._lock:
            creator, self._creator = self._creator, None
        if creator is not None:
            creator.shutdown(wait=True)
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
