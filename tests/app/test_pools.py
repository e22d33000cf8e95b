"""Warm pools end to end: the keeper and the reconcile tick over SQLite/MariaDB and kubesim
(real HTTP, the real client, under the shipped RBAC on SQLite), claims through the use case.
Each test drives rounds and ticks until an expected state, bounded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from bot.app.clock_actions import ClockActions
from bot.app.island_actions import IslandActions
from bot.app.pool_keeper import PoolKeeper
from bot.domain.commands import ListIslands, Start
from bot.domain.errors import Conflict
from bot.domain.permissions import Policy
from bot.domain.podspec import ANNOTATION_CLAIMED_AT, ANNOTATION_OWNER_NAME
from bot.domain.pool import POOL_OWNER, Streak
from bot.domain.records import Caller
from bot.domain.states import IslandState
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.pools import PoolStore
from bot.words import pool_text
from kubesim import NodeSpec
from tests.app.reconcile_world import SIM, World
from tests.kube_access import cluster

ALICE = Caller("U0ALICE", "alice", "C0TEAM")
BOB = Caller("U0BOB", "bob", "C0TEAM")


def keeper_of(world: World, size: int = 2) -> PoolKeeper:
    return PoolKeeper(
        store=PoolStore(world.db, clock=world.clock),
        templates=world.templates,
        sizes={"dev": size},
        admins=frozenset({"U0ADMIN"}),
        clock=world.clock,
    )


def actions_of(world: World, size: int = 2) -> IslandActions:
    clocks = ClockActions(
        db=world.db,
        kube=world.kube,
        policy=Policy(),
        server_container=world.templates.server_container,
        clock=world.clock,
    )
    return IslandActions(
        db=world.db,
        allocator=world.allocator,
        templates=world.templates,
        kube=world.kube,
        policy=Policy(),
        clock=world.clock,
        pool_sizes={"dev": size},
        clocks=clocks,
    )


def pool(world: World) -> list[tuple[int, IslandState]]:
    return [(i.id, i.state) for i in IslandStore(world.db).live() if i.owner_id == POOL_OWNER]


def warm_up(world: World, keeper: PoolKeeper, size: int = 2) -> list[int]:
    """Rounds and ticks until the pool holds ``size`` ready islands."""

    def full() -> bool:
        keeper.keep()
        return [s for _, s in pool(world)] == [IslandState.READY] * size

    world.until(full)
    return [i for i, _ in pool(world)]


def test_a_pool_warms_up_silently_and_a_claim_is_ready_at_once_its_pod_relabelled(
    world: World,
) -> None:
    keeper = keeper_of(world)
    first, second = warm_up(world, keeper)
    assert world.notifier.items == []  # a pool island says nothing to anyone
    assert world.kube.get_pod(f"island-pool-dev-{first}").owner_id == POOL_OWNER

    got = actions_of(world).start(ALICE, Start("dev", note="checkout"), request_key="T1")
    assert got.claimed and got.island_id == first  # the oldest
    world.engine.tick()  # delivers, and tells the pod its owner
    kinds = [(a.island_id, a.kind) for a in world.notifier.items]
    assert kinds == [(first, "announce"), (first, "ready")]
    ready = world.notifier.items[-1]
    assert (
        "<@U0ALICE> island" in ready.text and "(a warm island, handed over at once)" in ready.text
    )
    assert ready.broadcast and ready.channel == "C0TEAM"
    pod = world.kube.get_pod(got.pod_name)
    assert pod is not None and pod.owner_id == "U0ALICE"
    assert pod.annotations[ANNOTATION_OWNER_NAME] == "alice"
    assert pod.annotations[ANNOTATION_CLAIMED_AT].startswith(str(world.clock().year))
    # the claim is the person's island from now on: its lifecycle goes on as any other's
    for _ in range(3):
        world.engine.tick()
    assert IslandStore(world.db).get(first).state == IslandState.READY
    assert world.notifier.kinds(first) == ["ready"]
    # the keeper starts one more to take the claimed one's place
    warm_up(world, keeper)
    assert second in [i for i, _ in pool(world)] and first not in [i for i, _ in pool(world)]


def test_a_warm_island_is_nobodys_to_change(world: World) -> None:
    keeper = keeper_of(world, 1)
    (island,) = warm_up(world, keeper, 1)
    actions = actions_of(world, 1)
    with pytest.raises(Conflict) as refused:
        actions.stop(ALICE, island)
    assert refused.value.detail == {"island_id": island, "branch": "dev"}
    assert [i.id for i in actions.islands(ALICE, ListIslands())] == []  # not listed among people's


def test_a_failed_warm_island_is_replaced_and_never_handed_out(world: World) -> None:
    keeper = keeper_of(world)
    first, second = warm_up(world, keeper)
    world.sim.kill_container("islands", f"island-pool-dev-{first}", "altraserver")  # OOMKilled
    world.until(lambda: IslandStore(world.db).get(first).state == IslandState.FAILED)
    got = actions_of(world).start(ALICE, Start("dev"), request_key="T1")
    assert got.claimed and got.island_id == second  # never the failed one
    warm_up(world, keeper)  # the failed one recycled, two new ones started
    world.until(lambda: IslandStore(world.db).get(first).state == IslandState.STOPPED)
    assert IslandStore(world.db).get(first).ports_released_at is not None
    assert world.notifier.kinds(first) == []  # nobody was told of a pool island's failure


IMAGE = "bo602505401/jdk8-curl-libfaketime:latest"  # the dev profile's


def test_a_pool_whose_islands_keep_failing_holds_off_then_tries_one(world: World) -> None:
    keeper = keeper_of(world, 2)
    store = PoolStore(world.db)
    world.sim.set_failing_images(frozenset({IMAGE}))  # the registry lost it

    def failures() -> int:
        keeper.keep()
        return store.rows()["dev"].failures if "dev" in store.rows() else 0

    world.until(lambda: failures() >= 3)  # two, replaced; then a third
    streak = store.rows()["dev"].streak
    assert streak.held(world.clock()) and streak.held_until is not None
    assert streak.held_until - world.clock() <= timedelta(minutes=1)  # 3 or 4 failed
    world.until(lambda: not pool(world))  # every failed one stopped
    for _ in range(3):
        keeper.keep()
        world.engine.tick()
    assert [s for _, s in pool(world)] == []  # none started while it holds off
    (status,) = keeper.status()
    shown = pool_text.pools([status], branch=None, now=world.clock(), tz=UTC)
    assert f"Its last {streak.failures} warm islands failed: none started until" in shown
    # the image is back; the hold is over: one is tried, then the pool fills
    world.sim.set_failing_images(frozenset())
    world.clock.offset += timedelta(minutes=16)
    keeper.keep()
    assert len(pool(world)) == 1  # one at a time
    warm_up(world, keeper, 2)
    assert store.rows()["dev"].streak == Streak()  # the branch boots: the streak is over


def test_a_refresh_lifts_a_hold(world: World) -> None:
    keeper = keeper_of(world, 1)
    store = PoolStore(world.db)
    world.sim.set_failing_images(frozenset({IMAGE}))
    world.until(
        lambda: (
            bool(keeper.keep() is not None and store.rows().get("dev"))
            and store.rows()["dev"].failures >= 3
        )
    )
    world.sim.set_failing_images(frozenset())  # CI pushed a fix and says so
    keeper.refresh(None, "dev")
    assert store.rows()["dev"].streak == Streak()
    warm_up(world, keeper, 1)  # at once, not after the hold


def test_ready_pool_islands_lost_later_are_no_streak(world: World) -> None:
    """An island that was ready once (then evicted, OOMKilled, claimed) shows the branch
    boots: three lost at once are replaced at once."""
    keeper = keeper_of(world, 3)
    islands = warm_up(world, keeper, 3)
    for island in islands:
        world.sim.kill_container("islands", f"island-pool-dev-{island}", "altraserver")
    world.until(
        lambda: all(IslandStore(world.db).get(i).state == IslandState.FAILED for i in islands)
    )
    warm_up(world, keeper, 3)
    assert PoolStore(world.db).rows()["dev"].streak == Streak()


def test_shrinking_and_switching_off_free_every_port(world: World) -> None:
    keeper = keeper_of(world, 3)
    warm_up(world, keeper, 3)
    assert world.allocator.usage().held == 3
    keeper.store.set_size("dev", 1, by="U0ADMIN")
    world.until(lambda: (keeper.keep(), len(pool(world)) == 1)[1])
    keeper.store.set_size("dev", 0, by="U0ADMIN")
    world.until(lambda: (keeper.keep(), pool(world) == [])[1])
    world.until(lambda: world.allocator.usage().held == 0)
    assert keeper.status() == []  # no pool, nothing left: not shown


def test_a_claim_with_a_clock_sets_it_before_saying_ready(world: World) -> None:
    keeper = keeper_of(world, 1)
    (island,) = warm_up(world, keeper, 1)
    at = (world.clock() + timedelta(days=2)).replace(microsecond=0)
    got = actions_of(world, 1).start(ALICE, Start("dev", at=at), request_key="T1")
    assert got.claimed and got.clock_request is not None
    record = IslandStore(world.db).get(island)
    assert abs(record.clock_offset_s - 2 * 86400) <= 5
    world.engine.tick()
    kinds = [a.kind for a in world.notifier.items if a.island_id == island]
    assert kinds == ["announce", "ready"]  # "ready" once the clock reads what was asked
    assert "Clock: " in world.notifier.items[-1].text
    seen = world.kube.exec(record.pod_name, container="altraserver", command=["date", "+%s"])
    assert abs(int(seen.stdout) - at.timestamp()) <= 10


ROOMY = (NodeSpec("dev-1", {"branch": "dev"}, memory="3Gi", address="127.0.0.2"),)


@pytest.fixture
def small_world(db: Database, tmp_path: Path) -> Iterator[World]:
    """One dev node with room for two islands (1500Mi requested each)."""
    with cluster(replace(SIM, nodes=ROOMY), tmp_path / "kubeconfig") as sim:
        w = World(db, sim)
        yield w
        w.kube.close()


def test_a_person_waiting_for_room_gets_a_warm_islands_room(small_world: World) -> None:
    world = small_world
    keeper = keeper_of(world)
    warm_up(world, keeper)  # the node is full of warm islands
    got = actions_of(world).start(
        BOB, Start("dev", overrides=(("memory", "1500Mi"),)), request_key="T1"
    )
    assert not got.claimed  # `set`: a fresh island, which finds no room
    store = IslandStore(world.db)
    world.until(lambda: store.get(got.island_id).unschedulable_message is not None)

    def placed() -> bool:
        keeper.keep()  # stops a warm island for the person, starts none meanwhile
        return store.get(got.island_id).state == IslandState.READY

    world.until(placed, timeout=20)
    assert len([i for i, s in pool(world) if s != IslandState.STOPPING]) <= 2
    kinds = world.notifier.kinds(got.island_id)
    assert kinds[0] == "pool_miss" and kinds[-1] == "ready"
