"""The reconcile tick end to end: SQLite/MariaDB + kubesim (real HTTP, real client) + real TCP
probes, with an in-memory notifier. Each test drives ticks until an expected state, bounded."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from kubernetes import client
from kubernetes import config as kube_config
from sqlalchemy import select, update

from bot.infra.storage.heartbeat import Heartbeat
from bot.infra.storage.intake import Intake
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.tables import Delivery, Island, Lease, OutboxMessage
from bot.infra.tcp_probe import probe_ports
from bot.run.loop import LifecycleService
from tests.app.reconcile_world import LIMITS, World, ready_island


def test_start_to_ready_with_one_notice_per_step(world: World) -> None:
    island_id = ready_island(world)
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]
    first = next(a for a in world.notifier.items if a.island_id == island_id)
    assert first.kind == "announce"  # the root message, before any other notice
    ready = world.notifier.items[-1]
    record = IslandStore(world.db).get(island_id)
    host = ready.text.split(" is ready on ")[1].split(":")[0]
    assert host in ("127.0.0.2", "127.0.0.3")
    for port in record.ports:
        assert f" {port}" in ready.text
        socket.create_connection((host, port), timeout=1).close()
    assert ready.broadcast and ready.channel == "C0TEAM" and "<@U0ALICE>" in ready.text
    for _ in range(5):
        world.engine.tick()
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]  # nothing more


def test_oom_after_ready_is_told_once_and_the_pod_is_kept(world: World) -> None:
    island_id = ready_island(world)
    world.sim.kill_container("islands", world.pod_name(island_id), "altraserver")
    world.until(lambda: world.state(island_id) == "failed")
    for _ in range(5):
        world.engine.tick()
    assert world.notifier.kinds(island_id) == ["scheduled", "ready", "failed"]
    text = world.notifier.items[-1].text
    assert f"island #{island_id} blew up: OOMKilled at the 2048Mi limit" in text
    assert world.kube.get_pod(world.pod_name(island_id)) is not None
    logs = world.kube.pod_logs(world.pod_name(island_id), container="altraserver")
    assert "OutOfMemoryError" in logs


def test_eviction(world: World) -> None:
    island_id = ready_island(world)
    world.sim.evict("islands", world.pod_name(island_id))
    world.until(lambda: world.state(island_id) == "failed")
    assert (
        "evicted by Kubernetes: The node was low on resource: memory"
        in world.notifier.items[-1].text
    )


def test_pod_deleted_behind_the_bots_back_frees_the_ports(world: World) -> None:
    island_id = ready_island(world)
    world.sim.delete_pod("islands", world.pod_name(island_id), grace=0)
    world.until(lambda: world.state(island_id) == "stopped")
    assert world.notifier.kinds(island_id) == ["scheduled", "ready", "failed"]
    assert "deleted outside islandbot" in world.notifier.items[-1].text
    assert world.allocator.usage().held == 0


def test_unschedulable_is_told_then_fails_and_frees_everything(world: World) -> None:
    island_id = world.start(branch="weekly")  # weekly-1 has 1Gi, the island asks 1500Mi
    world.until(lambda: "unschedulable" in world.notifier.kinds(island_id))
    text = world.notifier.items[-1].text
    assert "no weekly node has 1500Mi free" in text
    world.until(lambda: world.state(island_id) == "stopped")
    assert world.notifier.kinds(island_id) == ["unschedulable", "failed", "stopped"]
    assert "could not be scheduled" in world.notifier.items[-2].text
    assert world.kube.list_island_pods() == []
    assert world.allocator.usage().held == 0


def test_expiry_warns_once_then_stops_and_frees(world: World) -> None:
    island_id = ready_island(world, ttl=timedelta(hours=1))
    world.clock.offset = timedelta(minutes=59, seconds=59)
    world.until(lambda: "expiring" in world.notifier.kinds(island_id))
    assert "/island extend" in world.notifier.items[-1].text
    world.clock.offset = timedelta(hours=1, seconds=1)
    world.until(lambda: world.state(island_id) == "stopped")
    assert world.notifier.kinds(island_id) == [
        "scheduled",
        "ready",
        "expiring",
        "expired",
        "stopped",
    ]
    assert world.allocator.usage().held == 0


def test_a_stop_request_is_carried_out(world: World) -> None:
    island_id = ready_island(world)
    with world.db.engine.begin() as conn:  # what /island stop will do
        conn.execute(update(Island).where(Island.id == island_id).values(state="stopping"))
    world.kube.delete_pod(world.pod_name(island_id))
    world.until(lambda: world.state(island_id) == "stopped")
    assert world.notifier.kinds(island_id)[-1] == "stopped"
    assert world.allocator.usage().held == 0


def test_a_restarted_engine_repeats_no_notice(world: World) -> None:
    island_id = world.start()
    world.until(lambda: world.state(island_id) in ("scheduled", "running"))
    world.engine = world.new_engine()  # the bot restarted
    world.until(lambda: world.state(island_id) == "ready")
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]


def test_undelivered_notices_are_retried_in_order_exactly_once(world: World) -> None:
    world.notifier.fail_next = 3
    island_id = ready_island(world)
    world.until(lambda: world.notifier.kinds(island_id)[-1:] == ["ready"])
    with world.db.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage.kind, OutboxMessage.attempts, OutboxMessage.delivered_as)
            .where(OutboxMessage.island_id == island_id)
            .order_by(OutboxMessage.id)
        ).all()
    assert [r.kind for r in rows] == ["announce", "scheduled", "ready"]
    assert rows[0].attempts >= 2 and all(r.attempts >= 1 for r in rows)
    # "scheduled" waited behind the failing announcement; if "ready" overtook it meanwhile it
    # was not sent at all (superseded), else it went out before "ready", once
    told = ["scheduled", "ready"] if rows[1].delivered_as == "posted" else ["ready"]
    assert rows[1].delivered_as in ("posted", "superseded")
    assert world.notifier.kinds(island_id) == told


def test_kubernetes_errors_never_stop_the_loop(world: World) -> None:
    island_id = world.start()
    world.sim.fail_requests(r"/namespaces/islands/pods", status=500, count=6)
    reports = [world.engine.tick() for _ in range(3)]
    assert any(r.errors for r in reports)
    world.until(lambda: world.state(island_id) == "ready")
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]


def test_429s_dropped_connections_and_slow_answers_never_stop_the_loop(world: World) -> None:
    island_id = world.start()
    world.sim.fail_requests(r"/namespaces/islands/pods", status=429, seconds=1, count=3)
    world.sim.fail_requests(r"/namespaces/islands/pods", action="drop", count=3)
    world.sim.fail_requests(r"/namespaces/islands/pods", action="delay", seconds=3, count=2)
    reports = [world.engine.tick() for _ in range(4)]
    assert any(r.errors for r in reports)
    world.until(lambda: world.state(island_id) == "ready")
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]


def test_orphan_pods_are_deleted_after_a_grace(world: World) -> None:
    island_id = ready_island(world)
    pod = world.kube.get_pod(world.pod_name(island_id))
    assert pod is not None
    with world.db.engine.begin() as conn:  # the row says stopped, the pod is still there
        conn.execute(update(Island).where(Island.id == island_id).values(state="stopped"))
    world.until(lambda: world.kube.get_pod(world.pod_name(island_id)) is None, timeout=10)
    world.until(lambda: world.allocator.usage().held == 0, timeout=5)


def test_api_calls_per_tick_do_not_grow_with_islands(world: World) -> None:
    first = ready_island(world)

    def calls_per_tick() -> int:
        before = world.sim.requests_seen()
        world.engine.tick()
        return sum((world.sim.requests_seen() - before).values())

    one = calls_per_tick()
    others = [world.start(user=f"U0USER{i}") for i in range(6)]
    world.until(lambda: all(world.state(i) == "ready" for i in [first, *others]), timeout=20)
    assert calls_per_tick() == one <= 2


def test_a_pod_the_cluster_refuses_fails_the_island(world: World) -> None:
    island_id = world.start()
    world.sim.fail_requests(r"/namespaces/islands/pods$", status=422, method="POST", count=1)
    world.until(lambda: world.state(island_id) == "stopped")  # no pod: nothing to keep
    assert "Kubernetes refused its pod" in world.notifier.items[-1].text
    assert world.allocator.usage().held == 0  # its ports freed with it


@pytest.mark.mysql
@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)
def test_the_loop_survives_database_connections_being_killed(world: World) -> None:
    """What a MySQL restart looks like to the bot: every pooled connection dies at once."""
    island_id = world.start()
    world.engine.tick()
    killer = sa.create_engine(world.db.engine.url)
    with killer.connect() as conn:
        schema_name = conn.exec_driver_sql("SELECT DATABASE()").scalar()
        mine = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        ids = (
            conn.exec_driver_sql(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id != %s",
                (schema_name, mine),
            )
            .scalars()
            .all()
        )
        assert ids, "the bot should have pooled connections to kill"
        for connection_id in ids:
            conn.exec_driver_sql(f"KILL {int(connection_id)}")
    killer.dispose()
    world.until(lambda: world.state(island_id) == "ready")
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]


def test_the_scheduled_service_brings_islands_to_ready_and_stops_cleanly(world: World) -> None:
    service = LifecycleService(
        world.engine, LeaderLease(world.db, ttl=timedelta(seconds=3)), interval=timedelta(seconds=1)
    )
    service.start()
    try:
        island_id = world.start()
        began = time.monotonic()
        while world.state(island_id) != "ready" and time.monotonic() - began < 10:
            time.sleep(0.05)
        assert world.state(island_id) == "ready"
        deadline = time.monotonic() + 5
        while (
            world.notifier.kinds(island_id) != ["scheduled", "ready"]
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert world.notifier.kinds(island_id) == ["scheduled", "ready"]
    finally:
        service.stop()
    assert service.stats.ticks >= 1
    assert not service.lease.is_leader  # handed over at once on a graceful stop


class FrozenCache:
    """A pod cache stuck in the past (a reflector lagging behind a burst of changes)."""

    def __init__(self, pods: list) -> None:  # type: ignore[type-arg]
        self._pods = pods

    def pods(self) -> list:  # type: ignore[type-arg]
        return list(self._pods)

    def stop(self) -> None:
        pass


def test_a_lagging_pod_cache_never_frees_ports_or_fails_islands(world: World) -> None:
    island_id = ready_island(world)
    world.kube.reflector = FrozenCache([])  # the cache has not seen the pod yet
    reports = [world.engine.tick() for _ in range(3)]
    assert world.state(island_id) == "ready"
    assert world.allocator.usage().held == 1
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]
    assert all(r.confirmed == 1 for r in reports)
    world.kube.reflector = None


def test_a_ready_island_that_stops_answering_fails_after_n_probe_rounds(world: World) -> None:
    silenced: set[tuple[str, int]] = set()

    def prober(targets):  # type: ignore[no-untyped-def]
        found = probe_ports(targets, timeout=0.3)
        return {t: ok and t not in silenced for t, ok in found.items()}

    world.engine = world.new_engine(prober)
    island_id = ready_island(world)
    world.engine.inline_ready_probes = False  # as under the service: probes are their own job
    world.engine.tick()  # the tick tells the probe job which islands are ready
    record = IslandStore(world.db).get(island_id)
    view = world.kube.get_pod(record.pod_name)
    assert view is not None and view.host_ip is not None
    silenced.add((view.host_ip, record.ports[2]))  # a firewall, a hung JVM...
    for _ in range(LIMITS.probe_failures):
        assert world.engine.probe_ready() == 1
        world.engine.tick()
    assert world.state(island_id) == "failed"
    assert "stopped answering on its server port (2 probes failed)" in world.notifier.items[-1].text


Target = tuple[str, int]


def _recording(world: World, seen: list[tuple[Target, bool]]) -> None:
    """The engine's prober: the real TCP probe, each probe and its result written down."""

    def prober(targets: list[Target]) -> dict[Target, bool]:
        found = probe_ports(targets, timeout=0.3)
        seen.extend(found.items())
        return found

    world.engine = world.new_engine(prober)


