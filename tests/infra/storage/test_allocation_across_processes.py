"""Several OS processes with many threads each allocate and release at once: no port or id is
ever handed out twice. Bounded by count (256 allocations per backend, a few seconds)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bench.loadgen import LoadSpec, run_load
from bot.domain.states import LIVE_VALUES
from bot.infra.storage.tables import Island, PortBlock
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
