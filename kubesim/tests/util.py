from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

from kubernetes import client

T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def condition(pod: client.V1Pod, kind: str) -> client.V1PodCondition | None:
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def is_ready(pod: client.V1Pod) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.status == "True"


def wait_ready(v1: client.CoreV1Api, name: str, ns: str = "default") -> client.V1Pod:
    return wait_for(lambda: (p := v1.read_namespaced_pod(name, ns)) and is_ready(p) and p)


def container(pod: client.V1Pod, name: str) -> client.V1ContainerStatus:
    return next(c for c in pod.status.container_statuses if c.name == name)


def tcp_line(host: str, port: int, line: str, timeout: float = 2.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode().strip()


def can_connect(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