def _server_target(world: World, island_id: int) -> Target:
    record = IslandStore(world.db).get(island_id)
    target = world.engine.probes.target(record, world.kube.get_pod(record.pod_name))
    assert target is not None
    return target


def _pod_ready(world: World, island_id: int) -> bool:
    ready = world.kube.snapshot().pods[island_id].condition("Ready")  # as the next tick sees
    return ready is not None and ready[0] == "True"


def test_a_dead_server_fails_after_n_failed_probes_not_n_ticks(world: World) -> None:
    """Ticks about every 0.05 s, ready probes every 0.5 s, threshold 3: the island fails at
    its third failed probe (a second or more after the server died), not at its third tick
    with the pod unready, and the failure tells how many probes failed."""
    interval = timedelta(seconds=0.5)
    world.settings = replace(
        world.settings, ready_probe_interval=interval, limits=replace(LIMITS, probe_failures=3)
    )
    seen: list[tuple[Target, bool]] = []
    _recording(world, seen)
    island_id = ready_island(world)
    target = _server_target(world, island_id)
    already = len(seen)
    world.sim.set_answering("islands", world.pod_name(island_id), "altraserver", False)
    began, ticks = time.monotonic(), 0

    def failed() -> bool:
        nonlocal ticks
        ticks += 1
        return world.state(island_id) == "failed"

    world.until(failed, timeout=15)
    elapsed = time.monotonic() - began
    ours = [ok for t, ok in seen[already:] if t == target]
    assert ours == [False, False, False]  # exactly three probes of ours, all failed
    assert ticks > 2 * len(ours)  # many more ticks than probes ran meanwhile
    assert elapsed >= 2 * interval.total_seconds()  # three probes an interval apart
    assert world.notifier.kinds(island_id) == ["scheduled", "ready", "failed"]
    assert "stopped answering on its server port (3 probes failed)" in world.notifier.items[-1].text


