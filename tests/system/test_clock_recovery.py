"""Clock changes that outlive their applier, a shift racing the pod's create, and `start at=`
held to the same bound as `/island time` (issue 15, defects 2, 8 and 11)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.domain.errors import Conflict
from bot.domain.lifecycle_rules import Notice
from bot.domain.records import ClockAsk
from bot.domain.states import IslandState
from bot.domain.time_source import utcnow
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.database import Database
from bot.infra.storage.tables import ClockRequest, Island
from tests.slackworld import SlackWorld, slack_world
from tests.system.test_island_clocks import DAY, needs_libfaketime, ready, wait_offset


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[SlackWorld]:
    with slack_world(db, tmp_path) as w:
        yield w


def test_start_at_beyond_the_clock_bound_is_refused_and_changes_nothing(
    world: SlackWorld,
) -> None:
    _, body, _ = world.command('start dev at="2099-01-01 00:00:00"')
    text = (json.loads(body).get("text") if body else None) or world.wait_answer()
    assert "at most 3650d away from real time" in text, text
    assert world.islands() == []
    assert world.allocator.usage().held == 0


def left_applying(world: SlackWorld, island_id: int, to_s: int) -> int:
    """A shift recorded as being applied by a replica that then died: nobody applies it."""
    requests = ClockRequests(world.db)
    ask = ClockAsk(
        requested_by="U0ALICE",
        from_offset_s=0,
        to_offset_s=to_s,
        kind="relative",
        target_at=None,
        immediate=True,
        expires_at=utcnow() + timedelta(hours=1),
        chat_channel="C0TEAM",
    )
    request, _ = requests.ask(island_id, lambda _island: ask)
    world.db.run(
        lambda conn: conn.execute(
            update(ClockRequest)
            .where(ClockRequest.id == request.id)
            .values(decided_at=request.requested_at - timedelta(minutes=5))
        ),
        what="age the request",
    )
    return request.id


@needs_libfaketime
def test_a_shift_left_applying_by_a_dead_replica_is_carried_out(world: SlackWorld) -> None:
    island_id = ready(world)
    request_id = left_applying(world, island_id, 3 * DAY)
    world.clocks.resume_stuck()  # the leader's job, every 30 s
    assert world.clocks.get(request_id).state == "applied"
    assert world.island(island_id).clock_offset_s == 3 * DAY
    wait_offset(world, island_id, 3 * DAY)
    world.clocks.resume_stuck()  # nothing left: nothing done twice
    assert [r.state for r in world.clocks.history(island_id)] == ["applied"]


def test_a_shift_recorded_after_the_pod_was_created_fails_and_changes_nothing(
    db: Database, tmp_path: Path
) -> None:
    """A shift on a requested island is only recorded: its pod starts there. If the tick
    created the pod (on the old offset) between the check and the write, recording the new
    offset would announce a clock the server does not have: the write is refused."""
    with slack_world(db, tmp_path, loop=False) as world:  # no ticks: the test moves it
        world.command("start dev")
        (island,) = world.until(world.islands)
        request_id = left_applying(world, island.id, 2 * DAY)
        world.db.run(
            lambda conn: conn.execute(
                update(Island).where(Island.id == island.id).values(state="creating")
            ),
            what="the tick created its pod",
        )
        with pytest.raises(Conflict):
            ClockRequests(world.db).applied(
                world.clocks.get(request_id),
                actor="U0ALICE",
                from_s=0,
                to_s=2 * DAY,
                notice=(Notice.CLOCK_SHIFTED, {}),
                state=IslandState.REQUESTED,
            )
        assert world.island(island.id).clock_offset_s == 0
