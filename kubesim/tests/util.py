from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trustme
from kubernetes import client
from kubernetes.stream import stream

from kubesim.auth import ServerTLS

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


def tls_files(directory: Path) -> ServerTLS:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it (PEM files in directory)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = ServerTLS(directory / "server.pem", directory / "server.key", directory / "ca.crt")
    cert.cert_chain_pems[0].write_to_path(str(files.cert_chain))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert_chain), append=True)
    cert.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files


def exec_stream(
    v1: client.CoreV1Api,
    name: str,
    command: list[str],
    container: str = "server",
    *,
    namespace: str = "default",
    headers: dict[str, str] | None = None,
) -> Any:
    """Run ``command`` through the official client's websocket exec, to its end; the client's
    response (``read_stdout()``, ``read_stderr()``, ``returncode``, ``subprotocol``)."""
    resp = stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        namespace,
        command=command,
        container=container,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
        **({"_headers": headers} if headers else {}),
    )
    resp.run_forever(timeout=20)
    return resp


def serve(*args: str) -> subprocess.Popen[str]:
    """``python -m kubesim serve ARGS`` in its own process; its first line of stdout says where
    it serves."""
    return subprocess.Popen(
        [sys.executable, "-m", "kubesim", "serve", *args], stdout=subprocess.PIPE, text=True
    )


def serve_refused(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m kubesim serve ARGS`` expected to refuse its arguments and exit."""
    return subprocess.run(
        [sys.executable, "-m", "kubesim", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
