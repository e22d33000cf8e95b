"""The result of a clock change is recorded once (SQLite and MariaDB): ``applied`` and
``failed`` write only while the request is still being applied, and say whether they did; the
one that comes second (a stale copy of the request in hand) writes, announces and audits
nothing (issue 21, defect 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, func, select

from bot.domain.errors import Conflict
from bot.domain.lifecycle_rules import Notice
from bot.domain.records import ClockAsk, ClockRecord
from bot.domain.states import IslandState
from bot.infra.storage.clock_requests import APPLYING, ClockRequests
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.tables import AuditEntry, OutboxMessage
from tests.infra.storage.test_allocation import T0, FakeClock, make_allocator, req

DAY = 86400


def island(db: Database, clock: FakeClock) -> int:
    return make_allocator(db, clock=clock).allocate(req()).island_id


def being_applied(requests: ClockRequests, island_id: int, shift_s: int = DAY) -> ClockRecord:
    """The owner's shift: recorded as being applied."""
    request, _ = requests.ask(
        island_id,
        lambda isl: ClockAsk(
            requested_by="U1ALICE",
            from_offset_s=isl.clock_offset_s,
            to_offset_s=isl.clock_offset_s + shift_s,
            kind="relative",
            target_at=None,
            immediate=True,
            expires_at=T0 + timedelta(hours=1),
            chat_channel="C0TEAM",
        ),
    )
    assert request.state == APPLYING
    return request


def results(db: Database, island_id: int) -> tuple[int, int]:
    """The island's clock notices and clock result audit entries."""

    def read(conn: Connection) -> tuple[int, int]:
        notices = conn.execute(
            select(func.count()).where(
                OutboxMessage.island_id == island_id,
                OutboxMessage.kind.in_([Notice.CLOCK_SHIFTED.value, Notice.CLOCK_FAILED.value]),
            )
        ).scalar_one()
        audited = conn.execute(
            select(func.count()).where(
                AuditEntry.island_id == island_id,
                AuditEntry.action.in_(["clock:applied", "clock:failed"]),
            )
        ).scalar_one()
        return int(notices), int(audited)

    return db.run(read, what="clock results")


def apply(
    requests: ClockRequests, request: ClockRecord, from_s: int, to_s: int
) -> tuple[ClockRecord, bool]:
    return requests.applied(
        request,
        actor="U1ALICE",
        from_s=from_s,
        to_s=to_s,
        notice=(Notice.CLOCK_SHIFTED, {}),
        state=IslandState.REQUESTED,
    )


def fail(requests: ClockRequests, request: ClockRecord) -> tuple[ClockRecord, bool]:
    return requests.failed(
        request,
        actor="U1ALICE",
        error="clock busy",
        why={"failure": "busy", "about": {"island_id": request.island_id}},
        notice=(Notice.CLOCK_FAILED, {}),
    )


def test_applied_wins_once_and_a_second_applied_writes_nothing(db: Database) -> None:
    clock = FakeClock(T0)
    requests = ClockRequests(db, clock=clock)
    island_id = island(db, clock)
    stale = being_applied(requests, island_id)
    record, won = apply(requests, stale, 0, DAY)
    assert won and record.state == "applied" and record.applied_at == T0
    clock.now = T0 + timedelta(minutes=3)
    # a second applier with the same (stale) request in hand: +1d on top of the first
    again, won = apply(requests, stale, DAY, 2 * DAY)
    assert not won
    assert again == record  # the request as the winner left it
    assert IslandStore(db).get(island_id).clock_offset_s == DAY
    assert results(db, island_id) == (1, 1)  # announced and audited once


@pytest.mark.parametrize("first", ["applied", "failed"])
def test_failed_after_a_result_writes_nothing(db: Database, first: str) -> None:
    clock = FakeClock(T0)
    requests = ClockRequests(db, clock=clock)
    island_id = island(db, clock)
    stale = being_applied(requests, island_id)
    settled, won = apply(requests, stale, 0, DAY) if first == "applied" else fail(requests, stale)
    assert won and settled.state == first
    record, won = fail(requests, stale)
    assert not won and record == settled
    assert IslandStore(db).get(island_id).clock_offset_s == (DAY if first == "applied" else 0)
    assert results(db, island_id) == (1, 1)


def test_applied_after_failed_writes_nothing(db: Database) -> None:
    clock = FakeClock(T0)
    requests = ClockRequests(db, clock=clock)
    island_id = island(db, clock)
    stale = being_applied(requests, island_id)
    failed, won = fail(requests, stale)
    assert won and failed.state == "failed" and failed.failure_reason == "clock busy"
    record, won = apply(requests, stale, 0, DAY)
    assert not won and record == failed
    assert IslandStore(db).get(island_id).clock_offset_s == 0
    assert results(db, island_id) == (1, 1)


@pytest.mark.parametrize("state", ["pending", "rejected", "superseded", "expired"])
def test_a_request_not_being_applied_is_never_settled(db: Database, state: str) -> None:
    clock = FakeClock(T0)
    requests = ClockRequests(db, clock=clock)
    island_id = island(db, clock)
    asked, _ = requests.ask(
        island_id,
        lambda isl: ClockAsk(
            requested_by="U1BOB",
            from_offset_s=0,
            to_offset_s=DAY,
            kind="relative",
            target_at=None,
            immediate=False,
            expires_at=T0 + timedelta(hours=1),
            chat_channel="C0TEAM",
        ),
    )
    if state == "rejected":
        requests.decide(asked.id, by="U1ALICE", approve=False, check=lambda _r, _i: None)
    elif state == "superseded":  # by the owner's own shift
        being_applied(requests, island_id, shift_s=-60)
    elif state == "expired":
        clock.now = T0 + timedelta(hours=2)
        requests.expire()
    current = requests.get(asked.id)
    assert current.state == state
    assert apply(requests, asked, 0, DAY) == (current, False)
    assert fail(requests, asked) == (current, False)
    assert IslandStore(db).get(island_id).clock_offset_s == 0
    assert results(db, island_id) == (0, 0)


def test_applied_on_an_island_moved_on_raises_and_a_later_failed_wins(db: Database) -> None:
    """The guard on the island's state stays: nothing written, the request still being
    applied, so its failure can be recorded."""
    clock = FakeClock(T0)
    requests = ClockRequests(db, clock=clock)
    island_id = island(db, clock)
    request = being_applied(requests, island_id)
    with pytest.raises(Conflict):
        requests.applied(
            request,
            actor="U1ALICE",
            from_s=0,
            to_s=DAY,
            notice=(Notice.CLOCK_SHIFTED, {}),
            state=IslandState.READY,  # it is only requested
        )
    assert requests.get(request.id).state == APPLYING
    assert results(db, island_id) == (0, 0)
    record, won = fail(requests, request)
    assert won and record.state == "failed"


def test_an_applier_rereads_the_request_and_its_island(db: Database) -> None:
    clock = FakeClock(T0)
    requests = ClockRequests(db, clock=clock)
    island_id = island(db, clock)
    request = being_applied(requests, island_id)
    now, isl = requests.with_island(request)
    assert now == request and isl.id == island_id and isl.clock_offset_s == 0
    applied, _ = apply(requests, request, 0, DAY)
    assert requests.with_island(request) == (applied, IslandStore(db).get(island_id))
    assert applied.state == "applied" and IslandStore(db).get(island_id).clock_offset_s == DAY
