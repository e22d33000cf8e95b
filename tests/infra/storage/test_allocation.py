"""The allocation contract, run on every database backend (SQLite, and MariaDB in CI)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bench.loadgen import stop
from bot.domain.errors import Conflict, NotFound, PortsExhausted, QuotaExceeded, UserError
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.records import StartRequest
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.tables import AuditEntry, Island, PortBlock
from bot.words import refusals

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_allocator(
    db: Database,
    *,
    first: int = 30000,
    last: int = 30029,
    size: int = 3,
    max_live: int = 3,
    clock: FakeClock | None = None,
) -> Allocator:
    allocator = Allocator(
        db,
        layout=BlockLayout(PortRange(first, last), size),
        max_live_per_user=max_live,
        clock=clock or FakeClock(),
    )
    allocator.sync_layout()
    return allocator


def req(
    user: str = "U1ALICE", *, key: str | None = None, branch: str = "dev", name: str = "Alice"
) -> StartRequest:
    return StartRequest(
        owner_id=user, owner_name=name, branch=branch, ttl=timedelta(hours=8), request_key=key
    )


def stop_and_release(db: Database, allocator: Allocator, island_id: int) -> None:
    stop(IslandStore(db), island_id, actor="U1ALICE")
    assert allocator.release(island_id) is True


def test_allocates_lowest_blocks_with_increasing_ids(db: Database) -> None:
    allocator = make_allocator(db, max_live=10)
    first = allocator.allocate(req())
    second = allocator.allocate(req())
    assert (first.first_port, second.first_port) == (30000, 30003)
    assert first.ports == (30000, 30001, 30002)
    assert second.island_id > first.island_id
    assert first.created and second.created
    assert first.expires_at == T0 + timedelta(hours=8)
    assert first.pod_name == f"island-alice-dev-{first.island_id}"
    record = IslandStore(db).get(first.island_id)
    assert record.state == "requested"
    assert record.ports == first.ports
    assert record.pod_name == first.pod_name


def test_released_blocks_are_reused_lowest_first_but_ids_never(db: Database) -> None:
    allocator = make_allocator(db, max_live=10)
    islands = [allocator.allocate(req()) for _ in range(4)]  # 30000, 30003, 30006, 30009
    for island in (islands[2], islands[0]):
        stop_and_release(db, allocator, island.island_id)
    again = [allocator.allocate(req()) for _ in range(3)]
    assert [a.first_port for a in again] == [30000, 30006, 30012]
    ids = [i.island_id for i in islands + again]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_release_needs_a_stopped_island_and_is_idempotent(db: Database) -> None:
    allocator = make_allocator(db)
    island = allocator.allocate(req())
    with pytest.raises(Conflict) as refused:
        allocator.release(island.island_id)
    assert "its ports are freed only once it is stopped" in refusals.text(refused.value)
    assert allocator.usage().held == 1  # refused release changed nothing
    stop_and_release(db, allocator, island.island_id)
    assert allocator.release(island.island_id) is False
    assert allocator.usage().held == 0
    with pytest.raises(NotFound):
        allocator.release(999_999)
    released_at = IslandStore(db).get(island.island_id).ports_released_at
    assert released_at == T0


def test_request_key_makes_allocation_idempotent(db: Database) -> None:
    allocator = make_allocator(db)
    first = allocator.allocate(req(key="trigger-1"))
    again = allocator.allocate(req(key="trigger-1"))
    assert again.island_id == first.island_id and again.first_port == first.first_port
    assert not again.created
    assert allocator.usage().held == 1
    with pytest.raises(UserError) as refused:
        allocator.allocate(req("U2BOB", key="trigger-1"))
    assert "already used by someone else" in refusals.text(refused.value)
    # keys are exact: a different case is a different request
    other = allocator.allocate(req(key="TRIGGER-1"))
    assert other.island_id != first.island_id


def test_concurrent_deliveries_of_one_request_key_start_one_island(db: Database) -> None:
    allocator = make_allocator(db, max_live=3)
    results, errors = run_threads(12, lambda _i: allocator.allocate(req(key="retry-me")))
    assert not errors
    assert len({r.island_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert allocator.usage().held == 1


def test_quota_refusal_names_the_islands_and_writes_nothing(db: Database) -> None:
    allocator = make_allocator(db, max_live=2)
    a = allocator.allocate(req())
    b = allocator.allocate(req())
    with pytest.raises(QuotaExceeded) as refused:
        allocator.allocate(req())
    assert refused.value.island_ids == [a.island_id, b.island_id]
    assert f"#{a.island_id}, #{b.island_id}" in refusals.text(refused.value)
    assert "limit is 2" in refusals.text(refused.value)
    assert allocator.usage().held == 2
    assert count(db, Island) == 2
    # other users are not affected, and a stopped island frees a place
    allocator.allocate(req("U2BOB"))
    stop_and_release(db, allocator, a.island_id)
    allocator.allocate(req())
    audited = audit_rows(db, outcome="refused")
    assert [(r.actor, r.action, r.island_id) for r in audited] == [("U1ALICE", "start", None)]
    assert audited[0].detail == {  # the refusal's code and details, no sentence
        "branch": "dev",
        "refusal": "quota_exceeded",
        "about": {"limit": 2, "island_ids": [a.island_id, b.island_id]},
        "request_key": None,
    }


def test_a_failed_island_still_counts_toward_the_quota(db: Database) -> None:
    allocator = make_allocator(db, max_live=1)
    island = allocator.allocate(req())
    with db.engine.begin() as conn:
        conn.execute(
            Island.__table__.update()
            .where(Island.id == island.island_id)
            .values(state="failed", failure_reason="OOMKilled")
        )
    with pytest.raises(QuotaExceeded):
        allocator.allocate(req())


def test_concurrent_starts_by_one_user_cannot_pass_the_quota(db: Database) -> None:
    allocator = make_allocator(db, max_live=3)
    results, errors = run_threads(16, lambda _i: allocator.allocate(req()))
    assert len(results) == 3
    assert len(errors) == 13 and all(isinstance(e, QuotaExceeded) for e in errors)
    assert count(db, Island) == 3


def test_exhausted_range_is_a_clear_error_and_writes_nothing(db: Database) -> None:
    allocator = make_allocator(db, first=30000, last=30008, max_live=10)  # 3 blocks
    for user in ("U1A", "U1B", "U1C"):
        allocator.allocate(req(user))
    before = count(db, Island)
    with pytest.raises(PortsExhausted) as refused:
        allocator.allocate(req("U1D"))
    assert refusals.text(refused.value).startswith(
        "no free port block in 30000-30008: 3 islands live."
    )
    assert count(db, Island) == before
    assert allocator.usage().free == 0


def test_short_tail_of_the_range_is_never_used(db: Database) -> None:
    allocator = make_allocator(db, first=30000, last=30004, max_live=5)  # one block + 2 ports
    assert allocator.allocate(req()).first_port == 30000
    with pytest.raises(PortsExhausted):
        allocator.allocate(req())


def test_excluded_ports_are_never_handed_out(db: Database) -> None:
    allocator = make_allocator(db, max_live=10)  # blocks 30000..30027
    conflicts = allocator.set_excluded_ports(
        {30001: "NodePort default/web", 30010: "NodePort ops/grafana"}
    )
    assert conflicts == []
    ports = [allocator.allocate(req()).first_port for _ in range(3)]
    assert ports == [30003, 30006, 30012]
    usage = allocator.usage()
    assert (usage.blocks, usage.held, usage.excluded, usage.free) == (10, 3, 2, 5)
    # lifting an exclusion makes the block available again, lowest first
    allocator.set_excluded_ports({30010: "NodePort ops/grafana"})
    assert allocator.allocate(req()).first_port == 30000


def test_exclusion_of_a_held_port_is_reported_not_taken_away(db: Database) -> None:
    allocator = make_allocator(db)
    island = allocator.allocate(req())
    conflicts = allocator.set_excluded_ports({30002: "NodePort default/web"})
    assert [(c.island_id, c.first_port) for c in conflicts] == [(island.island_id, 30000)]
    assert "30002: NodePort default/web" in conflicts[0].reason
    stop_and_release(db, allocator, island.island_id)
    assert allocator.allocate(req()).first_port == 30003


def test_exclusions_apply_to_blocks_created_later(db: Database) -> None:
    allocator = make_allocator(db, first=30000, last=30008)
    allocator.set_excluded_ports({30010: "NodePort x/y"})
    wider = make_allocator(db, first=30000, last=30017)
    assert wider.usage().excluded == 1
    assert 30009 not in {b.first_port for b in blocks(db) if b.excluded_reason is None}


def test_layout_change_keeps_held_blocks_until_released(db: Database) -> None:
    old = make_allocator(db, first=30000, last=30029, size=3, max_live=10)
    held = old.allocate(req())  # 30000-30002
    kept = old.allocate(req())  # 30003-30005
    stop_and_release(db, old, kept.island_id)
    new = Allocator(
        db, layout=BlockLayout(PortRange(30000, 30029), 5), max_live_per_user=10, clock=FakeClock()
    )
    waiting = new.sync_layout()
    assert waiting == [30000]  # overlaps the held old block
    rows = {b.first_port: b for b in blocks(db)}
    assert rows[30000].retired and rows[30000].island_id == held.island_id
    assert sorted(rows) == [30000, 30005, 30010, 30015, 30020, 30025]
    assert rows[30000].size == 3
    assert new.allocate(req()).first_port == 30005
    stop_and_release(db, new, held.island_id)  # retired block is deleted, layout completed
    rows = {b.first_port: b for b in blocks(db)}
    assert rows[30000].size == 5 and not rows[30000].retired and rows[30000].island_id is None
    assert new.allocate(req()).first_port == 30000
    assert_no_overlap(db)


def test_sync_is_idempotent_and_shrinking_drops_only_free_blocks(db: Database) -> None:
    allocator = make_allocator(db, first=30000, last=30029, max_live=10)
    allocator.sync_layout()
    assert allocator.usage().blocks == 10
    far = [allocator.allocate(req()) for _ in range(5)][-1]  # 30012
    small = make_allocator(db, first=30000, last=30008, max_live=10)
    rows = {b.first_port: b for b in blocks(db)}
    assert sorted(rows) == [30000, 30003, 30006, 30009, 30012]
    assert rows[30012].retired and rows[30012].island_id == far.island_id
    assert small.usage().held == 5


def test_every_start_and_release_is_audited(db: Database) -> None:
    allocator = make_allocator(db)
    island = allocator.allocate(req(key="k1"))
    stop_and_release(db, allocator, island.island_id)
    rows = audit_rows(db)
    assert [(r.action, r.outcome, r.island_id) for r in rows] == [
        ("start", "ok", island.island_id),
        ("state:stopped", "ok", island.island_id),
        ("release_ports", "ok", island.island_id),
    ]
    assert rows[0].detail["first_port"] == 30000 and rows[0].detail["request_key"] == "k1"
    assert rows[0].at == T0


def test_unicode_names_and_long_names_are_stored_exactly(db: Database) -> None:
    allocator = make_allocator(db)
    name = "Zoë 刮风 " + "x" * 150
    island = allocator.allocate(req("U1ZOE", name=name))
    record = IslandStore(db).get(island.island_id)
    assert record.owner_name == name
    assert record.pod_name.startswith("island-zoe-x") and len(record.pod_name) <= 63


# ---- helpers ------------------------------------------------------------------------------


def run_threads(n: int, fn):  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n)
    results, errors, lock = [], [], threading.Lock()

    def body(i: int) -> None:
        barrier.wait()
        try:
            out = fn(i)
        except Exception as exc:
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(out)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def count(db: Database, model: type) -> int:
    with db.engine.connect() as conn:
        return len(conn.execute(select(model)).all())


def blocks(db: Database) -> list[PortBlock]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(PortBlock).order_by(PortBlock.first_port)).all())


def audit_rows(db: Database, **where: str) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    for key, value in where.items():
        stmt = stmt.where(getattr(AuditEntry, key) == value)
    with db.engine.connect() as conn:
        return list(conn.execute(stmt).all())


def assert_no_overlap(db: Database) -> None:
    rows = blocks(db)
    for a, b in itertools.pairwise(rows):
        assert a.first_port + a.size <= b.first_port, (a, b)
