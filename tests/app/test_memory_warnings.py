"""An island's owner is warned once before the kernel OOMKills it (issue 22): the leader
reads every island's memory with one LIST of the cluster's pod metrics, and when an island's
working set stays at 90 % of its limit or more for two readings in a row, its owner gets one
warning; then the kill comes and the island fails as OOMKilled. kubesim serves the metrics API
as metrics-server does and makes the island's memory climb to its limit (its memory-climb
fault), through the real ``kubernetes`` client; on the ``rbac`` cluster the bot reads it under
the RBAC we ship. A cluster without metrics-server: the check says why it is off."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app.memory_check import MemoryCheck
from bot.domain.memory_watch import MemoryPolicy
from bot.infra import metrics
from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.kubernetes.pod_metrics import PodMetrics
from bot.infra.storage.memory import MemoryStore
from bot.infra.storage.tables import Island, IslandMemory, OutboxMessage
from kubesim import SimConfig
from kubesim.usage import steady_working_set
from tests.app.reconcile_world import SIM, World, ready_island
from tests.kube_access import cluster

NAMESPACE = "islands"
GI = 2**30


def check(world: World, policy: MemoryPolicy = MemoryPolicy()) -> MemoryCheck:  # noqa: B008
    return MemoryCheck(
        metrics_api=PodMetrics(world.kube),
        kube=world.kube,
        store=MemoryStore(world.db),
        policy=policy,
        server_container=world.templates.server_container,
        allowed=lambda branch: 4 * GI if branch == "dev" else None,
        clock=world.clock,
    )


def first_reading(world: World, memory: MemoryCheck, island_id: int) -> None:
    """Read until the island's first reading is kept (metrics once its server ran a bit)."""
    deadline = time.monotonic() + 10
    while not MemoryStore(world.db).last([island_id]):
        assert time.monotonic() < deadline, "no reading of the island within 10 s"
        memory.run()
        time.sleep(0.1)


def warnings(world: World, island_id: int) -> list[dict[str, object]]:
    with world.db.engine.connect() as conn:
        return [
            dict(d)
            for d in conn.execute(
                select(OutboxMessage.detail).where(
                    OutboxMessage.island_id == island_id, OutboxMessage.kind == "memory_high"
                )
            ).scalars()
        ]


def test_a_steady_island_is_read_and_never_warned_about(world: World) -> None:
    island_id = ready_island(world)
    memory = check(world)
    pod = world.pod_name(island_id)
    first_reading(world, memory, island_id)
    for _ in range(3):
        assert memory.run() == []
    kept = MemoryStore(world.db).last([island_id])[island_id]
    obj = world.sim.get("pods", NAMESPACE, pod)
    assert obj is not None
    spec = obj["spec"]["containers"][0]
    steady = steady_working_set(NAMESPACE, pod, spec)
    assert kept.limit == 2048 * 2**20
    assert abs(kept.used - steady) <= steady * 0.03  # its steady working set, give or take
    assert warnings(world, island_id) == []


def test_an_island_climbing_to_its_limit_warns_its_owner_once_before_the_kill(
    world: World,
) -> None:
    island_id = ready_island(world)
    # metrics samples are whole seconds apart: warned at 70 %, a climb over 6 s from its
    # steady 30-45 % stays high for about 3 s, two samples or more before the kill
    memory = check(world, MemoryPolicy(warn_at=0.7))
    pod = world.pod_name(island_id)
    first_reading(world, memory, island_id)
    world.sim.memory_climb(NAMESPACE, pod, seconds=6)
    warned_at: list[int] = []
    deadline = time.monotonic() + 20
    while world.state(island_id) != "failed" and time.monotonic() < deadline:
        warned_at += memory.run()
        world.engine.tick()
        time.sleep(0.2)
    assert world.state(island_id) == "failed"
    assert warned_at == [island_id]  # once, before the kill
    (detail,) = warnings(world, island_id)
    assert detail["limit"] == 2048 * 2**20
    assert 0.7 * 2048 * 2**20 <= int(str(detail["used"])) <= 2048 * 2**20
    assert detail["more"] == 3 * GI  # dev allows up to 4Gi here
    world.until(lambda: "failed" in world.notifier.kinds(island_id))
    kinds = world.notifier.kinds(island_id)
    assert kinds.index("memory_high") < kinds.index("failed")
    (text,) = [a.text for a in world.notifier.items if a.kind == "memory_high"]
    assert "of its 2Gi memory limit; at 2Gi it will be killed" in text
    assert f"/island restart {island_id}" in text and "set memory=3Gi" in text
    route = [a.route for a in world.notifier.items if a.kind == "memory_high"]
    assert route == ["thread"]
    (failed,) = [a for a in world.notifier.items if a.kind == "failed"]
    assert "OOMKilled at the 2048Mi limit (its last memory reading: 1." in failed.text


