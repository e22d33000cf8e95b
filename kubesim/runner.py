"""Running the simulator: in a background thread (tests, the demo) or in the foreground."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from kubesim.app import build_app
from kubesim.auth import ServerTLS
from kubesim.cluster import Cluster
from kubesim.config import SimConfig
from kubesim.faults import FaultRule, Faults
from kubesim.metrics import memory_now
from kubesim.oom import start_climb
from kubesim.rbac import Identity, Rbac
from kubesim.store import Obj, Store
from kubesim.usage import Climb

T = TypeVar("T")
GC_THRESHOLD = (50_000, 50, 100)


def raise_open_file_limit() -> None:
    """Island servers hold three listeners each: allow as many open files as we may."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def kubeconfig(
    url: str, namespace: str = "default", *, ca_pem: bytes | None = None, token: str | None = None
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, Any] = {} if token is None else {"token": token}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": "kubesim", "cluster": cluster}],
        "users": [{"name": "kubesim", "user": user}],
        "contexts": [
            {
                "name": "kubesim",
                "context": {"cluster": "kubesim", "user": "kubesim", "namespace": namespace},
            }
        ],
        "current-context": "kubesim",
    }


class KubeSim:
    """A running simulator and its control handle. Thread-safe: every method hops onto the
    simulator's event loop and waits for the result."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        kubeconfig_path: Path | None = None,
        tls: ServerTLS | None = None,
        token: str | None = None,
        service_accounts: Mapping[str, str] | None = None,
        rbac: Rbac | None = None,
    ) -> None:
        """``tls``: serve HTTPS with these files; ``token``: require a bearer token, this one
        an admin's (may do anything); ``service_accounts``: more tokens, each a service
        account's (``namespace/name``), allowed what ``rbac`` grants it."""
        self.config = config or SimConfig()
        self.tls = tls
        self.token = token
        self.tokens: dict[str, Identity] = {}
        if token is not None:
            self.tokens[token] = Identity.admin()
        for sa_token, account in (service_accounts or {}).items():
            namespace, _, name = account.partition("/")
            if not namespace or not name:
                raise ValueError(f"a service account is namespace/name, not {account!r}")
            self.tokens[sa_token] = Identity.service_account(namespace, name)
        self.rbac = rbac or Rbac([])
        self.host = host
        self.port = port
        self.kubeconfig_path = kubeconfig_path
        # the kubeconfig written at start (with ``token``, if any): kubeconfig_path may be
        # pointed at another user's later (see write_kubeconfig)
        self.admin_kubeconfig_path = kubeconfig_path
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.store: Store
        self.cluster: Cluster
        self.faults = Faults()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    # ---- life -------------------------------------------------------------------------------

    async def _start(self) -> None:
        raise_open_file_limit()
        # Thousands of pods are millions of small, acyclic dicts: with the default thresholds
        # a full collection walks them all every few seconds (pauses of 0.8 s at 5,000 pods).
        if gc.get_threshold()[0] < GC_THRESHOLD[0]:
            gc.set_threshold(*GC_THRESHOLD)
        self.store = Store(self.config.history)
        self.cluster = Cluster(self.config, self.store)
        await self.cluster.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        app = build_app(
            self.store,
            self.cluster,
            self.faults,
            f"{self.host}:{self.port}",
            tokens=self.tokens,
            rbac=self.rbac,
        )
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        ssl_context = self.tls.context() if self.tls else None
        await web.SockSite(self._runner, sock, backlog=1024, ssl_context=ssl_context).start()
        if self.kubeconfig_path is not None:
            self.admin_kubeconfig_path = self.kubeconfig_path
            self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
            ca_pem = self.tls.ca.read_bytes() if self.tls else None
            self.kubeconfig_path.write_text(
                yaml.safe_dump(kubeconfig(self.url, ca_pem=ca_pem, token=self.token))
            )

    def write_kubeconfig(self, path: Path, *, token: str | None) -> Path:
        """A kubeconfig for this simulator that authenticates with ``token`` (a service
        account's, say: what a pod running as that account would use)."""
        ca_pem = self.tls.ca.read_bytes() if self.tls else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(kubeconfig(self.url, ca_pem=ca_pem, token=token)))
        return path

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.cluster.stop()

    def start(self) -> KubeSim:
        def main() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._start())
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=main, name="kubesim", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(Exception):
            self.call(self._stop(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=15)
        self._thread = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            return fn(*args, **kwargs)

        return self.call(run())

    # ---- control ----------------------------------------------------------------------------

    def kill_container(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        reason: str = "OOMKilled",
        exit_code: int | None = None,
    ) -> None:
        """Kill a container: ``OOMKilled`` (exit 137) or a crash (``Error`` with a code)."""
        code = exit_code if exit_code is not None else (137 if reason == "OOMKilled" else 1)
        self.call(
            self.cluster.kill_container(namespace, pod, container, exit_code=code, reason=reason)
        )

    def set_answering(self, namespace: str, pod: str, container: str, answering: bool) -> None:
        """A wedged server: its ports refuse connects (``answering=False``) while its container
        runs on; readiness follows. In-process servers only."""
        self.call(self.cluster.set_answering(namespace, pod, container, answering))

    def fail_readiness(self, namespace: str, pod: str, container: str, failing: bool) -> None:
        """The container's readiness probe fails (``Ready`` false) while its ports answer."""
        self._sync(self.cluster.fail_readiness, namespace, pod, container, failing)

    def set_code_version(self, version: str) -> None:
        """The shared code volume now holds ``version`` (CI pushed): servers that boot from
        now on report it when they register."""

        def change() -> None:
            self.cluster.code_version = version

        self._sync(change)

    def set_failing_images(self, images: frozenset[str]) -> None:
        """Images that fail to pull from now on (a registry that lost them, a bad tag)."""

        def change() -> None:
            self.cluster.config = replace(self.cluster.config, failing_images=images)

        self._sync(change)

    def memory_climb(
        self, namespace: str, pod: str, seconds: float, container: str | None = None
    ) -> Climb:
        """The container's working set (by default the pod's first container with a memory
        limit) climbs in a straight line from its value now to its memory limit, reached
        after ``seconds``; then it is OOM-killed as ``kill_container`` does (exit 137)."""
        _name, climb = self.call(start_climb(self.cluster, namespace, pod, container, seconds))
        return climb

    def working_set(self, namespace: str, pod: str, container: str) -> int | None:
        """The container's working set now, in bytes, as the metrics API reports it (before
        ``metrics_delay`` too); None when the container is not running."""

        def read() -> int | None:
            obj = self.store.get("pods", namespace, pod)
            runtime = self.cluster.runtimes.get((namespace, pod))
            c = runtime.containers.get(container) if runtime else None
            if obj is None or c is None or c.state != "running":
                return None
            spec = next(s for s in obj["spec"]["containers"] if s["name"] == container)
            return memory_now(namespace, pod, spec, c, time.monotonic())

        return self._sync(read)  # type: ignore[no-any-return]

    def evict(self, namespace: str, pod: str, message: str | None = None) -> None:
        self.call(self.cluster.evict(namespace, pod, message))

    def set_node_ready(self, node: str, ready: bool) -> None:
        self.call(self.cluster.set_node_ready(node, ready))

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        self._sync(self.cluster.cordon, node, unschedulable)

    def delete_pod(self, namespace: str, pod: str, grace: float | None = None) -> None:
        """Delete a pod behind the bot's back (as another user of the cluster would)."""
        self._sync(self.cluster.delete_pod, namespace, pod, grace)

    def fail_requests(
        self,
        path: str,
        *,
        action: str = "error",
        status: int = 500,
        count: int = 1,
        seconds: float = 1.0,
        method: str | None = None,
    ) -> None:
        """Make the next ``count`` requests whose path matches ``path`` fail."""
        rule = FaultRule(path, action, status, count, seconds, method)
        self._sync(self.faults.add, rule)

    def requests_seen(self) -> Counter[tuple[str, str]]:
        """How many API requests were served, per (method, path), since the start."""
        return self._sync(lambda: Counter(self.faults.seen))  # type: ignore[no-any-return]

    def audit(self) -> list[dict[str, Any]]:
        """The requests that changed something, oldest first (``GET /kubesim/v1/audit``)."""
        return self._sync(lambda: [dict(e) for e in self.faults.audit])  # type: ignore[no-any-return]

    def clear_faults(self) -> None:
        self._sync(self.faults.clear)

    def expire_watches(self) -> None:
        """Forget the watch history: any resourceVersion before now gets 410 Expired."""
        self._sync(self.store.compact)

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._sync(self.store.get, kind, namespace, name)  # type: ignore[no-any-return]

    def container_logs(self, namespace: str, pod: str, container: str) -> list[str]:
        def read() -> list[str]:
            runtime = self.cluster.runtimes.get((namespace, pod))
            return [line for _, line in runtime.containers[container].logs] if runtime else []

        return self._sync(read)  # type: ignore[no-any-return]

    def write_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        """Append a line to a container's log, as if its process had printed it."""

        def write() -> None:
            runtime = self.cluster.runtimes.get((namespace, pod))
            if runtime is None or container not in runtime.containers:
                raise KeyError(f"no container {container} in {namespace}/{pod}")
            runtime.containers[container].log(line)

        self._sync(write)

    def __enter__(self) -> KubeSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(
    config: SimConfig | None = None,
    *,
    kubeconfig_path: Path | None = None,
    tls: ServerTLS | None = None,
    token: str | None = None,
    service_accounts: Mapping[str, str] | None = None,
    rbac: Rbac | None = None,
) -> Iterator[KubeSim]:
    """``with running() as sim:`` a simulator on a free loopback port, stopped afterwards."""
    sim = KubeSim(
        config,
        kubeconfig_path=kubeconfig_path,
        tls=tls,
        token=token,
        service_accounts=service_accounts,
        rbac=rbac,
    )
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
