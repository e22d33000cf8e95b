"""Several OS processes with many threads each allocate and release at once: no port or id is
ever handed out twice. Bounded by count (256 allocations per backend, a few seconds)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bench.loadgen import LoadSpec, run_load
from bot.domain.pool import POOL_OWNER
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.states import LIVE_VALUES
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.pools import PoolStore
from bot.infra.storage.tables import Island, PoolDay, PortBlock
from tests.dbutil import migrated


@pytest.mark.slow
def test_two_processes_of_sixteen_threads_never_share_a_port_or_id(db_url: str) -> None:
    # 80 blocks for 32 users holding up to 3 each: blocks run out, get reused, run out again.
    spec = LoadSpec(
        url=db_url,
        first_port=30000,
        last_port=30239,
        block_size=3,
        processes=2,
        threads_per_process=16,
        allocations_per_thread=8,  # bounded by count (a slow machine just takes longer)
        hold=2,
        max_live_per_user=3,
    )
    results, _wall = run_load(spec)

    errors = [e for r in results for e in r.errors]
    violations = [v for r in results for v in r.violations]
    ids = [i for r in results for i in r.island_ids]
    assert errors == []
    assert violations == []
    assert len(ids) == 2 * 16 * 8
    assert len(ids) == len(set(ids))
    assert sum(r.releases for r in results) >= 100, "blocks were not reused"

    db = migrated(db_url)
    with db.engine.connect() as conn:
        live = conn.execute(
            select(Island.id, Island.first_port, Island.port_count).where(
                Island.state.in_(LIVE_VALUES)
            )
        ).all()
        held = dict(
            conn.execute(
                select(PortBlock.island_id, PortBlock.first_port).where(
                    PortBlock.island_id.is_not(None)
                )
            ).all()
        )
    db.dispose()

    # what the database says is held is exactly what the workers think they hold
    expected = {i: p for r in results for i, p in r.held_at_end.items()}
    assert held == expected
    assert {row.id: row.first_port for row in live} == expected
    ports = [p for row in live for p in range(row.first_port, row.first_port + row.port_count)]
    assert len(ports) == len(set(ports))
    assert all(30000 <= p <= 30239 for p in ports)


@pytest.mark.slow
def test_two_processes_of_sixteen_threads_claiming_from_a_pool_never_share_an_island(
    db_url: str,
) -> None:
    """32 starts at once from two OS processes against a pool of 20 ready dev islands: each
    warm island goes to exactly one person, and every start is either served from the pool or
    sent down the cold path (told why), never lost."""
    spec = LoadSpec(
        url=db_url,
        first_port=30000,
        last_port=30299,
        block_size=3,
        processes=2,
        threads_per_process=16,
        allocations_per_thread=1,
        churn=False,
        max_live_per_user=3,
        pool=20,
    )
    db = migrated(db_url)
    allocator = Allocator(db, layout=BlockLayout(PortRange(30000, 30299), 3), max_live_per_user=3)
    allocator.sync_layout()
    warm = PoolStore(db).fill("dev", 20, size=3, lives=timedelta(hours=25))
    db.run(
        lambda conn: conn.execute(
            update(Island).where(Island.id.in_(warm)).values(state="ready", host_ip="127.0.0.2")
        ),
        what="ready",
    )
    results, _wall = run_load(spec)

    assert [e for r in results for e in r.errors] == []
    assert [v for r in results for v in r.violations] == []
    claimed = [i for r in results for i in r.claimed]
    assert len(claimed) == len(set(claimed)) == 20  # 0 doubles, the whole pool handed out
    assert set(claimed) == set(warm)
    assert sum(r.misses for r in results) == 12  # the rest went the cold way, told why
    assert len([i for r in results for i in r.island_ids]) == 32
    with db.engine.connect() as conn:
        owners = dict(
            conn.execute(select(Island.id, Island.owner_id).where(Island.id.in_(warm))).all()
        )
        day = conn.execute(select(func.sum(PoolDay.claims), func.sum(PoolDay.misses))).one()
    db.dispose()
    assert POOL_OWNER not in owners.values() and len(set(owners.values())) == 20
    assert tuple(day) == (20, 12)
