"""Leader election and the scheduled loop: one replica runs the jobs; another takes over when
it dies or steps down."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

from bot.app.reconcile.engine import LifecycleSettings, TickReport
from bot.infra.storage.database import Database
from bot.infra.storage.lease import Deposed, LeaderLease
from bot.run.loop import LifecycleService, _SkippedRunFilter


def test_one_leader_at_a_time_and_takeover_after_expiry(db: Database) -> None:
    a = LeaderLease(db, holder="a", ttl=timedelta(seconds=1))
    b = LeaderLease(db, holder="b", ttl=timedelta(seconds=1))
    assert a.try_acquire() is True and a.epoch == 1
    assert b.try_acquire() is False
    time.sleep(0.5)
    assert a.try_acquire() is True and a.epoch == 1  # renewed, same epoch
    time.sleep(0.6)
    assert b.try_acquire() is False  # a renewed 0.6 s ago
    time.sleep(1.2)  # a's lease expired: it died
    assert b.try_acquire() is True and b.epoch == 2  # a new holder, a new epoch
    assert a.try_acquire() is False and not a.is_leader
    b.release()
    assert a.try_acquire() is True and a.epoch == 3  # no need to wait after a hand-over


def test_a_deposed_holder_is_fenced_out(db: Database) -> None:
    a = LeaderLease(db, holder="a", ttl=timedelta(seconds=1))
    b = LeaderLease(db, holder="b", ttl=timedelta(seconds=1))
    assert a.try_acquire()
    db.run(a.fence, what="fence")  # still the holder
    time.sleep(1.2)
    with pytest.raises(Deposed):  # expired, even before anyone else took it
        db.run(a.fence, what="fence")
    assert b.try_acquire()
    with pytest.raises(Deposed):  # taken by b
        db.run(a.fence, what="fence")
    db.run(b.fence, what="fence")


def test_racing_replicas_never_both_lead(db: Database) -> None:
    leases = [LeaderLease(db, holder=f"r{i}", ttl=timedelta(seconds=30)) for i in range(8)]
    barrier = threading.Barrier(len(leases))
    results: dict[str, bool] = {}

    def race(lease: LeaderLease) -> None:
        barrier.wait()
        results[lease.holder] = lease.try_acquire()

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(results.values()) == 1


class CountingEngine:
    def __init__(self) -> None:
        self.ticks = 0

    def tick(self) -> TickReport:
        self.ticks += 1
        return TickReport()

    def worth_an_early_tick(self) -> bool:
        return False

    inline_ready_probes = True

    def probe_ready(self) -> int:
        return 0

    inline_delivery = True

    def deliver(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def housekeeping(self) -> dict[str, int]:
        return {}

    inline_exclusions = True
    settings = LifecycleSettings()
    batches = SimpleNamespace(inline_creates=True, on_written=None)
    deliverer = SimpleNamespace(
        on_part_done=None,
        settle=lambda timeout: True,
        outcomes=SimpleNamespace(record_owed=lambda: None),
    )

    def refresh_exclusions(self) -> None:
        pass


def test_only_the_leader_ticks_and_a_follower_takes_over(db: Database) -> None:
    engines = [CountingEngine(), CountingEngine()]
    services = [
        LifecycleService(
            e,
            LeaderLease(
                db,
                holder=f"s{i}",  # type: ignore[arg-type]
                ttl=timedelta(seconds=1),
            ),
            interval=timedelta(seconds=0.05),
        )
        for i, e in enumerate(engines)
    ]
    for s in services:
        s.start()
    try:
        time.sleep(1.0)
        leader = 0 if engines[0].ticks else 1
        follower = 1 - leader
        assert engines[leader].ticks >= 5 and engines[follower].ticks == 0
        # the leader dies without a word (no release): its lease runs out, the other leads
        services[leader]._scheduler.shutdown(wait=True)
        began = time.monotonic()
        while engines[follower].ticks == 0 and time.monotonic() - began < 5:
            time.sleep(0.05)
        assert engines[follower].ticks > 0
        assert time.monotonic() - began < 2.5  # about one ttl
    finally:
        services[1 - leader].stop()


def test_a_kept_lease_outlives_its_ttl_and_is_released_after(db: Database) -> None:
    """A clock change that takes longer than its lease's ttl keeps the lease to the end."""
    worker = LeaderLease(db, holder="worker", name="clock-7", ttl=timedelta(seconds=0.6))
    other = LeaderLease(db, holder="other", name="clock-7", ttl=timedelta(seconds=0.6))
    assert worker.try_acquire()
    with worker.kept():
        deadline = time.monotonic() + 1.8  # three ttls
        while time.monotonic() < deadline:
            assert not other.try_acquire()
            time.sleep(0.1)
    assert other.try_acquire()  # released at once when the work is done


def test_scheduled_runs_are_not_logged(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """At INFO, a job run that went well says nothing (the fast check runs ten times a
    second); the loop's own messages still come through."""
    caplog.set_level("INFO")
    engine = CountingEngine()
    service = LifecycleService(
        engine,  # type: ignore[arg-type]
        LeaderLease(db, holder="quiet", ttl=timedelta(seconds=5)),
        interval=timedelta(seconds=0.05),
    )
    service.start()
    try:
        time.sleep(1.0)
    finally:
        service.stop()
    assert engine.ticks >= 5
    chatter = [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")]
    assert not [m for m in chatter if "executed successfully" in m or m.startswith("Running job")]


def test_a_job_held_up_is_told_once_a_minute_not_at_every_skipped_run() -> None:
    """While a job's run goes on (the database stalled), APScheduler warns at each run it
    skips: one line a minute per job is kept, so a hung job still shows; the 0.1 s check's
    skips are never told."""

    def skipped(job: str) -> logging.LogRecord:
        message = (
            f'Execution of job "{job} (trigger: interval[0:00:01], next run at: x)" '
            "skipped: maximum number of running instances reached (1)"
        )
        return logging.LogRecord("apscheduler.scheduler", logging.WARNING, "", 0, message, (), None)

    kept = _SkippedRunFilter()
    told = [kept.filter(skipped(j)) for j in ["LifecycleService._tick"] * 5]
    assert told == [True, False, False, False, False]
    assert kept.filter(skipped("LifecycleService._renew"))  # another job: told
    assert not kept.filter(skipped("LifecycleService._fast"))
    other = logging.LogRecord("apscheduler.scheduler", logging.WARNING, "", 0, "other", (), None)
    assert kept.filter(other)
