"""A clock change carried out once (issue 21, defect 3): whoever takes the island's clock
lease second finds the request settled and neither applies nor announces it again.

Two replicas over one database, with the real lease. Either replica A applies the owner's
``+1d`` and is slow (it pauses before recording its result) while the leader's resume job
lists the request as stuck and pauses before taking the lease until A has finished; or A
stalls between recording an approval and taking the lease while the leader resumes it. The
pauses are barriers at the storage boundary: the storage itself is the real one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.app.clock_actions import ClockActions
from bot.domain.island_clock import When, WhenKind
from bot.domain.lifecycle_rules import Notice
from bot.domain.permissions import Policy
from bot.domain.records import Caller, ClockRecord, ShiftOutcome
from bot.domain.time_source import Clock
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry, Island, OutboxMessage
from tests.app.reconcile_world import SIM, ShiftedClock, World
from tests.kube_access import cluster

DAY = 86400
WAIT_S = 20  # a barrier never waited for longer (a hang fails the test instead)


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[World]:
    """An island not yet created (its clock moves in the database only: no pod is needed)."""
    with cluster(SIM, tmp_path / "kubeconfig") as sim:
        w = World(db, sim)
        yield w
        w.kube.close()


class SlowResult(ClockRequests):
    """Replica A's storage: its result is recorded only once ``go`` is set (a slow apply:
    minutes of exec retries), ``reached`` saying it got there, the clock lease held."""

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db, clock=clock)
        self.reached, self.go = threading.Event(), threading.Event()

    def applied(self, request: ClockRecord, **kwargs: Any) -> tuple[ClockRecord, bool]:
        self.reached.set()
        assert self.go.wait(WAIT_S)
        return super().applied(request, **kwargs)


class ListsThenWaits(ClockRequests):
    """The leader's storage: the stuck requests it lists are acted on only once ``go`` is
    set, ``listed`` saying they were read."""

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db, clock=clock)
        self.listed, self.go = threading.Event(), threading.Event()

    def applying(self, *, older_than: timedelta) -> list[ClockRecord]:
        found = super().applying(older_than=older_than)
        self.listed.set()
        assert self.go.wait(WAIT_S)
        return found


def replica(world: World, clock: Clock) -> ClockActions:
    return ClockActions(
        db=world.db, kube=world.kube, policy=Policy(), server_container="server", clock=clock
    )


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    return thread, done


def count(db: Database, query: Any) -> int:
    return int(db.run(lambda conn: conn.execute(query).scalar_one(), what="count"))


@pytest.mark.parametrize("then", ["nothing", "pod created"])
def test_a_slow_apply_finishing_before_the_resume_takes_the_lease_is_not_applied_again(
    world: World, then: str
) -> None:
    """``pod created``: the tick created the island's pod after A recorded its shift; a
    resume carrying it out again would turn the applied request into a failed one."""
    island_id = world.start()  # requested: a shift only moves its recorded offset
    applier = replica(world, world.clock)
    slow = SlowResult(world.db, world.clock)
    applier.requests = slow
    leader_clock = ShiftedClock()  # two minutes on, the leader sees the shift as stuck
    leader_clock.offset = timedelta(minutes=5)
    leader = replica(world, leader_clock)
    listing = ListsThenWaits(world.db, leader_clock)
    leader.requests = listing

    a, shifted = in_thread(
        lambda: applier.shift(Caller("U0ALICE", "alice"), island_id, When(WhenKind.RELATIVE, DAY))
    )
    assert slow.reached.wait(WAIT_S)  # A holds the lease, its +1d not yet recorded
    b, _ = in_thread(leader.resume_stuck)
    assert listing.listed.wait(WAIT_S)  # the leader has read the request as applying
    slow.go.set()
    a.join(WAIT_S)  # A recorded +1d and released the lease
    assert not a.is_alive()
    if then == "pod created":
        world.db.run(
            lambda conn: conn.execute(
                update(Island).where(Island.id == island_id).values(state="creating")
            ),
            what="the tick created its pod",
        )
    listing.go.set()
    b.join(WAIT_S)  # the leader takes the free lease
    assert not b.is_alive()

    (outcome,) = shifted
    assert isinstance(outcome, ShiftOutcome) and outcome.request.state == "applied"
    (request,) = applier.history(island_id)
    assert request.state == "applied", request.failure_reason
    assert (request.from_offset_s, request.to_offset_s) == (0, DAY)
    assert applier.show(island_id).offset_s == DAY  # +1d once, not +2d
    notices = select(func.count()).where(
        OutboxMessage.island_id == island_id,
        OutboxMessage.kind.in_([Notice.CLOCK_SHIFTED.value, Notice.CLOCK_FAILED.value]),
    )
    assert count(world.db, notices) == 1  # announced once
    results = select(func.count()).where(
        AuditEntry.island_id == island_id,
        AuditEntry.action.in_(["clock:applied", "clock:failed"]),
    )
    assert count(world.db, results) == 1


class SlowStart(ClockRequests):
    """Replica A's storage: after the approval is recorded, A goes on (to take the lease and
    apply) only once ``go`` is set, ``reached`` saying it got there."""

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db, clock=clock)
        self.reached, self.go = threading.Event(), threading.Event()

    def decide(self, request_id: int, **kwargs: Any) -> ClockRecord:
        decided = super().decide(request_id, **kwargs)
        self.reached.set()
        assert self.go.wait(WAIT_S)
        return decided


def test_an_approval_resumed_by_the_leader_before_its_applier_takes_the_lease_is_applied_once(
    world: World,
) -> None:
    """A stalls between recording the approval and taking the lease; the leader resumes the
    request and records it while A waits for the lease: A, once it has the lease, finds the
    request applied and does not apply it again."""
    island_id = world.start()
    applier = replica(world, world.clock)
    stalled = SlowStart(world.db, world.clock)
    applier.requests = stalled
    leader_clock = ShiftedClock()
    leader_clock.offset = timedelta(minutes=5)
    leader = replica(world, leader_clock)
    slow = SlowResult(world.db, leader_clock)
    leader.requests = slow
    bob = applier.shift(Caller("U0BOB", "bob"), island_id, When(WhenKind.RELATIVE, DAY))
    assert bob.request.state == "pending"

    a, decided = in_thread(
        lambda: applier.decide(Caller("U0ALICE", "alice"), bob.request.id, approve=True)
    )
    assert stalled.reached.wait(WAIT_S)  # approved, A not yet at the lease
    b, _ = in_thread(leader.resume_stuck)
    assert slow.reached.wait(WAIT_S)  # the leader holds the lease, its +1d not yet recorded
    stalled.go.set()  # A now waits for the lease
    slow.go.set()
    b.join(WAIT_S)
    a.join(WAIT_S)
    assert not a.is_alive() and not b.is_alive()

    (record,) = decided
    assert isinstance(record, ClockRecord) and record.state == "applied"
    assert [r.state for r in applier.history(island_id)] == ["applied"]
    assert applier.show(island_id).offset_s == DAY  # +1d once, not +2d
    shifted = select(func.count()).where(
        OutboxMessage.island_id == island_id, OutboxMessage.kind == Notice.CLOCK_SHIFTED.value
    )
    assert count(world.db, shifted) == 1
