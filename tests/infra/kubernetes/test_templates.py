"""Island templates, branch profiles and rendering: compared field by field with the original
Pod of the design note, validated with kubernetes-validate, and safe against any user input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.errors import BadOverride, UnknownBranch
from bot.domain.podspec import IslandParams, TemplateError
from bot.infra.kubernetes.templates import load_templates, validate_pod
from bot.words import refusals
from tests.paths import FIXTURES, ROOT

ORIGINAL = yaml.safe_load((FIXTURES / "original-pod.yaml").read_text())
SHIPPED = ROOT / "k8s_templates"


def island(**changes: object) -> IslandParams:
    values: dict[str, object] = {
        "island_id": 269,
        "owner_id": "U0LIUDIANBO",
        "owner_name": "liudianbo",
        "branch": "dev",
        "first_port": 30807,
        "initial_clock": "2021-09-18 23:30:07",
        "registration_url": "http://islandbot:8080/api/v1/islands/269/register",
        "registration_token": "tok-269",
        "clock_offset_s": 0,
        "chat_channel": "C0TEAM",
        "chat_thread": "1700000000.000100",
    }
    values.update(changes)
    return IslandParams(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def templates():  # type: ignore[no-untyped-def]
    return load_templates(SHIPPED, kubernetes_version="1.37")


def env_of(container: dict) -> dict[str, str]:
    """Plain values; downward-API entries as ``fieldRef:<path>``."""
    return {
        e["name"]: e["value"]
        if "value" in e
        else f"fieldRef:{e['valueFrom']['fieldRef']['fieldPath']}"
        for e in container["env"]
    }


def test_rendered_pod_keeps_everything_the_original_pod_has(templates) -> None:  # type: ignore[no-untyped-def]
    pod = templates.render(island(), {})
    spec, original = pod["spec"], ORIGINAL["spec"]
    for key in ("volumes", "nodeSelector", "dnsPolicy", "restartPolicy"):
        assert spec[key] == original[key], key
    server, side = spec["containers"]
    o_server, o_side = original["containers"]
    assert side == o_side
    for key in ("name", "image", "resources", "ports", "readinessProbe", "command"):
        assert server[key] == o_server[key], key
    # hardened on purpose (issue 15): the shared code read-only, no SYS_TIME (libfaketime
    # fakes the clock; SYS_TIME would set the node's), no privilege escalation, no API token
    assert server["volumeMounts"] == [{**m, "readOnly": True} for m in o_server["volumeMounts"]]
    assert o_server["securityContext"] == {"capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}}
    assert server["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_ADMIN"]},
    }
    assert spec["automountServiceAccountToken"] is False
    env, o_env = env_of(server), env_of(o_server)
    assert env["NODE_NAME"] == "fieldRef:spec.nodeName"  # for seed.sh's registration
    assert env["POD_IP"] == "fieldRef:status.podIP"
    for name in (
        "LD_PRELOAD",
        "FAKETIME_TIMESTAMP_FILE",
        "FAKETIME_DONT_RESET",
        "FAKETIME_DONT_FAKE_MONOTONIC",
    ):
        assert env[name] == o_env[name], name
    assert env["username"] == "liudianbo"  # elided ("...") in the note
    assert "curlServer" in env  # now carries the registration URL
    assert pod["metadata"]["labels"]["name"] == ORIGINAL["metadata"]["labels"]["name"]
    assert pod["metadata"]["name"] == "island-liudianbo-dev-269"


def test_what_islandbot_adds(templates) -> None:  # type: ignore[no-untyped-def]
    pod = templates.render(island(clock_offset_s=86400), {})
    meta = pod["metadata"]
    assert meta["labels"] == {
        "name": "altraserver",
        "app.kubernetes.io/managed-by": "islandbot",
        "islandbot.io/island-id": "269",
        "islandbot.io/branch": "dev",
        "islandbot.io/owner": "U0LIUDIANBO",
    }
    assert meta["annotations"] == {
        "islandbot.io/owner-name": "liudianbo",
        "islandbot.io/clock-offset-seconds": "86400",
        "islandbot.io/chat-thread": "C0TEAM/1700000000.000100",
    }
    env = env_of(pod["spec"]["containers"][0])
    assert env["FAKETIME_CACHE_DURATION"] == "1"
    assert (env["ISLAND_ID"], env["SERVER_ID"], env["ISLAND_INITIAL_CLOCK"]) == (
        "269",
        "1269",
        "2021-09-18 23:30:07",
    )
    assert (env["PORT_APP_COMMON_PORT"], env["PORT_REMOTE_MSG_PORT"], env["PORT_SERVER_PORT"]) == (
        "30807",
        "30808",
        "30809",
    )
    assert env["ISLANDBOT_REGISTER_TOKEN"] == "tok-269"
    assert env["ISLANDBOT_REGISTER_URL"].endswith("/islands/269/register")
    assert env["SERVER_BRANCH"] == "dev"


def test_block_size_and_branches(templates) -> None:  # type: ignore[no-untyped-def]
    assert templates.block_size == 3
    assert templates.branches == ["dev", "weekly"]
    weekly = templates.render(island(branch="weekly"), {})
    assert weekly["spec"]["nodeSelector"] == {"branch": "weekly"}
    assert weekly["metadata"]["name"] == "island-liudianbo-weekly-269"
    with pytest.raises(UnknownBranch) as unknown:
        templates.render(island(branch="nightly"), {})
    assert "Known branches: dev, weekly" in refusals.text(unknown.value)


def test_overrides_only_what_the_profile_allows(templates) -> None:  # type: ignore[no-untyped-def]
    overrides = templates.overrides("dev", ["env.LOG_LEVEL=debug", "memory=3Gi"])
    pod = templates.render(island(), overrides)
    server = pod["spec"]["containers"][0]
    assert env_of(server)["LOG_LEVEL"] == "debug"
    assert server["resources"] == {"limits": {"memory": "3Gi"}, "requests": {"memory": "1500Mi"}}
    small = templates.render(island(), templates.overrides("dev", ["memory=1Gi"]))
    assert small["spec"]["containers"][0]["resources"] == {
        "limits": {"memory": "1Gi"},
        "requests": {"memory": "1Gi"},
    }
    for bad, message in [
        (["env.LD_PRELOAD=/evil.so"], "allowed: env.GM_COMMANDS, env.JAVA_OPTS, env.LOG_LEVEL"),
        (["image=evil:latest"], "cannot be set on dev islands"),
        (["memory=64Gi"], "between 1Gi and 4Gi"),
        (["memory=lots"], "not a memory size"),
        (["env.LOG_LEVEL"], "not KEY=VALUE"),
        (["env.LOG_LEVEL=a\nb"], "one line"),
    ]:
        with pytest.raises(BadOverride) as refused:
            templates.overrides("dev", bad)
        assert message in refusals.text(refused.value)
    with pytest.raises(BadOverride) as refused:
        templates.overrides("weekly", ["env.GM_COMMANDS=1"])
    assert "allowed: env.JAVA_OPTS, env.LOG_LEVEL, memory" in refusals.text(refused.value)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    owner=st.text(max_size=120),
    owner_id=st.text(max_size=40),
    value=st.text(alphabet=st.characters(min_codepoint=32), max_size=200),
)
def test_any_user_input_renders_a_valid_pod_and_stays_data(
    templates,
    owner: str,  # type: ignore[no-untyped-def]
    owner_id: str,
    value: str,
) -> None:
    pod = templates.render(
        island(owner_name=owner, owner_id=owner_id or "U1"),
        templates.overrides("dev", [f"env.JAVA_OPTS={value}"]),
    )
    validate_pod(pod, "1.37")  # names and label values are always acceptable
    assert pod["metadata"]["annotations"]["islandbot.io/owner-name"] == owner
    server = pod["spec"]["containers"][0]
    assert env_of(server)["JAVA_OPTS"] == value
    assert set(pod) == {"apiVersion", "kind", "metadata", "spec"}
    assert [c["name"] for c in pod["spec"]["containers"]] == ["altraserver", "side-container"]


def test_yaml_looking_input_is_not_interpreted(templates) -> None:  # type: ignore[no-untyped-def]
    sneaky = 'x"\nspec:\n  hostNetwork: true\n  nodeName: master'
    pod = templates.render(island(owner_name=sneaky), {})
    assert "hostNetwork" not in pod["spec"] and "nodeName" not in pod["spec"]
    assert pod["metadata"]["annotations"]["islandbot.io/owner-name"] == sneaky


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(SHIPPED, target)
    return target


def test_adding_a_branch_is_adding_a_file(template_dir: Path) -> None:
    (template_dir / "branches" / "nightly.yaml").write_text(
        "pod:\n  spec:\n    nodeSelector: {branch: nightly}\n    containers:\n"
        "      - name: altraserver\n        image: registry.example/islands:nightly\n"
    )
    templates = load_templates(template_dir)
    assert templates.branches == ["dev", "nightly", "weekly"]
    pod = templates.render(island(branch="nightly"), {})
    assert pod["spec"]["containers"][0]["image"] == "registry.example/islands:nightly"
    with pytest.raises(BadOverride) as refused:
        templates.overrides("nightly", ["memory=2Gi"])
    assert "allowed: none" in refusals.text(refused.value)


def test_a_branch_profile_may_give_its_servers_sys_time_back(template_dir: Path) -> None:
    """For a server that truly sets the real clock: the profile's list replaces the default."""
    profile = template_dir / "branches" / "weekly.yaml"
    profile.write_text(
        profile.read_text().replace(
            "      - name: altraserver\n",
            "      - name: altraserver\n"
            "        securityContext:\n          capabilities:\n"
            "            add: [NET_ADMIN, SYS_TIME]\n",
            1,
        )
    )
    templates = load_templates(template_dir)
    weekly = templates.render(island(branch="weekly"), {})["spec"]["containers"][0]
    dev = templates.render(island(branch="dev"), {})["spec"]["containers"][0]
    assert weekly["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "SYS_TIME"]
    assert weekly["securityContext"]["allowPrivilegeEscalation"] is False
    assert dev["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("island-pod.yaml", "kind: Pod\nspec: [unclosed", "island-pod.yaml: not valid YAML"),
        ("island-pod.yaml", "kind: Service\n", "must be a single Pod manifest"),
        ("branches/dev.yaml", "pod: {}\nextras: 1\n", "dev.yaml: top-level keys must be"),
        (
            "branches/dev.yaml",
            "pod:\n  spec:\n    dnsPolicy: 5\n",
            "dev.yaml (rendered over island-pod.yaml): spec.dnsPolicy: 5 is not of type 'string'",
        ),
        (
            "branches/dev.yaml",
            "pod:\n  spec:\n    containers:\n      - name: altraserver\n"
            "        imagePullPolicy: Sometimes\n        bogusField: 1\n",
            "spec.containers[0]",
        ),
        ("branches/weekly.yaml", "overrides: {memory: {min: 4Gi, max: 1Gi}}\n", "min is above max"),
        ("branches/weekly.yaml", "overrides: {env: [LOG LEVEL]}\n", "overrides.env"),
    ],
)
def test_broken_templates_name_the_file_and_the_field(
    template_dir: Path, file: str, content: str, message: str
) -> None:
    (template_dir / file).write_text(content)
    with pytest.raises(TemplateError) as err:
        load_templates(template_dir)
    assert message in str(err.value)
    assert str(template_dir) in str(err.value)


def test_a_profile_may_not_change_the_ports(template_dir: Path) -> None:
    base = yaml.safe_load((template_dir / "island-pod.yaml").read_text())
    base["spec"]["containers"][0]["ports"].append({"name": "debug-port"})
    (template_dir / "island-pod.yaml").write_text(yaml.safe_dump(base))
    assert load_templates(template_dir).block_size == 4


def test_unknown_kubernetes_version(template_dir: Path) -> None:
    with pytest.raises(TemplateError, match=r"no schema for Kubernetes 1\.2;"):
        load_templates(template_dir, kubernetes_version="1.2")


def test_render_command(tmp_path: Path) -> None:
    islandbot = str(Path(sys.executable).parent / "islandbot")
    result = subprocess.run(
        [
            islandbot,
            "render",
            "dev",
            "--id",
            "269",
            "--first-port",
            "30807",
            "--owner",
            "liudianbo",
            "--clock",
            "2021-09-18 23:30:07",
            "--set",
            "memory=3Gi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    pod = yaml.safe_load(result.stdout)
    assert pod["metadata"]["name"] == "island-liudianbo-dev-269"
    assert pod["spec"]["containers"][0]["command"][-1] == "2021-09-18 23:30:07"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["memory"] == "3Gi"
    refused = subprocess.run(
        [islandbot, "render", "nightly"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert refused.returncode == 1
    assert "Known branches: dev, weekly" in refused.stderr
