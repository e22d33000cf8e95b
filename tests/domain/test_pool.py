"""The warm pool's rules as pure functions: what the keeper recycles and starts each round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.podspec import TemplateError, allowed_profile
from bot.domain.pool import (
    Freshness,
    Member,
    PoolFacts,
    PoolPlan,
    PoolSpec,
    Recycle,
    Streak,
    backoff,
    plan,
    servable,
    short_of_room,
    streak,
)
from bot.domain.states import IslandState

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
FRESH = Freshness(timedelta(hours=24))
NO_STREAK = Streak()
S = IslandState


def member(
    island_id: int,
    state: IslandState = S.READY,
    *,
    age: timedelta = timedelta(minutes=10),
    code: str | None = None,
    placed: bool = True,
) -> Member:
    return Member(island_id, state, NOW - age, code, placed)


def facts(
    *members: Member,
    size: int = 3,
    fresh: Freshness = FRESH,
    waiting: int = 0,
    streak: Streak = NO_STREAK,
) -> PoolFacts:
    return PoolFacts(size, fresh, members, waiting, streak)


def test_an_empty_pool_is_filled_to_its_size() -> None:
    assert plan(facts(), NOW) == PoolPlan(start=3)
    assert plan(facts(member(1), member(2, S.CREATING)), NOW) == PoolPlan(start=1)
    assert plan(facts(member(1), member(2), member(3)), NOW).is_empty


def test_a_failed_member_is_recycled_and_replaced() -> None:
    p = plan(facts(member(1), member(2, S.FAILED), member(3)), NOW)
    assert p == PoolPlan(start=1, recycle=((2, Recycle.FAILED),))


def test_a_failure_streak_is_read_from_the_latest_pool_islands() -> None:
    # newest first: (id, True ready once, False failed before ready, None neither)
    assert streak([]) == (0, None)
    assert streak([(9, None), (8, False), (7, False), (6, True), (5, False)]) == (2, 8)
    # one ready once (claimed since, or evicted later) ends it: the branch boots
    assert streak([(9, True), (8, False), (7, False)]) == (0, None)
    # recycled while starting, or still starting: neither
    assert streak([(9, None), (8, None), (7, False)]) == (1, 7)


def test_a_pool_whose_islands_keep_failing_holds_off_longer_each_time() -> None:
    assert [backoff(n) for n in (1, 2)] == [None, None]  # a node going away fails a few
    assert [backoff(n) for n in (3, 4, 5)] == [timedelta(seconds=s) for s in (30, 60, 120)]
    assert backoff(9) == backoff(500) == timedelta(minutes=15)
    two = NO_STREAK.now(2, 5, NOW)
    assert two == Streak(2, 5, None)
    held = two.now(3, 6, NOW)  # a third: none is started for 30 s
    assert held == Streak(3, 6, NOW + timedelta(seconds=30))
    assert held.now(3, 6, NOW + timedelta(seconds=20)) == held  # the same failure: the same hold
    assert held.now(4, 7, NOW + timedelta(seconds=40)).held_until == NOW + timedelta(seconds=100)
    assert held.now(0, None, NOW) == NO_STREAK  # one was ready: over
    # islands of one fill failing out of order: more failures, the same newest, still hold
    assert Streak(1, 7).now(3, 7, NOW).held_until == NOW + timedelta(seconds=30)
    # a newer failure never shortens a hold in force
    long = Streak(6, 9, NOW + timedelta(minutes=10))
    assert long.now(3, 12, NOW).held_until == NOW + timedelta(minutes=10)
    assert plan(facts(member(1), streak=held), NOW + timedelta(seconds=29)) == PoolPlan()
    # then one at a time, whatever is missing: none while one is starting
    later = NOW + timedelta(seconds=31)
    assert plan(facts(member(1), streak=held), later) == PoolPlan(start=1)
    assert plan(facts(member(1), member(8, S.CREATING), streak=held), later).start == 0
    # failed ones are recycled while it holds
    p = plan(facts(member(1), member(8, S.FAILED), streak=held), NOW)
    assert p == PoolPlan(recycle=((8, Recycle.FAILED),))
    assert plan(facts(member(1), streak=two), NOW) == PoolPlan(start=2)  # below: as usual


@pytest.mark.parametrize(
    ("fresh", "old", "why"),
    [
        (FRESH, member(1, age=timedelta(hours=24)), Recycle.TOO_OLD),
        (
            Freshness(timedelta(hours=24), refreshed_at=NOW - timedelta(minutes=1)),
            member(1, age=timedelta(minutes=2)),
            Recycle.REFRESHED,
        ),
        (Freshness(timedelta(hours=24), code_version="v2"), member(1, code="v1"), Recycle.OLD_CODE),
    ],
)
def test_stale_members_are_recycled_and_replaced(
    fresh: Freshness, old: Member, why: Recycle
) -> None:
    young = member(2, code="v2", age=timedelta(seconds=30))
    p = plan(facts(old, young, size=2, fresh=fresh), NOW)
    assert p == PoolPlan(start=1, recycle=((1, why),))


def test_a_member_not_yet_registered_is_not_judged_by_its_code() -> None:
    fresh = Freshness(timedelta(hours=24), code_version="v2")
    assert plan(facts(member(1, S.RUNNING, code=None), size=1, fresh=fresh), NOW).is_empty


def test_shrinking_stops_the_least_spent_first_and_keeps_the_oldest_ready() -> None:
    young_ready = member(1, age=timedelta(minutes=1))
    old_ready = member(2, age=timedelta(hours=2))
    starting = member(3, S.SCHEDULED, age=timedelta(seconds=5))
    p = plan(facts(young_ready, old_ready, starting, size=1), NOW)
    assert p == PoolPlan(recycle=((3, Recycle.SHRUNK), (1, Recycle.SHRUNK)))
    assert plan(facts(young_ready, old_ready, size=0), NOW).recycle == (
        (1, Recycle.SHRUNK),
        (2, Recycle.SHRUNK),
    )


def test_people_waiting_for_room_come_first() -> None:
    ready, starting, unplaced = (
        member(1),
        member(2, S.SCHEDULED),
        member(3, S.CREATING, placed=False),
    )
    # one person waits: one placed pool island goes (the one least spent), none is started
    p = plan(facts(ready, starting, unplaced, waiting=1), NOW)
    assert p == PoolPlan(recycle=((2, Recycle.ROOM),))
    # a failed placed member being recycled makes that room: nothing more is stopped
    p = plan(facts(ready, member(4, S.FAILED), waiting=1), NOW)
    assert p.recycle == ((4, Recycle.FAILED),) and p.start == 0
    # a failed member never placed makes none
    p = plan(facts(ready, member(4, S.FAILED, placed=False), waiting=1), NOW)
    assert p.recycle == ((4, Recycle.FAILED), (1, Recycle.ROOM)) and p.start == 0
    # two wait: two placed ones go; an unplaced one holds no room and stays
    p = plan(facts(ready, starting, unplaced, waiting=2), NOW)
    assert p.recycle == ((2, Recycle.ROOM), (1, Recycle.ROOM)) and p.start == 0


def test_pool_islands_waiting_for_room_give_way_and_stop_the_refill() -> None:
    stuck = Member(3, S.CREATING, NOW, None, placed=False, unschedulable=True)
    # a person waits: the pool island queued for room goes too, or it would take room first
    p = plan(facts(member(1), stuck, waiting=1), NOW)
    assert p == PoolPlan(recycle=((3, Recycle.ROOM), (1, Recycle.ROOM)))
    # nobody waits, but the cluster is full: no more pool islands to wait and fail
    assert plan(facts(member(1), stuck, size=4), NOW).is_empty


def test_only_a_shortage_of_resources_is_room_a_pool_island_can_give() -> None:
    assert short_of_room("0/2 nodes are available: 2 Insufficient memory.")
    assert short_of_room("0/3 nodes are available: 3 Insufficient cpu.")
    assert not short_of_room("0/2 nodes are available: 2 node(s) didn't match node selector.")
    assert not short_of_room(None)


def test_only_starts_with_no_set_can_be_served_warm() -> None:
    assert servable(())
    assert not servable((("memory", "3Gi"),))


def test_a_profile_declares_its_pool() -> None:
    profile = allowed_profile("dev", {"pod": {}, "pool": {"size": 3, "max_age": "12h"}})
    assert profile.pool == PoolSpec(3, timedelta(hours=12))
    assert allowed_profile("dev", {"pod": {}}).pool == PoolSpec()
    assert allowed_profile("dev", {"pool": {"size": 1}}).pool.max_age == timedelta(hours=24)


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        ({"size": "3"}, "pool.size: must be a whole number"),
        ({"size": True}, "pool.size: must be a whole number"),
        ({"size": 101}, "0-100"),
        ({"size": 2, "max_age": "soon"}, "not a duration"),
        ({"size": 2, "max_age": "1m"}, "at least 5m"),
        ({"size": 2, "warm": True}, "pool: must be {size: N"),
        ([3], "pool: must be {size: N"),
    ],
)
def test_a_bad_pool_in_a_profile_names_the_field(pool: object, message: str) -> None:
    with pytest.raises(TemplateError, match="pool") as caught:
        allowed_profile("dev", {"pool": pool})
    assert message in str(caught.value)
