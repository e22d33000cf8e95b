"""Warm pools in the database, on every backend: a claim takes the oldest fresh ready pool
island in the start's transaction, or says why not; the keeper's fills and recycles are
guarded so that a claim made meanwhile wins; nothing leaks a port."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.domain.errors import QuotaExceeded
from bot.domain.pool import POOL_OWNER, Miss, PoolUse, Recycle
from bot.domain.records import StartRequest
from bot.domain.states import IslandState
from bot.infra.storage import pools
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.pools import PoolStore
from bot.infra.storage.tables import AuditEntry, Island, OutboxMessage, PoolDay
from tests.infra.storage.test_allocation import FakeClock, make_allocator, stop_and_release

DAY = timedelta(hours=24)
USE = PoolUse(size=2, servable=True, max_age=DAY)


def start(
    user: str = "U1ALICE", *, pool: PoolUse | None = USE, key: str | None = None
) -> StartRequest:
    return StartRequest(
        owner_id=user,
        owner_name=user.lower(),
        branch="dev",
        ttl=timedelta(hours=8),
        request_key=key,
        chat_channel="C0TEAM",
        note="checkout",
        pool=pool,
    )


def warm(db: Database, clock: FakeClock, n: int, *, code: str | None = None) -> list[int]:
    """``n`` pool islands of dev, ready (as the lifecycle would have made them)."""
    made = PoolStore(db, clock=clock).fill("dev", n, size=3, lives=DAY + timedelta(hours=1))
    db.run(
        lambda conn: conn.execute(
            update(Island)
            .where(Island.id.in_(made))
            .values(state="ready", host_ip="127.0.0.2", node="dev-1", code_version=code)
        ),
        what="ready",
    )
    return made


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def allocator(db: Database, clock: FakeClock) -> Allocator:
    return make_allocator(db, last=30089, max_live=3, clock=clock)


def test_a_claim_takes_the_oldest_ready_island_and_tells_its_owner_at_once(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    first, second = warm(db, clock, 2)
    clock.now += timedelta(minutes=5)
    got = allocator.allocate(start(key="T1"))
    assert got.claimed and got.island_id == first and got.created
    assert got.expires_at == clock.now + timedelta(hours=8)
    island = IslandStore(db).get(first)
    assert (island.owner_id, island.owner_name, island.note) == ("U1ALICE", "u1alice", "checkout")
    assert island.state == IslandState.READY and island.claimed_at == clock.now
    assert island.pod_name == f"island-pool-dev-{first}"  # its pod keeps its name
    assert island.chat_channel == "C0TEAM" and not island.pooled
    with db.engine.connect() as conn:
        kinds = conn.execute(
            select(OutboxMessage.kind, OutboxMessage.detail).where(OutboxMessage.island_id == first)
        ).all()
        day = conn.execute(select(func.sum(PoolDay.claims), func.sum(PoolDay.misses))).one()
        entry = conn.execute(
            select(AuditEntry.detail).where(
                AuditEntry.action == "start", AuditEntry.island_id == first
            )
        ).scalar_one()
    assert [k for k, _ in kinds] == ["announce", "ready"]
    assert kinds[1][1] == {"host": "127.0.0.2", "node": "dev-1", "warm": True}
    assert tuple(day) == (1, 0)
    assert entry["pool"] == "claimed"
    # the same request again (a retried delivery) finds the claim, never a second island
    again = allocator.allocate(start(key="T1"))
    assert again.island_id == first and not again.created
    assert IslandStore(db).get(second).pooled


def test_what_a_warm_island_cannot_serve_goes_the_cold_way_saying_why(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    warm(db, clock, 1)
    with_set = allocator.allocate(start(pool=replace(USE, servable=False)))
    assert not with_set.claimed and with_set.miss == Miss.OPTIONS
    taken = allocator.allocate(start("U2BOB"))
    assert taken.claimed
    empty = allocator.allocate(start("U3CAROL"))
    assert not empty.claimed and empty.miss == Miss.EMPTY
    no_pool = allocator.allocate(start("U4DAN", pool=replace(USE, size=0)))
    assert not no_pool.claimed and no_pool.miss is None  # no pool: nothing to say
    with db.engine.connect() as conn:
        misses = conn.execute(
            select(OutboxMessage.island_id, OutboxMessage.detail).where(
                OutboxMessage.kind == "pool_miss"
            )
        ).all()
        day = conn.execute(select(func.sum(PoolDay.claims), func.sum(PoolDay.misses))).one()
    assert {i: d["why"] for i, d in misses} == {
        with_set.island_id: "options",
        empty.island_id: "empty",
    }
    assert tuple(day) == (1, 2)


def test_an_admins_size_from_chat_wins_over_the_deployments(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    warm(db, clock, 1)
    store = PoolStore(db, clock=clock)
    store.set_size("dev", 0, by="U0ADMIN")
    off = allocator.allocate(start())
    assert not off.claimed and off.miss is None
    store.set_size("dev", None, by="U0ADMIN")  # back to the deployment's (USE.size = 2)
    assert allocator.allocate(start("U2BOB")).claimed


@pytest.mark.parametrize("why", ["age", "refresh", "code"])
def test_a_stale_warm_island_is_never_handed_out(
    db: Database, clock: FakeClock, allocator: Allocator, why: str
) -> None:
    store = PoolStore(db, clock=clock)
    (island,) = warm(db, clock, 1, code="v1")
    if why == "age":
        clock.now += DAY
    elif why == "refresh":
        clock.now += timedelta(minutes=1)
        assert store.refresh("dev", by="ci") == 1
    else:  # a person's island of the branch registered having booted newer code
        db.run(lambda conn: pools.note_code_version(conn, "dev", "v2", clock.now), what="code")
    got = allocator.allocate(start())
    assert not got.claimed and got.miss == Miss.EMPTY
    assert IslandStore(db).get(island).pooled


def test_a_warm_island_not_yet_registered_is_handed_out_whatever_the_newest_code(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    warm(db, clock, 1, code=None)
    db.run(lambda conn: pools.note_code_version(conn, "dev", "v2", clock.now), what="code")
    assert allocator.allocate(start()).claimed


def test_only_ready_islands_are_handed_out(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    made = PoolStore(db, clock=clock).fill("dev", 3, size=3, lives=DAY)
    for island_id, state in zip(made, ["creating", "running", "failed"], strict=True):
        db.run(
            lambda conn, i=island_id, s=state: conn.execute(
                update(Island).where(Island.id == i).values(state=s)
            ),
            what="state",
        )
    assert allocator.allocate(start()).miss == Miss.EMPTY


def test_the_quota_counts_a_claim_and_a_refusal_changes_nothing(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    warm(db, clock, 4)
    for n in range(3):
        assert allocator.allocate(start(key=f"K{n}")).claimed
    with pytest.raises(QuotaExceeded):
        allocator.allocate(start(key="K3"))
    members = PoolStore(db, clock=clock).members()["dev"]
    assert len(members.members) == 1  # the fourth is still in its pool
    with db.engine.connect() as conn:
        assert conn.execute(select(func.sum(PoolDay.claims))).scalar_one() == 3


def test_recycling_is_guarded_a_claim_made_meanwhile_wins(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    first, second = warm(db, clock, 2)
    assert allocator.allocate(start()).island_id == first
    store = PoolStore(db, clock=clock)
    done = store.recycle(
        [
            (first, IslandState.READY, Recycle.SHRUNK),  # claimed since it was seen
            (second, IslandState.RUNNING, Recycle.SHRUNK),  # ready since it was seen
        ]
    )
    assert done == []
    assert store.recycle([(second, IslandState.READY, Recycle.TOO_OLD)]) == [second]
    assert IslandStore(db).get(second).state == IslandState.STOPPING
    assert IslandStore(db).get(first).state == IslandState.READY


def test_recycled_and_claimed_islands_give_their_ports_back(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    before = allocator.usage().free
    first, second, third = warm(db, clock, 3)
    claimed = allocator.allocate(start()).island_id
    assert claimed == first
    store = PoolStore(db, clock=clock)
    store.recycle([(i, IslandState.READY, Recycle.SHRUNK) for i in (second, third)])
    for island_id in (claimed, second, third):
        stop_and_release(db, allocator, island_id)
    assert allocator.usage().free == before
    assert store.members() == {}


def test_fill_stops_at_the_last_free_port_block(db: Database, clock: FakeClock) -> None:
    allocator = make_allocator(db, last=30008, clock=clock)  # three blocks
    made = PoolStore(db, clock=clock).fill("dev", 5, size=3, lives=DAY)
    assert len(made) == 3 and allocator.usage().free == 0
    rows = IslandStore(db).live()
    assert {r.owner_id for r in rows} == {POOL_OWNER}
    assert all(r.expires_at == clock.now + DAY for r in rows)


def test_a_fenced_keeper_writes_nothing(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    class Deposed(Exception):
        pass

    def fence(_conn: object) -> None:
        raise Deposed

    with pytest.raises(Deposed):
        PoolStore(db, clock=clock, fence=fence).fill("dev", 2, size=3, lives=DAY)
    assert IslandStore(db).live() == [] and allocator.usage().held == 0


def test_people_short_of_room_are_listed_per_branch(
    db: Database, clock: FakeClock, allocator: Allocator
) -> None:
    short = allocator.allocate(start(pool=None)).island_id
    selector = allocator.allocate(start("U2BOB", pool=None)).island_id
    (warm_one,) = warm(db, clock, 1)
    reasons = {
        short: "0/2 nodes are available: 2 Insufficient memory.",
        selector: "0/2 nodes are available: 2 node(s) didn't match node selector.",
        warm_one: "0/2 nodes are available: 2 Insufficient memory.",  # a pool island's own
    }
    for island_id, reason in reasons.items():
        db.run(
            lambda conn, i=island_id, r=reason: conn.execute(
                update(Island)
                .where(Island.id == i)
                .values(state="creating", unschedulable_message=r, node=None)
            ),
            what="unschedulable",
        )
    store = PoolStore(db, clock=clock)
    assert store.waiting_for_room() == {"dev": [short]}  # only room a pool island can give
    (member,) = store.members()["dev"].members
    assert member.unschedulable and not member.placed


def test_the_newest_code_is_the_one_first_seen_last(db: Database, clock: FakeClock) -> None:
    def seen(version: str) -> str | None:
        clock.now += timedelta(minutes=1)
        db.run(lambda conn: pools.note_code_version(conn, "dev", version, clock.now), what="code")
        return PoolStore(db, clock=clock).rows()["dev"].code_version

    assert seen("v1") == "v1"
    assert seen("v2") == "v2"
    # an island that booted v1 on a node CI has not reached yet registers late
    assert seen("v1") == "v2"
    assert seen("v3") == "v3"


def test_a_fill_never_makes_the_pool_larger_than_its_target(db: Database, clock: FakeClock) -> None:
    make_allocator(db, last=30089, clock=clock)
    store = PoolStore(db, clock=clock)
    assert len(store.fill("dev", 2, size=3, lives=DAY, target=3)) == 2
    # a keeper that lost the lead, and its successor, both decide to start 2
    assert len(store.fill("dev", 2, size=3, lives=DAY, target=3)) == 1
    assert store.fill("dev", 2, size=3, lives=DAY, target=3) == []