def test_a_cluster_without_metrics_server_turns_the_check_off_saying_why(tmp_path: Path) -> None:
    config = SimConfig(nodes=SIM.nodes, metrics=False)
    with cluster(config, tmp_path / "kubeconfig") as sim:
        kube = Kube.connect(
            KubeSettings(namespace=NAMESPACE, attempts=1), kubeconfig=sim.kubeconfig_path
        )
        try:
            reason = PodMetrics(kube).probe()
        finally:
            kube.close()
    assert reason == "the cluster serves no metrics API (metrics-server is not installed)"


def test_one_reading_of_many_islands_is_one_request_and_no_series_per_island(
    world: World,
) -> None:
    ids = [ready_island(world, user=f"U0MEM{n}") for n in range(4)]
    memory = check(world)
    deadline = time.monotonic() + 10
    while len(MemoryStore(world.db).last(ids)) < len(ids) and time.monotonic() < deadline:
        memory.run()
        time.sleep(0.1)
    observed = _ratio_count()
    time.sleep(1.1)  # the next sample of the metrics API
    before = world.sim.requests_seen()
    memory.run()
    seen = world.sim.requests_seen() - before
    assert {path: n for (_method, path), n in seen.items() if "metrics.k8s.io" in path} == {
        f"/apis/metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods": 1
    }
    assert _ratio_count() - observed == len(ids)  # one observation each, in one histogram
    names = {m.name for m in metrics.REGISTRY.collect() if "memory" in m.name}
    assert names == {"islandbot_island_memory_ratio", "islandbot_memory_warnings"}


def _ratio_count() -> float:
    value = metrics.REGISTRY.get_sample_value("islandbot_island_memory_ratio_count")
    return value or 0.0


def test_a_restarted_island_starts_its_memory_afresh(world: World) -> None:
    """Warned, then restarted (as the warning advises): the new run's readings are judged on
    their own; nothing of the old run is shown, and its next warning can come."""
    island_id = ready_island(world)
    memory = check(world)
    first_reading(world, memory, island_id)
    with world.db.engine.begin() as conn:  # as if the old run had been warned
        conn.execute(update(IslandMemory).values(high_in_a_row=5, warned=True))
    with world.db.engine.begin() as conn:  # what /island restart does
        conn.execute(
            update(Island).where(Island.id == island_id).values(restart_requested_at=world.clock())
        )
    world.until(lambda: world.state(island_id) in ("requested", "creating", "scheduled"))
    assert MemoryStore(world.db).last([island_id]) == {}  # the old run's reading is gone
    world.until(lambda: world.state(island_id) == "ready", timeout=20)
    first_reading(world, memory, island_id)
    with world.db.engine.connect() as conn:
        row = conn.execute(select(IslandMemory.high_in_a_row, IslandMemory.warned)).one()
    assert tuple(row) == (0, False)


def test_a_metrics_api_that_stops_answering_is_told_once_and_again_when_it_is_back(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    island_id = ready_island(world)
    memory = check(world)
    first_reading(world, memory, island_id)
    world.sim.fail_requests(path="/apis/metrics.k8s.io", status=503, count=5)
    with caplog.at_level(logging.INFO, logger="bot.app.memory_check"):
        for _ in range(5):
            assert memory.run() == []
        time.sleep(1.1)  # a new sample
        memory.run()
    told = [r.getMessage() for r in caplog.records if r.name == "bot.app.memory_check"]
    assert len(told) == 2, told
    assert told[0].startswith("memory readings wait: the metrics API does not answer")
    assert told[1] == "memory readings go on: the metrics API answers again"