def test_a_pod_whose_ready_condition_flaps_while_our_probes_answer_stays_ready(
    world: World,
) -> None:
    """The kubelet's readiness probe failing (Ready false) is not a failed probe of ours: the
    island stays ready while the bot's own probes of its server port answer."""
    world.settings = replace(world.settings, ready_probe_interval=timedelta(seconds=0.2))
    seen: list[tuple[Target, bool]] = []
    _recording(world, seen)
    island_id = ready_island(world)
    target = _server_target(world, island_id)
    pod_name = world.pod_name(island_id)
    already = len(seen)
    for _ in range(3):
        world.sim.fail_readiness("islands", pod_name, "altraserver", True)
        _wait(lambda: not _pod_ready(world, island_id))
        _tick_for(world, 0.6)  # a dozen ticks with the pod unready, and probes of ours
        world.sim.fail_readiness("islands", pod_name, "altraserver", False)
        _wait(lambda: _pod_ready(world, island_id))
        _tick_for(world, 0.1)
    assert world.notifier.kinds(island_id) == ["scheduled", "ready"]
    assert world.state(island_id) == "ready"
    assert IslandStore(world.db).get(island_id).probe_failures == 0
    ours = [ok for t, ok in seen[already:] if t == target]
    assert len(ours) >= 3 and all(ours)  # probed meanwhile, and answering


