"""``deploy/k8s/island-policy.yaml``: every rule of the ValidatingAdmissionPolicy evaluated with
a CEL interpreter (cel-python) the way the API server evaluates it (its variables first, then
each validation on the pod): the pods our templates render pass, and a pod that breaks a rule
is refused with that rule's message."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import celpy
import pytest
import yaml

from bot.domain.podspec import IslandParams
from bot.infra.kubernetes.templates import load_templates
from tests.paths import ROOT

POLICY = next(
    d
    for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "island-policy.yaml").read_text())
    if d["kind"] == "ValidatingAdmissionPolicy"
)
ENV = celpy.Environment()


def refusals(pod: dict[str, Any]) -> list[str]:
    """The messages of the validations ``pod`` fails (none: admitted)."""
    activation: dict[str, Any] = {"object": celpy.json_to_cel(pod)}
    variables: dict[str, Any] = {}
    for variable in POLICY["spec"]["variables"]:
        activation["variables"] = celpy.celtypes.MapType(variables)
        value = ENV.program(ENV.compile(variable["expression"])).evaluate(activation)
        variables[celpy.celtypes.StringType(variable["name"])] = value
    activation["variables"] = celpy.celtypes.MapType(variables)
    failed = []
    for rule in POLICY["spec"]["validations"]:
        result = ENV.program(ENV.compile(rule["expression"])).evaluate(activation)
        assert isinstance(result, celpy.celtypes.BoolType), (rule["expression"], result)
        if not result:
            failed.append(rule["message"])
    return failed


def rendered(branch: str) -> dict[str, Any]:
    templates = load_templates(ROOT / "k8s_templates")
    params = IslandParams(
        island_id=7,
        owner_id="U0ALICE",
        owner_name="alice",
        branch=branch,
        first_port=30807,
        initial_clock="2026-12-01 10:00:00",
        registration_url="http://islandbot/api/v1/islands/7/register",
        registration_token="tok",
        clock_offset_s=0,
        chat_channel="C0TEAM",
        chat_thread=None,
    )
    return templates.render(params, {})


@pytest.mark.parametrize("branch", ["dev", "weekly"])
def test_the_pods_our_templates_render_are_admitted(branch: str) -> None:
    assert refusals(rendered(branch)) == []


def server(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]  # type: ignore[no-any-return]


def set_in(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(pod: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = pod
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return change


BREAKS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "host network": (set_in("spec.hostNetwork", True), "host namespace"),
    "host PID": (set_in("spec.hostPID", True), "host namespace"),
    "privileged": (
        lambda pod: server(pod)["securityContext"].update(privileged=True),
        "never privileged",
    ),
    "SYS_ADMIN": (
        lambda pod: server(pod)["securityContext"]["capabilities"]["add"].append("SYS_ADMIN"),
        "NET_ADMIN and SYS_TIME capabilities only",
    ),
    "hostPath": (
        lambda pod: pod["spec"]["volumes"].append({"name": "root", "hostPath": {"path": "/"}}),
        "the shared code claim",
    ),
    "another claim": (
        lambda pod: pod["spec"]["volumes"][0]["persistentVolumeClaim"].update(claimName="db"),
        "the shared code claim",
    ),
    "code writable": (
        lambda pod: server(pod)["volumeMounts"][0].update(readOnly=False),
        "mounted read-only",
    ),
    "API token": (set_in("spec.automountServiceAccountToken", True), "no service account"),
    "init container": (
        lambda pod: pod["spec"].update(
            initContainers=[{"name": "i", "image": "alpine:3.14.1", "command": ["true"]}]
        ),
        "no init or ephemeral",
    ),
    "other image": (lambda pod: server(pod).update(image="evil/miner:1"), "allowed list"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_pod_that_breaks_a_rule_is_refused_with_its_message(name: str) -> None:
    pod = copy.deepcopy(rendered("dev"))
    change, expected = BREAKS[name]
    change(pod)
    failed = refusals(pod)
    assert failed and all(expected in message for message in failed), failed


def test_a_branch_profile_may_add_sys_time_back() -> None:
    pod = rendered("dev")
    server(pod)["securityContext"]["capabilities"]["add"] = ["NET_ADMIN", "SYS_TIME"]
    assert refusals(pod) == []
