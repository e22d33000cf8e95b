"""A tick is fenced by the leader lease (issue 21, defect 4): a leader that was paused past its
lease while another replica took over may still believe it leads (its flag is only corrected
at its next renewal). Whatever its tick decided, it creates, deletes and sweeps nothing: every
write the tick makes checks the lease in its own transaction, and a pod is deleted only after
the lease was found held."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from bot.app.reconcile.engine import LifecycleEngine
from bot.infra.storage.lease import LeaderLease
from tests.app.reconcile_world import World, ready_island

TTL = timedelta(seconds=0.5)


def mutations(world: World) -> int:
    """Pod creates and deletes the cluster has served so far."""
    return sum(
        n
        for (method, path), n in world.sim.requests_seen().items()
        if method in ("POST", "DELETE") and "/pods" in path
    )


@dataclass
class Replicas:
    """The paused leader's engine and lease, and the new leader's."""

    old: LifecycleEngine
    old_lease: LeaderLease
    new: LifecycleEngine
    new_lease: LeaderLease
    paused: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)

    def renew(self) -> None:
        """The leader renews its lease every ttl/3, as the service does: the old one until it
        is paused, then the new one."""
        while not self.closed.wait(TTL.total_seconds() / 3):
            (self.new_lease if self.paused.is_set() else self.old_lease).try_acquire()

    def depose(self, world: World) -> None:
        """The old leader is paused (it no longer renews) until its lease lapses and the new
        one takes it over. The old one still believes it leads."""
        self.paused.set()
        deadline = time.monotonic() + 10
        while not self.new_lease.try_acquire():
            assert time.monotonic() < deadline, "the new leader never got the lease"
            time.sleep(0.05)
        assert self.old_lease.is_leader  # it has not looked since
        world.engine = self.new  # from now on the world's ticks are the new leader's


@pytest.fixture
def replicas(world: World) -> Iterator[Replicas]:
    old_lease = LeaderLease(world.db, holder="a", ttl=TTL)
    new_lease = LeaderLease(world.db, holder="b", ttl=TTL)
    assert old_lease.try_acquire()
    both = Replicas(
        world.new_engine(lease=old_lease), old_lease, world.new_engine(lease=new_lease), new_lease
    )
    world.engine = both.old  # the world's ticks are the old leader's until it is deposed
    renewing = threading.Thread(target=both.renew, daemon=True)
    renewing.start()
    yield both
    both.closed.set()
    renewing.join(timeout=5)
    both.old.close()
    both.new.close()


def test_a_deposed_leader_creates_no_pod(world: World, replicas: Replicas) -> None:
    replicas.depose(world)
    island_id = world.start()
    before = mutations(world)
    report = replicas.old.tick()
    assert mutations(world) == before, "the deposed leader sent a create"
    assert world.state(island_id) == "requested"
    assert any("no longer holds reconciler" in e for e in report.errors), report.errors
    world.until(lambda: world.state(island_id) == "ready")  # the new leader's ticks create it


def test_a_deposed_leader_deletes_no_pod(world: World, replicas: Replicas) -> None:
    island_id = ready_island(world, ttl=timedelta(minutes=1))  # made while ``old`` led
    replicas.depose(world)
    world.clock.offset = timedelta(minutes=2)  # expired: both would delete its pod
    before = mutations(world)
    report = replicas.old.tick()
    assert mutations(world) == before, "the deposed leader deleted a pod"
    assert world.state(island_id) == "ready"
    assert report.errors
    world.until(lambda: world.state(island_id) == "stopped")


def test_a_deposed_leader_sweeps_no_orphan(world: World, replicas: Replicas) -> None:
    island_id = ready_island(world)
    pod = world.pod_name(island_id)
    replicas.depose(world)
    with world.db.engine.begin() as conn:  # its row gone: its pod is an orphan to both
        conn.exec_driver_sql(f"UPDATE islands SET state = 'stopped' WHERE id = {island_id}")
    world.clock.offset = timedelta(minutes=5)  # past the orphan grace
    before = mutations(world)
    replicas.old.tick()
    assert mutations(world) == before, "the deposed leader swept a pod"
    assert world.sim.get("pods", "islands", pod) is not None
    world.until(lambda: world.sim.get("pods", "islands", pod) is None)