def test_each_probe_between_two_ticks_is_counted_once(world: World) -> None:
    """Probe rounds run apart from the ticks (as under the service): a round does not probe an
    island again while its last result waits for a tick, so no failed probe goes uncounted."""
    seen: list[tuple[Target, bool]] = []
    _recording(world, seen)
    island_id = ready_island(world)
    world.engine.inline_ready_probes = False
    world.engine.tick()  # the tick tells the probe job which islands are ready
    target = _server_target(world, island_id)
    world.sim.set_answering("islands", world.pod_name(island_id), "altraserver", False)
    already = len(seen)
    assert world.engine.probe_ready() == 1
    assert world.engine.probe_ready() == 0  # its result waits for a tick: not probed again
    world.engine.tick()
    assert IslandStore(world.db).get(island_id).probe_failures == 1
    world.engine.tick()  # no probe since the last tick: nothing learned
    assert IslandStore(world.db).get(island_id).probe_failures == 1
    assert world.engine.probe_ready() == 1
    world.engine.tick()
    assert world.state(island_id) == "failed"
    assert [ok for t, ok in seen[already:] if t == target] == [False, False]
    assert "stopped answering on its server port (2 probes failed)" in world.notifier.items[-1].text


def _tick_for(world: World, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        world.engine.tick()
        time.sleep(0.05)


def _wait(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


def test_housekeeping_forgets_old_notices_and_delivery_keys(world: World) -> None:
    island_id = ready_island(world)
    world.engine.deliver()
    keys = Intake(world.db)
    assert keys.first("cmd:old") and not keys.first("cmd:old")
    assert keys.accept("cmd:pending", "command", {"text": "list"})
    dead, living = (Heartbeat(world.db, instance=n, ttl=timedelta(seconds=30)) for n in "ab")
    dead.beat()
    living.beat()
    assert world.engine.housekeeping() == {"notices": 0, "deliveries": 0, "processes": 0}
    _age(world, Delivery.__table__, "seen_at", days=3)  # every delivery is 3 days old now
    _age(world, Lease.__table__, "expires_at", days=3)  # every process dead for 3 days...
    living.beat()  # ... but this one
    assert keys.first("cmd:new")
    removed = world.engine.housekeeping()
    assert removed == {"notices": 0, "deliveries": 1, "processes": 1}  # never a pending one
    with world.db.engine.connect() as conn:
        assert conn.execute(select(Lease.name)).scalars().all() == [living.name]
    _age(world, OutboxMessage.__table__, "sent_at", days=8)
    removed = world.engine.housekeeping()
    assert removed["notices"] == len(world.notifier.kinds(island_id)) + 1 >= 3  # + announce
    with world.db.engine.connect() as conn:
        assert sorted(conn.execute(select(Delivery.key)).scalars()) == ["cmd:new", "cmd:pending"]
        assert conn.execute(select(OutboxMessage.id)).all() == []


def _age(world: World, table: Any, column: str, *, days: int) -> None:
    with world.db.engine.begin() as conn:
        for row in conn.execute(select(table.c.get(column), *table.primary_key.columns)).all():
            if row[0] is None:
                continue
            key = {c.name: row[i + 1] for i, c in enumerate(table.primary_key.columns)}
            conn.execute(
                table.update()
                .where(*(table.c[k] == v for k, v in key.items()))
                .values({column: row[0] - timedelta(days=days)})
            )


def test_the_service_keeps_nodeport_ports_out_of_the_allocators_hands(world: World) -> None:
    someone = client.CoreV1Api(
        kube_config.new_client_from_config(str(world.sim.admin_kubeconfig_path))
    )
    someone.create_namespaced_service(  # someone else's service, not the bot's
        "default",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "targetPort": 8080, "nodePort": 36001}],
            },
        },
    )
    service = LifecycleService(world.engine, LeaderLease(world.db), interval=timedelta(seconds=0.2))
    service.start()  # the exclusions job runs at once, then every 5 minutes
    try:
        deadline = time.monotonic() + 10
        while world.allocator.usage().excluded == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert world.allocator.usage().excluded == 1
        island_id = world.start()
        assert IslandStore(world.db).get(island_id).first_port == 36003  # not 36000-36002
    finally:
        service.stop()
