"""Running the lifecycle loop: APScheduler 3.x jobs, only on the leading replica.

Four jobs, ``exclusions`` (ports taken by NodePort services) every 5 minutes, ``housekeeping``
every 10, and a delivery thread. ``lease`` renews (or
tries to take) the leader lease every ttl/3; ``reconcile`` runs the engine's tick every interval
when this replica leads; ``ready-probes`` probes a share of the ready islands each interval,
outside the tick, which uses what it found; ``fast-ready`` checks every 0.1 s, without any
Kubernetes request, whether an island about to be ready answers on its server port (or a new
pod may be bound already), and then runs a tick at once, so ready notices come within a
fraction of the interval. The ``notices`` thread delivers what the ticks decided to tell, woken
by each tick that changed something (a thread of its own: a chat paces each channel, and that
must never delay a tick). Ticks never overlap (the engine serialises them);
``max_instances=1`` and coalescing mean a slow tick delays the next one instead of piling up
(APScheduler's warning for each run so skipped is filtered out for the 0.1 s job, where it is
expected); ``misfire_grace_time`` is generous so a busy pool skips nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

from bot.app.reconcile.engine import LifecycleEngine, TickReport
from bot.domain.errors import log_failure
from bot.domain.time_source import utcnow
from bot.infra import metrics
from bot.infra.storage.lease import LeaderLease

log = logging.getLogger(__name__)


SLOW_TICK_S = 0.5  # a tick longer than this is logged: it delays every notice it decides


class _SkippedRunFilter(logging.Filter):
    """Thin out APScheduler's "maximum number of running instances reached" warning: a run is
    skipped when the previous one of its job is still going, which is what ``max_instances=1``
    is for (the 0.1 s check while a tick runs, every job while the database stalls), and it
    would fire up to ten times a second and bury everything else. One line per job a minute
    is kept, so a job that hangs is still seen; the 0.1 s check is never told (a long tick is
    logged when it ends)."""

    EVERY_S = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._told: dict[str, float] = {}  # job -> when its last skip was told

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "maximum number of running instances" not in message:
            return True
        job = message.split('"', 2)[1].split(" (", 1)[0] if '"' in message else message
        if "LifecycleService._fast" in job:
            return False
        now = time.monotonic()
        if now - self._told.get(job, float("-inf")) < self.EVERY_S:
            return False
        self._told[job] = now
        return True


logging.getLogger("apscheduler.scheduler").addFilter(_SkippedRunFilter())
# "Running job ..." and "... executed successfully" for every run of every job (the fast check
# runs ten times a second) would bury the log; a job that fails still logs at WARNING or above.
logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)


@dataclass
class ServiceStats:
    ticks: int = 0
    tick_errors: int = 0
    notices_sent: int = 0
    last: TickReport | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class LifecycleService:
    def __init__(
        self,
        engine: LifecycleEngine,
        lease: LeaderLease,
        *,
        interval: timedelta = timedelta(seconds=1),
        fast_interval: timedelta = timedelta(seconds=0.1),
    ) -> None:
        self.engine = engine
        self.lease = lease
        self.interval = interval
        self.fast_interval = fast_interval
        self.stats = ServiceStats()
        self._stopping = threading.Event()
        self._extra: list[tuple[Callable[[], None], str, float, bool]] = []
        self._deliver_now = threading.Event()
        self._ticking = threading.Event()  # a tick is running
        self._poked = threading.Event()  # poked meanwhile: it should look again
        self._delivery = threading.Thread(target=self._delivery_loop, name="notices", daemon=True)
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(6)},
            timezone="UTC",
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(5, int(interval.total_seconds() * 5)),
            },
        )

    def start(self) -> None:
        seconds = self.interval.total_seconds()
        renew = max(self.lease.ttl.total_seconds() / 3, 0.1)
        self.lease.try_acquire()
        self._add(self._renew, "lease", seconds=renew)
        self._add(self._tick, "reconcile", seconds=seconds)
        self.engine.inline_ready_probes = False
        self._add(self._probe_ready, "ready-probes", seconds=seconds)
        self.engine.inline_delivery = False
        self._delivery.start()
        self._add(self._housekeeping, "housekeeping", seconds=600)
        self.engine.inline_exclusions = False
        self.engine.batches.inline_creates = False
        self.engine.batches.on_written = self._deliver_now.set
        self.engine.deliverer.on_part_done = self._deliver_now.set
        self._add(
            self._exclusions,
            "exclusions",
            seconds=self.engine.settings.exclusions_interval.total_seconds(),
            at_once=True,
        )
        for job, name, every, at_once in self._extra:
            self._add(job, name, seconds=every, at_once=at_once)
        if self.fast_interval < self.interval:
            self._add(self._fast, "fast-ready", seconds=self.fast_interval.total_seconds())
        self._scheduler.start()
        log.info("lifecycle loop started (every %.2fs; leader: %s)", seconds, self.lease.is_leader)

    def add_job(
        self,
        job: Callable[[], None],
        name: str,
        *,
        seconds: float,
        leader_only: bool = True,
        at_once: bool = False,
    ) -> None:
        """A job of the bot's own (before ``start``): on the leading replica only, or on every
        replica (``leader_only=False``, e.g. picking up chat requests a dead replica left)."""

        def on_leader() -> None:
            if leader_only and not self.lease.is_leader:
                return
            try:
                job()
            except Exception as exc:
                log_failure(log, f"job {name} failed", exc)

        self._extra.append((on_leader, name, seconds, at_once))

    def _add(
        self, job: Callable[[], None], name: str, *, seconds: float, at_once: bool = False
    ) -> None:
        first = {"next_run_time": utcnow()} if at_once else {}
        self._scheduler.add_job(job, "interval", seconds=seconds, id=name, **first)

    def _renew(self) -> None:
        try:
            self.lease.try_acquire()
        except Exception as exc:  # the database may be restarting: keep trying
            log_failure(log, "renewing the leader lease failed", exc)
            self.lease.lapse(f"its lease could not be renewed ({type(exc).__name__})")

    def _tick(self) -> None:
        if not self.lease.is_leader:
            return
        self._ticking.set()
        try:
            while True:
                self._poked.clear()
                self._tick_once()
                if not self._poked.is_set() or self._stopping.is_set():
                    return
        finally:
            self._ticking.clear()

    def _tick_once(self) -> None:
        report = self.engine.tick()
        metrics.TICK.observe(report.duration_s)
        if report.duration_s > SLOW_TICK_S:
            log.warning(
                "reconcile tick took %.2f s (%d islands, %d changed, probes %.2f s)",
                report.duration_s,
                report.islands,
                report.changed,
                report.probe_s,
            )
        with self.stats.lock:
            self.stats.ticks += 1
            self.stats.tick_errors += bool(report.errors)
            self.stats.last = report
        if report.changed:  # new notices, most likely: deliver them now, not at the next round
            self._deliver_now.set()

    def _probe_ready(self) -> None:
        if not self.lease.is_leader:
            return
        try:
            self.engine.probe_ready()
        except Exception as exc:
            log_failure(log, "probing ready islands failed", exc)

    def _delivery_loop(self) -> None:
        """Notices go out right after a tick that changed something, and at least every
        interval (retries of failed deliveries); a slow chat only ever delays this thread."""
        while not self._stopping.is_set():
            self._deliver_now.wait(timeout=self.interval.total_seconds())
            self._deliver_now.clear()
            self._deliver()
        # what the last ticks decided to tell, before the process goes: the channels' posts
        # going on first (their islands' later notices wait for them), then a last round and
        # its channels' posts, within the lease renewed once more (its jobs have stopped)
        if self.lease.is_leader:
            self._renew()
        settle = self.lease.ttl.total_seconds() / 3
        self.engine.deliverer.settle(settle)
        self._deliver()
        if not self.engine.deliverer.settle(settle):
            log.warning(
                "stopping while a chat's paced posts are still going out: what this process "
                "cannot post while it holds the lease, the next leader will"
            )

    def _deliver(self) -> None:
        if not self.lease.is_leader:
            try:  # what this process posted while it led is recorded whoever leads now
                self.engine.deliverer.outcomes.record_owed()
            except Exception as exc:
                log_failure(log, "recording delivered notices failed", exc)
            return
        began = time.monotonic()
        try:
            sent = self.engine.deliver()
        except Exception as exc:  # Deposed: another replica leads now, its deliveries take over
            log_failure(log, "delivering notices stopped", exc)
            return
        took = time.monotonic() - began
        if took > SLOW_TICK_S:
            log.warning("delivering %d notices took %.2f s", sent, took)
        with self.stats.lock:
            self.stats.notices_sent += sent

    def _exclusions(self) -> None:
        if not self.lease.is_leader:
            return
        try:
            self.engine.refresh_exclusions()
        except Exception as exc:
            log_failure(log, "refreshing the ports used by NodePort services failed", exc)

    def _housekeeping(self) -> None:
        if not self.lease.is_leader:
            return
        try:
            self.engine.housekeeping()
        except Exception as exc:
            log_failure(log, "housekeeping failed", exc)

    def poke(self) -> None:
        """Run a tick now (a person just asked for a change), and deliver the notices the
        change wrote (an island's root message, who stopped it...) without waiting for it."""
        if not self.lease.is_leader or not self._scheduler.running:
            return
        self._deliver_now.set()
        if self._ticking.is_set():  # the running tick goes round once more when it is done
            self._poked.set()
            return
        try:
            self._scheduler.modify_job("reconcile", next_run_time=utcnow())
        except Exception:  # shutting down, or the job is gone
            log.debug("poke ignored", exc_info=True)

    def _fast(self) -> None:
        """Between ticks, probe only islands about to be ready; a server that has just opened
        its port gets a tick at once instead of waiting for the next interval."""
        if not self.lease.is_leader:
            return
        try:
            if self.engine.worth_an_early_tick():
                self._tick()
        except Exception as exc:
            log_failure(log, "fast readiness check failed", exc)

    def stop(self) -> None:
        """Graceful: let a running tick finish, stop the jobs, hand the lease over."""
        self._scheduler.shutdown(wait=True)
        self._stopping.set()
        self._deliver_now.set()
        if self._delivery.is_alive():
            self._delivery.join(timeout=30)
        self.engine.close()
        try:
            if self.lease.is_leader:
                self.lease.release()
        except Exception as exc:
            log_failure(log, "releasing the leader lease failed", exc)
        log.info("lifecycle loop stopped after %d ticks", self.stats.ticks)
