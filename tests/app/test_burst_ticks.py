"""A tick over many islands at once (the whole team starting, or stopping, together): its
decisions carried out together, each island's outcome still its own, and (as under the
service) a burst's creates on a worker of their own while the next ticks go on."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes import client
from kubernetes import config as kube_config
from sqlalchemy import Connection, event, update

from bot.infra.storage.islands import IslandStore
from bot.infra.storage.tables import Island
from tests.app.reconcile_world import World, ready_island
from tests.app.test_reconcile import FrozenCache

PODS = "/api/v1/namespaces/islands/pods"


def start_many(world: World, count: int) -> list[int]:
    """``count`` islands of as many people (at most 5 live each), none of them created yet."""
    return [world.start(user=f"U0TEAM{n // 3}") for n in range(count)]


@contextmanager
def writes_counted(world: World) -> Iterator[Counter[str]]:
    """Transactions committed that could write (read-only ones are not counted)."""
    seen: Counter[str] = Counter()

    def on_commit(conn: Connection) -> None:
        if not conn.get_execution_options().get("islandbot_read_only", False):
            seen["writes"] += 1

    event.listen(world.db.engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(world.db.engine, "commit", on_commit)


def test_a_burst_of_starts_costs_two_writes_and_one_create_each(world: World) -> None:
    world.engine.tick()  # the first tick's other work (the NodePorts kept out) done
    ids = start_many(world, 12)
    world.engine.inline_delivery = False  # the notices' own writes are not the tick's
    before = world.sim.requests_seen()
    with writes_counted(world) as seen:
        report = world.engine.tick()
    sent = world.sim.requests_seen() - before
    world.engine.inline_delivery = True
    assert report.changed == 12 and not report.errors
    assert sent[("POST", PODS)] == 12
    assert seen["writes"] == 2  # the creates recorded, then their answers: not 24 one by one
    assert not [path for _method, path in sent if path.startswith(PODS + "/")]  # no GET each
    world.until(lambda: all(world.state(i) == "ready" for i in ids), timeout=30)
    for island_id in ids:
        assert world.notifier.kinds(island_id) == ["scheduled", "ready"]
    assert world.sim.requests_seen()[("POST", PODS)] == 12  # each pod created once


def test_a_lagging_cache_in_a_burst_is_checked_with_one_list(world: World) -> None:
    ids = start_many(world, 6)
    world.until(lambda: all(world.state(i) == "ready" for i in ids), timeout=30)
    world.kube.reflector = FrozenCache([])  # a cache that has not seen the pods (yet)
    try:
        before = world.sim.requests_seen()
        report = world.engine.tick()
        sent = world.sim.requests_seen() - before
    finally:
        world.kube.reflector = None
    assert report.confirmed == 6
    assert sent == {("GET", PODS): 1}  # one LIST asked the API server, not a GET each
    assert all(world.state(i) == "ready" for i in ids)  # no island failed, no port freed
    assert world.allocator.usage().held == 6


def test_a_quota_that_admits_part_of_a_burst_fails_only_the_rest(world: World) -> None:
    admin = client.CoreV1Api(
        kube_config.new_client_from_config(str(world.sim.admin_kubeconfig_path))
    )
    admin.create_namespaced_resource_quota(
        "islands", {"metadata": {"name": "islands"}, "spec": {"hard": {"pods": "4"}}}
    )
    ids = start_many(world, 7)
    world.until(lambda: all(world.state(i) in ("ready", "stopped") for i in ids), timeout=30)
    states = Counter(world.state(i) for i in ids)
    assert states == {"ready": 4, "stopped": 3}
    assert world.allocator.usage().held == 4  # the refused islands' ports are free again
    for island_id in ids:
        kinds = world.notifier.kinds(island_id)
        assert kinds in (["scheduled", "ready"], ["failed"]), kinds
        if kinds == ["failed"]:
            (failed,) = [n for n in world.notifier.items if n.island_id == island_id][-1:]
            assert "exceeded quota" in failed.text
    assert world.sim.requests_seen()[("POST", PODS)] == 7  # a refusal is not retried


def test_a_create_that_fails_for_one_island_of_a_burst_is_sent_again_for_it_alone(
    world: World,
) -> None:
    # a 401 (a token being rotated): not retried by the client, not a refusal of the pod
    world.sim.fail_requests(PODS + "$", status=401, method="POST", count=1)
    ids = start_many(world, 6)
    report = world.engine.tick()
    assert len(report.errors) == 1 and "injected by kubesim" in report.errors[0]
    noted = [i for i in ids if IslandStore(world.db).get(i).create_error]
    assert len(noted) == 1  # the failed one is noted; the five others were created
    world.until(lambda: all(world.state(i) == "ready" for i in ids), timeout=30)
    assert world.sim.requests_seen()[("POST", PODS)] == 7
    assert IslandStore(world.db).get(noted[0]).create_error is None


def test_a_delete_that_fails_in_a_burst_of_stops_stops_the_others(world: World) -> None:
    ids = [ready_island(world, user=f"U0TEAM{n}") for n in range(5)]
    with world.db.engine.begin() as conn:  # what five /island stop commands write
        conn.execute(update(Island).where(Island.id.in_(ids)).values(state="stopping"))
    world.sim.fail_requests(PODS + "/", status=401, method="DELETE", count=1)
    report = world.engine.tick()
    assert report.changed == 4 and len(report.errors) == 1
    world.until(lambda: all(world.state(i) == "stopped" for i in ids), timeout=30)
    assert world.allocator.usage().held == 0
    for island_id in ids:
        assert world.notifier.kinds(island_id).count("stopped") == 1


def test_the_ticks_go_on_while_a_bursts_creates_are_under_way(world: World) -> None:
    """As under the service: creates on their worker. A first island stops while the creates
    of a burst after it hang, and no tick sends a burst's create twice."""
    first = ready_island(world)
    world.engine.batches.inline_creates = False
    written = threading.Event()
    world.engine.batches.on_written = written.set
    world.sim.fail_requests(PODS + "$", action="delay", seconds=1.8, method="POST", count=3)
    burst = start_many(world, 3)
    world.engine.tick()  # hands the creates to the worker
    assert world.engine.batches.in_flight() == frozenset(burst)
    with world.db.engine.begin() as conn:
        conn.execute(update(Island).where(Island.id == first).values(state="stopping"))
    world.until(lambda: world.state(first) == "stopped", timeout=10)
    assert world.engine.batches.in_flight() == frozenset(burst)  # still under way meanwhile
    assert world.sim.requests_seen()[("POST", PODS)] == 1 + 3
    world.until(lambda: all(world.state(i) == "ready" for i in burst), timeout=30)
    assert written.is_set() and world.engine.batches.in_flight() == frozenset()
    assert world.sim.requests_seen()[("POST", PODS)] == 1 + 3
    for island_id in burst:
        assert world.notifier.kinds(island_id) == ["scheduled", "ready"]
