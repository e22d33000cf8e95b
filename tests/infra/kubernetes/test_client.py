"""The Kubernetes adapter against kubesim, through the real client, including injected faults."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.kubernetes.errors import (
    KubeConflict,
    KubeError,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
)
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.kubernetes.views import PodView
from bot.run import compose
from bot.run.settings_env import load_settings
from kubesim import KubeSim, SimConfig, parse_nodes, running
from kubesim.tests.util import tls_files
from tests.podhelp import pod_for

FAST = SimConfig(create_delay=0.05, boot_delay=0.1, probe_period=0.05, grace_period=0.3)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with running(FAST, kubeconfig_path=tmp_path / "kubeconfig") as simulator:
        yield simulator


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.05))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def kube(sim: KubeSim, sleeps: Sleeps) -> Iterator[Kube]:
    adapter = Kube.connect(
        KubeSettings(
            namespace="islands", request_timeout_s=2, attempts=4, backoff_s=0.05, max_wait_s=3
        ),
        kubeconfig=sim.kubeconfig_path,
    )
    adapter._sleep = sleeps  # record waits instead of sleeping them out
    yield adapter
    adapter.close()


def wait_for(fn, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := fn():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met")


def ready(view: PodView | None) -> bool:
    return view is not None and (view.condition("Ready") or ("False",))[0] == "True"


def test_create_list_and_watch_a_rendered_island_become_ready(
    kube: Kube, templates: TemplateSet
) -> None:
    created = kube.create_island_pod(pod_for(templates, 269))
    assert (created.island_id, created.owner_id, created.phase) == (269, "U0ALICE", "Pending")
    view = wait_for(lambda: (v := kube.get_pod(created.name)) and ready(v) and v)
    assert view.node in ("dev-1", "dev-2") and view.host_ip in ("127.0.0.2", "127.0.0.3")
    assert view.containers["altraserver"].state == "running"
    assert view.containers["side-container"].ready
    assert [p.name for p in kube.list_island_pods()] == [created.name]


def test_a_retried_create_returns_the_same_pod_but_another_owner_conflicts(
    kube: Kube, templates: TemplateSet
) -> None:
    first = kube.create_island_pod(pod_for(templates, 7))
    again = kube.create_island_pod(pod_for(templates, 7))
    assert again.uid == first.uid
    other = pod_for(templates, 7)
    other["metadata"]["labels"]["islandbot.io/owner"] = "U0MALLORY"
    with pytest.raises(KubeConflict, match="already exists"):
        kube.create_island_pod(other)


def test_delete_is_idempotent(kube: Kube, templates: TemplateSet) -> None:
    pod = kube.create_island_pod(pod_for(templates, 8))
    wait_for(lambda: (v := kube.get_pod(pod.name)) and v.node)
    assert kube.delete_pod(pod.name) is True
    assert kube.get_pod(pod.name).deleting  # type: ignore[union-attr]
    wait_for(lambda: kube.get_pod(pod.name) is None)
    assert kube.delete_pod(pod.name) is False


def test_list_is_one_request_whatever_the_number_of_islands(
    sim: KubeSim, kube: Kube, templates: TemplateSet
) -> None:
    for i in range(1, 21):
        kube.create_island_pod(pod_for(templates, i, first_port=30000 + 3 * i, owner=f"U0USER{i}"))
    kube.core.create_namespaced_pod(
        "islands",
        {  # someone else's pod: never listed
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "unrelated"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        },
    )
    before = sim.requests_seen()
    views = kube.list_island_pods()
    failures = kube.scheduling_failures()
    after = sim.requests_seen()
    assert len(views) == 20 and failures == {}
    assert sum((after - before).values()) == 2


def test_the_pods_of_some_islands_are_asked_of_the_api_server_a_hundred_at_a_time(
    sim: KubeSim, kube: Kube, templates: TemplateSet
) -> None:
    for i in (5, 150, 240):
        kube.create_island_pod(pod_for(templates, i, first_port=30000 + 3 * i, owner=f"U0USER{i}"))
    kube.create_island_pod(pod_for(templates, 300, first_port=30900, owner="U0OTHER"))
    before = sim.requests_seen()
    found = kube.island_pods(range(1, 251))  # 250 islands asked about, three have a pod
    after = sim.requests_seen()
    assert sorted(found) == [5, 150, 240]
    assert found[150].name == kube.get_pod(found[150].name).name  # type: ignore[union-attr]
    assert after - before == {("GET", "/api/v1/namespaces/islands/pods"): 3}
    assert kube.island_pods([]) == {}


def test_scheduling_failures_carry_the_schedulers_words(kube: Kube, templates: TemplateSet) -> None:
    pod = kube.create_island_pod(pod_for(templates, 9, branch="weekly", memory="3Gi"))
    big = pod_for(templates, 10, branch="weekly", first_port=30003)
    big["spec"]["containers"][0]["resources"]["requests"]["memory"] = "30Gi"
    big["spec"]["containers"][0]["resources"]["limits"]["memory"] = "30Gi"
    stuck = kube.create_island_pod(big)
    failures = wait_for(kube.scheduling_failures)
    assert failures == {
        stuck.name: "0/3 nodes are available: 1 Insufficient memory, "
        "2 node(s) didn't match Pod's node affinity/selector."
    }
    assert pod.name not in failures


def test_capacity_view_and_node_ports(sim: KubeSim, kube: Kube, templates: TemplateSet) -> None:
    kube.create_island_pod(pod_for(templates, 11, branch="weekly"))
    wait_for(lambda: (v := kube.list_island_pods()) and v[0].node)
    nodes = {n.name: n for n in kube.nodes()}
    assert nodes["weekly-1"].labels["branch"] == "weekly"
    assert nodes["weekly-1"].allocatable_memory == 16 * 2**30
    assert nodes["weekly-1"].requested_memory == 1500 * 2**20
    assert nodes["dev-1"].requested_memory == 0 and nodes["dev-1"].ready
    assert nodes["weekly-1"].address == "127.0.0.4"
    kube.core.create_namespaced_service(
        "default",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "grafana"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
        },
    )
    assert kube.node_ports() == {30080: "NodePort of Service default/grafana"}


def test_logs_and_exec(sim: KubeSim, kube: Kube, templates: TemplateSet) -> None:
    pod = kube.create_island_pod(pod_for(templates, 12))
    wait_for(lambda: ready(kube.get_pod(pod.name)))
    logs = kube.pod_logs(pod.name, container="altraserver")
    assert "seed: initial clock 2021-09-18 23:30:07" in logs
    assert kube.pod_logs(pod.name, container="altraserver", tail_lines=1).count("\n") == 1
    with pytest.raises(KubeError, match="previous terminated container"):
        kube.pod_logs(pod.name, container="altraserver", previous=True)
    result = kube.exec(
        pod.name,
        container="altraserver",
        command=["sh", "-c", "cat $FAKETIME_TIMESTAMP_FILE; exit 4"],
    )
    assert (result.stdout, result.exit_code) == ("@2021-09-18 23:30:07\n", 4)
    with pytest.raises(KubeNotFound):
        kube.exec("no-such-pod", container="altraserver", command=["true"])


def test_5xx_is_retried_with_backoff(sim: KubeSim, kube: Kube, sleeps: Sleeps) -> None:
    sim.fail_requests(r"/namespaces/islands/pods$", status=500, count=2)
    assert kube.list_island_pods() == []
    # exponential: 0.05 s then 0.1 s, each with +-50 % jitter
    assert len(sleeps) == 2
    assert 0.025 <= sleeps[0] <= 0.075 and 0.05 <= sleeps[1] <= 0.15
    assert kube.retries == 2


def test_429_waits_for_retry_after_capped(sim: KubeSim, kube: Kube, sleeps: Sleeps) -> None:
    sim.fail_requests(r"/namespaces/islands/pods$", status=429, seconds=2)
    sim.fail_requests(r"/nodes$", status=429, seconds=600)
    assert kube.list_island_pods() == []
    assert sleeps == [2.0]
    assert kube.nodes()
    assert sleeps[-1] == 3.0  # max_wait_s, not ten minutes


def test_dropped_connections_and_timeouts_are_retried(
    sim: KubeSim, kube: Kube, sleeps: Sleeps
) -> None:
    sim.fail_requests(r"/namespaces/islands/pods$", action="drop")
    sim.fail_requests(r"/namespaces/islands/events$", action="delay", seconds=3)
    assert kube.list_island_pods() == []
    assert kube.scheduling_failures() == {}
    assert len(sleeps) == 2


def test_persistent_failure_ends_as_unavailable(sim: KubeSim, kube: Kube) -> None:
    sim.fail_requests(r"/namespaces/islands/pods$", status=503, count=10)
    with pytest.raises(KubeUnavailable, match="still failing after 4 attempts"):
        kube.list_island_pods()
    assert sim.requests_seen()[("GET", "/api/v1/namespaces/islands/pods")] == 4


def test_other_4xx_fail_at_once(
    sim: KubeSim, kube: Kube, templates: TemplateSet, sleeps: Sleeps
) -> None:
    bad = pod_for(templates, 13)
    bad["spec"]["containers"][1]["name"] = "altraserver"  # duplicate container name
    with pytest.raises(KubeInvalid, match="Duplicate value"):
        kube.create_island_pod(bad)
    elsewhere = Kube.connect(KubeSettings(namespace="ghost"), kubeconfig=sim.kubeconfig_path)
    with pytest.raises(KubeNotFound):
        elsewhere.create_island_pod(pod_for(templates, 14))
    elsewhere.close()
    assert sleeps == []


def test_no_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KubeError, match="no usable Kubernetes configuration"):
        Kube.connect(KubeSettings(), kubeconfig=tmp_path / "missing")


def test_snapshot_costs_the_same_for_one_island_or_twenty(
    sim: KubeSim, kube: Kube, templates: TemplateSet
) -> None:
    def calls_for_snapshot() -> int:
        before = sim.requests_seen()
        kube.snapshot()
        return sum((sim.requests_seen() - before).values())

    kube.create_island_pod(pod_for(templates, 1))
    wait_for(lambda: (v := kube.list_island_pods()) and v[0].node)
    one = calls_for_snapshot()
    for i in range(2, 21):
        kube.create_island_pod(pod_for(templates, i, first_port=30000 + 3 * i, owner=f"U0USER{i}"))
    twenty = calls_for_snapshot()
    assert one <= 2 and twenty <= 2
    snap = kube.snapshot()
    assert sorted(snap.pods) == list(range(1, 21)) and snap.strays == []


def test_the_composition_root_connects_with_the_configured_kubeconfig(sim: KubeSim) -> None:
    settings = load_settings(
        {
            "ISLANDBOT_KUBECONFIG": str(sim.kubeconfig_path),
            "ISLANDBOT_KUBE_CONTEXT": "kubesim",
            "ISLANDBOT_KUBE_TIMEOUT": "3s",
        }
    )
    adapter = compose.connect_kube(settings, compose.Tuning())
    assert adapter.settings.request_timeout_s == 3 and adapter.settings.namespace == "islands"
    assert {n.name for n in adapter.nodes()} == {"dev-1", "dev-2", "weekly-1"}
    adapter.close()


# ---- in a pod: the service account ------------------------------------------------------------

SA_TOKEN = "service-account-token-for-this-test"


@pytest.fixture
def cluster_with_auth(tmp_path: Path) -> Iterator[KubeSim]:
    """kubesim as a real cluster presents itself to a pod: HTTPS, and a token required."""
    tls = tls_files(tmp_path)
    with running(FAST, tls=tls, token=SA_TOKEN) as simulator:
        yield simulator


def service_account(directory: Path, sim: KubeSim, token: str) -> Path:
    directory.mkdir()
    (directory / "token").write_text(token)
    assert sim.tls is not None
    (directory / "ca.crt").write_bytes(sim.tls.ca.read_bytes())
    (directory / "namespace").write_text("islandbot")
    return directory


def pod_environment(sim: KubeSim) -> dict[str, str]:
    return {"KUBERNETES_SERVICE_HOST": sim.host, "KUBERNETES_SERVICE_PORT": str(sim.port)}


def test_in_a_pod_the_service_account_token_and_ca_are_used(
    cluster_with_auth: KubeSim, templates: TemplateSet, tmp_path: Path
) -> None:
    sim = cluster_with_auth
    adapter = Kube.connect(
        KubeSettings(namespace="islands", request_timeout_s=5),
        environ=pod_environment(sim),
        service_account=service_account(tmp_path / "sa", sim, SA_TOKEN),
    )
    assert {n.name for n in adapter.nodes()} == {"dev-1", "dev-2", "weekly-1"}
    adapter.ping()
    pod = adapter.create_island_pod(pod_for(templates, 31))
    wait_for(lambda: ready(adapter.get_pod(pod.name)))
    result = adapter.exec(  # the clock work runs over a websocket: TLS and the token there too
        pod.name, container="altraserver", command=["sh", "-c", "cat $FAKETIME_TIMESTAMP_FILE"]
    )
    assert (result.stdout, result.exit_code) == ("@2021-09-18 23:30:07\n", 0)
    adapter.close()


def test_a_refused_service_account_token_is_reported_not_retried(
    cluster_with_auth: KubeSim, tmp_path: Path
) -> None:
    sim = cluster_with_auth
    adapter = Kube.connect(
        KubeSettings(namespace="islands", request_timeout_s=5),
        environ=pod_environment(sim),
        service_account=service_account(tmp_path / "sa", sim, "a-revoked-token"),
    )
    with pytest.raises(KubeError, match="Unauthorized"):
        adapter.list_island_pods()
    assert adapter.retries == 0
    adapter.close()


def test_in_a_pod_without_a_mounted_token_the_error_says_so(tmp_path: Path) -> None:
    with pytest.raises(KubeError, match=r"no usable Kubernetes configuration: .*token file"):
        Kube.connect(
            KubeSettings(),
            environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"},
            service_account=tmp_path / "not-mounted",
        )


def test_a_configured_kubeconfig_wins_over_the_pods_service_account(
    sim: KubeSim, tmp_path: Path
) -> None:
    adapter = Kube.connect(
        KubeSettings(),
        kubeconfig=sim.kubeconfig_path,
        environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1"},
        service_account=tmp_path / "not-mounted",
    )
    assert len(adapter.nodes()) == 3
    adapter.close()


# a node's allocatable memory in each of the API server's forms (issue 21, defect 11)
SIZES = {
    "gibi-1": ("64Gi", 64 * 2**30),
    "bytes-1": ("68719476736", 64 * 2**30),
    "exp-1": ("64e9", 64 * 10**9),
    "peta-1": ("1Pi", 2**50),
    "milli-1": ("129500m", 130),  # a fraction of a byte counts as one, as Value() rounds
}


def test_allocatable_memory_in_any_of_the_api_servers_forms(tmp_path: Path) -> None:
    nodes = ";".join(f"{name}:branch=dev,memory={text}" for name, (text, _) in SIZES.items())
    with running(
        replace(FAST, nodes=parse_nodes(nodes)), kubeconfig_path=tmp_path / "kubeconfig"
    ) as sim:
        kube = Kube.connect(KubeSettings(request_timeout_s=2), kubeconfig=sim.kubeconfig_path)
        try:
            read = {n.name: n.allocatable_memory for n in kube.nodes()}
        finally:
            kube.close()
    assert read == {name: size for name, (_, size) in SIZES.items()}


def test_a_node_whose_memory_cannot_be_read_is_logged_and_left_out(
    sim: KubeSim, kube: Kube, caplog: pytest.LogCaptureFixture
) -> None:
    def unreadable(node: dict[str, Any]) -> None:
        node["status"]["allocatable"]["memory"] = "Infinity"  # the client's Decimal reads it

    async def corrupt() -> None:
        sim.store.mutate("nodes", "", "dev-2", unreadable)

    sim.call(corrupt())
    with caplog.at_level(logging.WARNING, logger="bot.infra.kubernetes.client"):
        nodes = kube.nodes()
    assert {n.name for n in nodes} == {"dev-1", "weekly-1"}
    assert "node dev-2: unreadable allocatable memory 'Infinity', left out" in caplog.text
