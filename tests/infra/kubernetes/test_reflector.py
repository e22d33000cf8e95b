"""The watch-backed pod cache against kubesim: follows changes, survives 410s and drops, and
makes a tick's snapshot cost no request."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.kubernetes.reflector import PodReflector
from kubesim import KubeSim, SimConfig, running
from tests.podhelp import pod_for

SIM = SimConfig(create_delay=0.05, boot_delay=0.1, probe_period=0.05, grace_period=0.3)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with running(SIM, kubeconfig_path=tmp_path / "kubeconfig") as simulator:
        yield simulator


@pytest.fixture
def kube(sim: KubeSim) -> Iterator[Kube]:
    adapter = Kube.connect(
        KubeSettings(namespace="islands", request_timeout_s=2, backoff_s=0.01),
        kubeconfig=sim.kubeconfig_path,
    )
    yield adapter
    adapter.close()


@pytest.fixture
def reflector(kube: Kube) -> Iterator[PodReflector]:
    cache = PodReflector(kube, watch_timeout_s=1, retry_delay_s=0.1).start()
    assert cache.wait_synced()
    kube.reflector = cache
    yield cache
    cache.stop()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met")


def names(reflector: PodReflector) -> set[str]:
    return {p.name for p in reflector.pods() or []}


def test_follows_creation_changes_and_deletion(
    kube: Kube, reflector: PodReflector, templates
) -> None:  # type: ignore[no-untyped-def]
    assert reflector.pods() == []
    pod = kube.create_island_pod(pod_for(templates, 1))
    eventually(lambda: any(p.name == pod.name and p.node for p in reflector.pods() or []))
    eventually(
        lambda: any(p.condition("Ready") == ("True", None, None) for p in reflector.pods() or [])
    )
    kube.delete_pod(pod.name)
    eventually(lambda: names(reflector) == set())
    assert reflector.lists == 1 and reflector.events >= 3


def test_a_synced_cache_makes_snapshots_free(
    sim: KubeSim, kube: Kube, reflector: PodReflector, templates
) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, 6):
        kube.create_island_pod(pod_for(templates, i, first_port=30000 + 3 * i, owner=f"U0USER{i}"))
    eventually(lambda: len([p for p in reflector.pods() or [] if p.node]) == 5)
    before = sim.requests_seen()
    snap = kube.snapshot()
    spent = sim.requests_seen() - before
    assert sorted(snap.pods) == [1, 2, 3, 4, 5]
    assert sum(v for (method, path), v in spent.items() if "watch" not in path) == 0


def test_an_expired_watch_lists_again(
    sim: KubeSim, kube: Kube, reflector: PodReflector, templates
) -> None:  # type: ignore[no-untyped-def]
    kube.create_island_pod(pod_for(templates, 1))
    eventually(lambda: len(names(reflector)) == 1)
    # the next re-watch is held up; meanwhile things change and the history is compacted, so
    # it resumes from a resourceVersion the server no longer has: 410, then a fresh list
    sim.fail_requests(r"/namespaces/islands/pods$", action="delay", seconds=1.5, method="GET")
    time.sleep(1.2)  # the current watch (1 s) ends and the held-up one is sent
    kube.create_island_pod(pod_for(templates, 2, first_port=30003, owner="U0BOB"))
    sim.expire_watches()
    eventually(lambda: reflector.expired >= 1 and reflector.lists >= 2, timeout=5)
    eventually(lambda: len(names(reflector)) == 2)


def test_dropped_and_failing_requests_are_survived(
    sim: KubeSim, kube: Kube, reflector: PodReflector, templates
) -> None:  # type: ignore[no-untyped-def]
    sim.fail_requests(r"/namespaces/islands/pods$", action="drop", count=2, method="GET")
    sim.fail_requests(r"/namespaces/islands/pods$", status=500, count=2, method="GET")
    kube.create_island_pod(pod_for(templates, 3))
    eventually(lambda: len(names(reflector)) == 1, timeout=10)
    eventually(lambda: reflector.lists >= 2, timeout=10)


def test_stop_is_prompt(kube: Kube) -> None:
    cache = PodReflector(kube, watch_timeout_s=60).start()
    assert cache.wait_synced()
    began = time.monotonic()
    cache.stop()
    assert time.monotonic() - began < 3
