"""Island servers as real processes under Debian's real libfaketime: the timestamp-file format
the bot writes is proven against the real library."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace

import pytest
from kubernetes import client

from kubesim import KubeSim, SimConfig
from kubesim.runtime import host_libfaketime
from kubesim.tests.conftest import FAST, island_pod
from kubesim.tests.test_logs_exec import CLOCK_FILE, exec_
from kubesim.tests.util import container, tcp_line, wait_for, wait_ready

if host_libfaketime() is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's libfaketime")
    pytest.skip(
        "libfaketime is not installed (apt-get install libfaketime)", allow_module_level=True
    )

T2021 = 1632007807.0  # 2021-09-18 23:30:07 UTC


@pytest.fixture
def sim_config() -> SimConfig:
    return replace(FAST, server_mode="process", boot_delay=0.0)


def server_clock(pod: client.V1Pod) -> float:
    return float(tcp_line(pod.status.host_ip, 30809, "TIME").split()[1])


def test_real_libfaketime_starts_at_the_seed_clock(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("proc"))
    pod = wait_ready(v1, "proc")
    first = server_clock(pod)
    assert T2021 <= first < T2021 + 30
    assert "INFO" not in tcp_line(pod.status.host_ip, 30809, "INFO")  # a JSON line
    logs = v1.read_namespaced_pod_log("proc", "default", container="server")
    assert "server: started, clock 2021-09-18" in logs


def test_relative_offset_written_through_exec_moves_the_real_clock(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("shift"))
    pod = wait_ready(v1, "shift")
    script = f"printf '+86400\\n' > {CLOCK_FILE}.tmp && mv {CLOCK_FILE}.tmp {CLOCK_FILE}"
    assert exec_(v1, "shift", ["sh", "-c", script])[2] == 0
    moved = wait_for(lambda: abs(server_clock(pod) - (time.time() + 86400)) < 5, timeout=5)
    assert moved


def test_an_absolute_date_on_a_running_server_adds_its_uptime(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    """Why the bot must write +N, not @date, to a running server (FAKETIME_DONT_RESET=1)."""
    v1.create_namespaced_pod("default", island_pod("uptime"))
    pod = wait_ready(v1, "uptime")
    time.sleep(1.5)
    script = f"printf '@2030-01-01 00:00:00\\n' > {CLOCK_FILE}"
    assert exec_(v1, "uptime", ["sh", "-c", script])[2] == 0
    target = 1893456000.0  # 2030-01-01 00:00:00 UTC
    shown = wait_for(lambda: (c := server_clock(pod)) > target and c, timeout=5)
    assert shown - target >= 1.5  # the process uptime is added on top of the date


def test_garbage_in_the_clock_file_kills_the_real_server(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("garbage"))
    pod = wait_ready(v1, "garbage")
    script = f"printf 'next tuesday\\n' > {CLOCK_FILE}"
    assert exec_(v1, "garbage", ["sh", "-c", script])[2] == 0

    def died() -> client.V1ContainerStateTerminated | None:
        # the library re-reads the file on the next clock read, at most once a second
        with contextlib.suppress(OSError, ValueError, IndexError):
            server_clock(pod)
        return container(v1.read_namespaced_pod("garbage", "default"), "server").state.terminated

    state = wait_for(died, timeout=10, interval=0.2)
    assert state.exit_code == 1
    logs = v1.read_namespaced_pod_log("garbage", "default", container="server")
    assert "failed to parse FAKETIME timestamp" in logs
