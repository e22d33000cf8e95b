"""A pod create and the row it came from agree, whatever happens between the tick's read and
its write (issue 15, defects 1, 2 and 4): an extend or a clock shift meanwhile, a create that
keeps failing, a create the cluster refuses for good (a ResourceQuota's 403), a pod whose
token the row lost."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

from kubernetes import client
from kubernetes import config as kube_config

from bot.domain.lifecycle_rules import decide
from bot.domain.podspec import ANNOTATION_CLOCK, REGISTER_TOKEN_ENV
from bot.domain.records import IslandChange, IslandRecord
from bot.domain.registration import parse_registration, token_hash
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.registry import Registry
from tests.app.reconcile_world import World

REGISTRATION = {"node": "dev-1", "pod_ip": "10.0.0.7", "version": "1.2.3"}


def change(world: World, island_id: int, **updates: object) -> None:
    """Change the row as a command would (its own locked transaction)."""
    IslandStore(world.db).change(
        island_id, lambda _island: (IslandChange(updates), None), what="test change"
    )


def pod_env(world: World, island_id: int) -> dict[str, str]:
    pod = world.sim.get("pods", "islands", world.pod_name(island_id))
    assert pod is not None
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def register(world: World, island_id: int) -> None:
    """What the island's seed does, with the token its pod carries (raises when refused)."""
    registry = Registry(world.db, port_names=world.templates.ports)
    token = pod_env(world, island_id)[REGISTER_TOKEN_ENV]
    registry.register(island_id, token, parse_registration(REGISTRATION, registry.port_names))


def create_from(world: World, stale: IslandRecord) -> None:
    """The tick's decision on a row read before someone changed it, carried out as the tick
    carries out its creates; none fails."""
    decision = decide(stale.facts, None, None, world.clock(), world.settings.limits)
    assert decision.create_pod
    _written, failed = world.engine.applier.create_many([(stale, decision)], world.clock(), map)
    assert failed == []


def test_an_island_extended_while_its_pod_is_created_still_registers(world: World) -> None:
    island_id = world.start()
    expires = IslandStore(world.db).get(island_id).expires_at
    world.sim.fail_requests(
        r"/namespaces/islands/pods$", action="delay", seconds=1.0, method="POST", count=1
    )
    extend = threading.Timer(
        0.4, lambda: change(world, island_id, expires_at=expires + timedelta(hours=1))
    )
    extend.start()
    world.engine.tick()  # reads the row, creates the pod (slowly); the extend lands meanwhile
    extend.join()
    world.until(lambda: world.state(island_id) == "ready")
    register(world, island_id)  # the token in the pod is the one the row knows
    assert IslandStore(world.db).get(island_id).registered_at is not None


def test_an_extend_between_the_read_and_the_create_creates_from_the_new_row(
    world: World,
) -> None:
    island_id = world.start()
    stale = IslandStore(world.db).get(island_id)
    change(world, island_id, expires_at=stale.expires_at + timedelta(hours=1))
    create_from(world, stale)
    assert world.sim.get("pods", "islands", stale.pod_name) is None  # decided again instead
    world.until(lambda: world.state(island_id) == "ready")
    register(world, island_id)


def test_a_clock_shift_on_a_requested_island_is_the_clock_its_pod_starts_with(
    world: World,
) -> None:
    island_id = world.start()
    stale = IslandStore(world.db).get(island_id)
    two_days = 2 * 86400
    change(world, island_id, clock_offset_s=two_days)  # what an applied `/island time` writes
    create_from(world, stale)
    world.until(lambda: world.state(island_id) == "ready")
    pod = world.sim.get("pods", "islands", stale.pod_name)
    assert pod is not None
    assert pod["metadata"]["annotations"][ANNOTATION_CLOCK] == str(two_days)
    started = pod_env(world, island_id)["ISLAND_INITIAL_CLOCK"]
    assert started[:10] == (world.clock() + timedelta(seconds=two_days)).strftime("%Y-%m-%d")


def test_a_create_that_keeps_failing_fails_the_island_and_frees_its_ports(world: World) -> None:
    world.settings = replace(
        world.settings,
        limits=replace(
            world.settings.limits,
            create_timeout=timedelta(seconds=2),
            pod_create_grace=timedelta(seconds=0.3),
        ),
    )
    world.engine = world.new_engine()
    island_id = world.start()
    world.sim.fail_requests(r"/namespaces/islands/pods$", status=503, method="POST", count=10_000)
    world.until(lambda: world.state(island_id) == "stopped", timeout=20)
    world.sim.clear_faults()
    island = IslandStore(world.db).get(island_id)
    assert island.failure_reason is not None and "503" in island.failure_reason
    assert world.allocator.usage().held == 0
    tried = world.sim.requests_seen()[("POST", "/api/v1/namespaces/islands/pods")]
    assert 2 <= tried <= 30  # sent again after each grace, not every tick
    failed = [n for n in world.notifier.items if n.island_id == island_id and n.kind == "failed"]
    assert len(failed) == 1 and "could not be created" in failed[0].text


def test_the_row_follows_the_token_its_pod_carries(world: World) -> None:
    """The bot died after the create reached the cluster but before it learned the answer,
    and the retry recorded another token: the pod's own token is the one that counts."""
    island_id = world.start()
    world.until(lambda: world.state(island_id) in ("scheduled", "running", "ready"))
    change(world, island_id, registration_token_hash=token_hash("a token no pod has"))
    world.until(
        lambda: (
            IslandStore(world.db).get(island_id).registration_token_hash
            == token_hash(pod_env(world, island_id)[REGISTER_TOKEN_ENV])
        )
    )
    register(world, island_id)


def test_a_create_refused_by_a_resource_quota_fails_the_island_and_frees_its_ports(
    world: World,
) -> None:
    admin = client.CoreV1Api(
        kube_config.new_client_from_config(str(world.sim.admin_kubeconfig_path))
    )
    admin.create_namespaced_resource_quota(
        "islands", {"metadata": {"name": "islands"}, "spec": {"hard": {"pods": "0"}}}
    )
    island_id = world.start()
    world.until(lambda: world.state(island_id) == "stopped")  # at once: retrying won't help
    assert world.allocator.usage().held == 0
    (failed,) = [n for n in world.notifier.items if n.island_id == island_id and n.kind == "failed"]
    assert "Kubernetes refused its pod" in failed.text
    assert "exceeded quota: islands, requested: pods=1, used: pods=0, limited: pods=0" in (
        failed.text
    )
    tried = world.sim.requests_seen()[("POST", "/api/v1/namespaces/islands/pods")]
    assert tried == 1
