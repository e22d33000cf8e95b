"""The bot under the RBAC we ship (``deploy/k8s/rbac.yaml``), as its service account, against a
kubesim that enforces it: every command that touches the cluster works, nothing it does is
refused; and the ClusterRole the bot shipped with before (no pods) is shown to break
``/island capacity`` (issue 15, defect 7). The lifecycle and clock suites run under it too
(their ``world`` fixtures)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from bot.infra.storage.database import Database
from kubesim import SimConfig
from tests.kube_access import SHIPPED_RBAC, cluster
from tests.slackworld import slack_world


def test_every_command_that_touches_the_cluster_works_under_the_shipped_rbac(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with slack_world(db, tmp_path, access="rbac") as world:
        world.command("start dev")
        (island,) = world.started()
        world.until(lambda: world.island(island.id).state.value == "ready", 30)
        world.command("capacity")
        capacity = world.wait_answer()
        assert "1 live islands" in capacity or "1 live island" in capacity, capacity
        world.command(f"logs {island.id} lines=5")
        assert f"Last 5 lines of island #{island.id}'s log" in world.wait_answer(count=2)
        old_uid = world.kube.get_pod(island.pod_name)
        assert old_uid is not None
        world.command(f"restart {island.id}")
        world.until(
            lambda: (
                (pod := world.kube.get_pod(island.pod_name)) is not None
                and pod.uid != old_uid.uid
                and world.island(island.id).state.value == "ready"
            ),
            30,
        )
        world.command(f"stop {island.id}")
        world.until(lambda: world.island(island.id).state.value == "stopped", 30)
        assert world.sim.get("pods", "islands", island.pod_name) is None
    refused = [r.getMessage() for r in caplog.records if "forbidden" in r.getMessage().lower()]
    assert refused == []


def test_the_cluster_role_without_pods_breaks_capacity(db: Database, tmp_path: Path) -> None:
    """What shipped before: the command fails on a real cluster (and said so only there)."""
    docs = list(yaml.safe_load_all(SHIPPED_RBAC.read_text()))
    for doc in docs:
        if doc["kind"] == "ClusterRole":
            for rule in doc["rules"]:
                rule["resources"] = [r for r in rule["resources"] if r != "pods"]
    old = tmp_path / "old-rbac.yaml"
    old.write_text(yaml.safe_dump_all(docs))
    with slack_world(db, tmp_path, access="rbac", rbac=old) as world:
        world.command("capacity")
        world.wait_answer()
        shown = str(world.fake.responses[-1])
        assert "The cluster could not be read" in shown, shown
        assert 'cannot list resource "pods" in API group "" at the cluster scope' in shown


def test_the_bot_may_read_pod_metrics_in_the_islands_namespace_only(tmp_path: Path) -> None:
    with cluster(SimConfig(), tmp_path / "kubeconfig", access="rbac") as sim:
        api = kube_config.new_client_from_config(str(sim.kubeconfig_path))
        metrics = client.CustomObjectsApi(api)
        gv = ("metrics.k8s.io", "v1beta1")
        assert metrics.list_namespaced_custom_object(*gv, "islands", "pods")["items"] == []
        with pytest.raises(ApiException) as unknown:  # get is allowed: the pod is not there
            metrics.get_namespaced_custom_object(*gv, "islands", "pods", "island-1")
        assert unknown.value.status == 404
        for refused in (
            lambda: metrics.list_cluster_custom_object(*gv, "nodes"),
            lambda: metrics.list_cluster_custom_object(*gv, "pods"),
            lambda: metrics.list_namespaced_custom_object(*gv, "default", "pods"),
        ):
            with pytest.raises(ApiException) as forbidden:
                refused()
            assert forbidden.value.status == 403
        api.close()
