"""The simulated control plane and kubelets: scheduling, container lifecycle, readiness,
deletion with grace, and the faults a test can inject. Runs on the simulator's event loop."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesim.conditions import condition, set_condition, significant
from kubesim.config import SimConfig
from kubesim.events import EventRecorder
from kubesim.kubelet import make_containers, mark_evicted, pod_status, server_port
from kubesim.nodes import node_object, node_views, set_node_ready
from kubesim.runtime import ContainerRuntime, IslandServer, ProcessServer
from kubesim.scheduler import NodeUsage, choose_node, host_ports, pod_requests
from kubesim.seed import register, write_initial_clock
from kubesim.store import Obj, Store, now_rfc3339

log = logging.getLogger(__name__)


@dataclass
class PodRuntime:
    containers: dict[str, ContainerRuntime]
    node: str
    address: str
    tasks: list[asyncio.Task[None]]
    fingerprint: tuple[Any, ...] = ()


class Cluster:
    def __init__(self, config: SimConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.runtimes: dict[tuple[str, str], PodRuntime] = {}
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._root = Path(tempfile.mkdtemp(prefix="kubesim-"))
        self._pod_ip = 0
        self._demands: dict[str, tuple[int, int, set[tuple[int, str]]]] = {}
        self.events = EventRecorder(store)
        self.code_version = config.code_version  # the shared code volume's, as servers boot it

    # ---- start-up ---------------------------------------------------------------------------

    async def start(self) -> None:
        for ns in self.config.default_namespaces:
            self.store.create(
                "namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns},
                    "status": {"phase": "Active"},
                },
            )
        for spec in self.config.nodes:
            self.store.create("nodes", node_object(spec))
        self._tasks.append(asyncio.create_task(self._scheduler_loop()))
        self._tasks.append(asyncio.create_task(self._probe_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for runtime in list(self.runtimes.values()):
            await self._stop_runtime(runtime)
        self.runtimes.clear()
        shutil.rmtree(self._root, ignore_errors=True)

    # ---- nodes ------------------------------------------------------------------------------

    def node_address(self, name: str) -> str | None:
        node = self.store.get("nodes", "", name)
        if node is None:
            return None
        for addr in node["status"].get("addresses", []):
            if addr["type"] == "InternalIP":
                return str(addr["address"])
        return None

    # ---- pods: creation and scheduling ------------------------------------------------------

    def pod_created(self, pod: Obj) -> None:
        self.kick()

    def kick(self) -> None:
        """Ask for a scheduling pass (something that affects placement changed)."""
        self._kick.set()

    async def _scheduler_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            if self.config.schedule_delay:
                await asyncio.sleep(self.config.schedule_delay)
            try:
                self._schedule_pending()
            except Exception:  # the loop must survive anything
                log.exception("scheduler pass failed")

    def _schedule_pending(self) -> None:
        nodes = node_views(self.store.items("nodes"))
        usage: dict[str, NodeUsage] = {}
        pending = []
        for pod in self.store.items("pods"):
            node = pod["spec"].get("nodeName")
            if node:
                # terminal pods release their resources; terminating ones still hold them
                if pod["status"].get("phase") not in ("Succeeded", "Failed"):
                    usage.setdefault(node, NodeUsage()).add(*self._demand(pod))
            elif not pod["metadata"].get("deletionTimestamp"):
                pending.append(pod)
        pending.sort(key=lambda p: int(p["metadata"]["resourceVersion"]))
        for pod in pending:
            node_name, message = choose_node(pod, nodes, usage)
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            if node_name is None:
                self._mark_unschedulable(pod, message)
                continue
            if self._bind(ns, name, node_name) is not None:
                usage.setdefault(node_name, NodeUsage()).add(*self._demand(pod))

    def _demand(self, pod: Obj) -> tuple[int, int, set[tuple[int, str]]]:
        """A pod's requests and host ports, computed once per pod (its spec never changes)."""
        uid = pod["metadata"]["uid"]
        demand = self._demands.get(uid)
        if demand is None:
            demand = (*pod_requests(pod), host_ports(pod))
            self._demands[uid] = demand
        return demand

    def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        for cond in pod["status"].get("conditions", []):
            if cond["type"] == "PodScheduled" and cond.get("message") == message:
                return  # nothing new to say
        meta = pod["metadata"]
        self.store.mutate(
            "pods",
            meta["namespace"],
            meta["name"],
            lambda p: set_condition(p, condition("PodScheduled", False, "Unschedulable", message)),
        )
        self.events.record(pod, "Warning", "FailedScheduling", message, "default-scheduler")

    def _bind(self, ns: str, name: str, node: str) -> Obj | None:
        address = self.node_address(node) or "127.0.0.1"
        self._pod_ip += 1
        pod_ip = f"10.244.{(self._pod_ip >> 8) & 255}.{self._pod_ip & 255}"

        def bind(p: Obj) -> None:
            p["spec"]["nodeName"] = node
            st = p["status"]
            st["hostIP"] = address
            st["hostIPs"] = [{"ip": address}]
            st["podIP"] = pod_ip
            st["podIPs"] = [{"ip": pod_ip}]
            st["startTime"] = now_rfc3339()
            set_condition(p, condition("PodScheduled", True))
            set_condition(p, condition("Initialized", True))
            set_condition(
                p,
                condition(
                    "ContainersReady", False, "ContainersNotReady", "containers with unready status"
                ),
            )
            set_condition(
                p,
                condition("Ready", False, "ContainersNotReady", "containers with unready status"),
            )
            st["containerStatuses"] = [
                ContainerRuntime(c["name"], c.get("image", ""), {}, Path(), []).status(False)
                for c in p["spec"]["containers"]
            ]

        pod = self.store.mutate("pods", ns, name, bind)
        if pod is None:
            return None
        self.events.record(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {node}",
            "default-scheduler",
        )
        runtime = PodRuntime(make_containers(pod, self._root), node, address, [])
        self.runtimes[(ns, name)] = runtime
        runtime.tasks.append(asyncio.create_task(self._start_pod(ns, name, runtime)))
        return pod

    # ---- pods: running ------------------------------------------------------------------------

    async def _start_pod(self, ns: str, name: str, runtime: PodRuntime) -> None:
        await asyncio.sleep(self.config.create_delay)
        pod = self.store.get("pods", ns, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        for c in runtime.containers.values():
            if c.image in self.config.failing_images:
                c.reason = "ErrImagePull"
                c.message = f'failed to pull and unpack image "{c.image}": not found'
                self.events.record(
                    pod,
                    "Warning",
                    "Failed",
                    f'Failed to pull image "{c.image}": {c.message}',
                    "kubelet",
                )
                runtime.tasks.append(asyncio.create_task(self._backoff(ns, name, c)))
                continue
            c.run()
            self.events.record(pod, "Normal", "Started", f"Started container {c.name}", "kubelet")
            if c.is_server:
                write_initial_clock(c, name)
                runtime.tasks.append(asyncio.create_task(self._boot_server(ns, name, runtime, c)))
        self.sync_status(ns, name)

    async def _backoff(self, ns: str, name: str, c: ContainerRuntime) -> None:
        await asyncio.sleep(max(self.config.create_delay, 0.5))
        if c.state == "waiting":
            c.reason = "ImagePullBackOff"
            c.message = f'Back-off pulling image "{c.image}"'
            self.sync_status(ns, name)

    async def _boot_server(
        self, ns: str, name: str, runtime: PodRuntime, c: ContainerRuntime
    ) -> None:
        await asyncio.sleep(self.config.boot_delay)
        if c.state != "running":
            return
        pod = self.store.get("pods", ns, name)
        code = self.code_version  # what this server booted, whatever the volume holds later
        if self.config.register_islands and not await register(c, pod, runtime.address, code):
            if c.state == "running":
                await self._terminate(
                    ns, name, c, exit_code=1, reason="Error", message="registration failed"
                )
            return
        island = (pod or {}).get("metadata", {}).get("labels", {}).get("islandbot.io/island-id")
        kind = ProcessServer if self.config.server_mode == "process" else IslandServer
        server = kind(c, runtime.address, server_port(pod, c), island)
        c.server = server
        c.log(
            f"INFO  [main] GameServer - booting island {island or '?'} on {runtime.address} "
            f"(pod {name}, heap from the container's memory limit)"
        )
        c.log("INFO  [main] CodeLoader - loading game code from /home/server (shared volume)")
        try:
            await server.start()
        except OSError as exc:
            c.log(f"server: cannot listen: {exc}")
            await self._terminate(
                ns, name, c, exit_code=1, reason="Error", message=f"bind failed: {exc}"
            )
            return
        c.log("server: started")

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.probe_period)
            for (ns, name), runtime in list(self.runtimes.items()):
                try:
                    await self._probe(ns, name, runtime)
                except Exception:
                    log.exception("probe of %s/%s failed", ns, name)

    async def _probe(self, ns: str, name: str, runtime: PodRuntime) -> None:
        for c in runtime.containers.values():
            if c.server is not None and c.state == "running":
                failed = c.server.failure()
                if failed is not None:
                    await self._terminate(
                        ns, name, c, exit_code=failed[0], reason="Error", message=failed[1]
                    )
                    continue
                await c.server.probe()
        self.sync_status(ns, name)

    def sync_status(self, ns: str, name: str) -> None:
        """Recompute phase, conditions and container statuses from the runtimes; store only
        when something changed (so watchers see real changes only)."""
        pod = self.store.get("pods", ns, name)
        runtime = self.runtimes.get((ns, name))
        if pod is None or runtime is None:
            return
        if pod["status"].get("reason") == "Evicted":
            return
        node_ready = self._node_is_ready(runtime.node)
        fingerprint = (
            node_ready,
            *(
                (
                    c.state,
                    c.reason,
                    c.exit_code,
                    c.server is not None and c.server.listening,
                    c.readiness_failing,
                )
                for c in runtime.containers.values()
            ),
        )
        if fingerprint == runtime.fingerprint:
            return  # nothing the status is made of has changed
        runtime.fingerprint = fingerprint
        new = pod_status(pod, runtime.containers.values(), node_ready=node_ready)
        if significant(new) != significant(pod):
            self.store.replace("pods", new)

    def _node_is_ready(self, node: str) -> bool:
        obj = self.store.get("nodes", "", node)
        return obj is not None and any(
            c["type"] == "Ready" and c["status"] == "True" for c in obj["status"]["conditions"]
        )

    # ---- pods: stopping ---------------------------------------------------------------------

    async def _terminate(
        self,
        ns: str,
        name: str,
        c: ContainerRuntime,
        *,
        exit_code: int,
        reason: str,
        message: str = "",
    ) -> None:
        if c.state == "terminated":
            return
        if c.server is not None:
            await c.server.stop()
        if c.state == "running":
            c.log(
                f"server: exited with code {exit_code} ({reason})"
                if c.is_server
                else f"exited with code {exit_code}"
            )
        c.state, c.exit_code, c.reason, c.message = "terminated", exit_code, reason, message
        c.finished_at = now_rfc3339()
        c.started_at = c.started_at or c.finished_at
        self.sync_status(ns, name)

    async def _stop_runtime(self, runtime: PodRuntime) -> None:
        for task in runtime.tasks:
            task.cancel()
        for c in runtime.containers.values():
            if c.server is not None:
                await c.server.stop()

    def delete_pod(self, ns: str, name: str, grace: float | None) -> Obj | None:
        """DELETE: unbound pods go at once; bound pods linger Terminating for the grace period,
        keeping their host ports, then vanish. A repeated delete returns the pod as it is."""
        pod = self.store.get("pods", ns, name)
        if pod is None:
            return None
        if pod["metadata"].get("deletionTimestamp"):
            return pod
        if not pod["spec"].get("nodeName") or grace == 0:
            return self._remove(ns, name)
        grace_s = (
            self.config.grace_period if grace is None else min(grace, self.config.grace_period)
        )

        def mark(p: Obj) -> None:
            p["metadata"]["deletionTimestamp"] = now_rfc3339()
            p["metadata"]["deletionGracePeriodSeconds"] = int(grace_s)

        marked = self.store.mutate("pods", ns, name, mark)
        runtime = self.runtimes.get((ns, name))
        if runtime is not None:
            for c in runtime.containers.values():
                self.events.record(
                    pod, "Normal", "Killing", f"Stopping container {c.name}", "kubelet"
                )
        asyncio.get_running_loop().create_task(self._finish_delete(ns, name, grace_s))
        return marked

    async def _finish_delete(self, ns: str, name: str, grace_s: float) -> None:
        runtime = self.runtimes.get((ns, name))
        if runtime is not None:
            for c in runtime.containers.values():
                if c.state == "running":
                    c.log("received SIGTERM")
        await asyncio.sleep(grace_s)
        self._remove(ns, name)

    def _remove(self, ns: str, name: str) -> Obj | None:
        runtime = self.runtimes.pop((ns, name), None)
        if runtime is not None:
            asyncio.get_running_loop().create_task(self._stop_runtime(runtime))
            shutil.rmtree(self._root / ns / name, ignore_errors=True)
        removed = self.store.remove("pods", ns, name)
        if removed is not None:
            self._demands.pop(removed["metadata"]["uid"], None)
        self._kick.set()  # freed resources may let a pending pod in
        return removed

    # ---- faults -----------------------------------------------------------------------------

    async def kill_container(
        self, ns: str, name: str, container: str, *, exit_code: int, reason: str
    ) -> None:
        runtime = self.runtimes.get((ns, name))
        if runtime is None or container not in runtime.containers:
            raise KeyError(f"no running container {container!r} in pod {ns}/{name}")
        c = runtime.containers[container]
        if reason == "OOMKilled":
            c.log("java.lang.OutOfMemoryError: Java heap space")
        await self._terminate(ns, name, c, exit_code=exit_code, reason=reason)

    def _server_container(self, ns: str, name: str, container: str) -> ContainerRuntime:
        runtime = self.runtimes.get((ns, name))
        if runtime is None or container not in runtime.containers:
            raise KeyError(f"no running container {container!r} in pod {ns}/{name}")
        c = runtime.containers[container]
        if c.server is None or c.state != "running":
            raise KeyError(f"container {container!r} in pod {ns}/{name} runs no island server")
        return c

    async def set_answering(self, ns: str, name: str, container: str, answering: bool) -> None:
        """A wedged server: its listeners closed (connects refused) while its container keeps
        running, or opened again; readiness follows. In-process servers only (stopping a
        server process is its exit)."""
        if self.config.server_mode == "process":
            raise ValueError("set_answering needs in-process island servers")
        server = self._server_container(ns, name, container).server
        assert server is not None
        if answering and not server.listening:
            await server.start()
        elif not answering and server.listening:
            await server.stop()
        self.sync_status(ns, name)

    def fail_readiness(self, ns: str, name: str, container: str, failing: bool) -> None:
        """The container's readiness probe fails (or passes again) whatever its listeners do,
        as a probe that times out under load: ``Ready`` false while its ports still answer."""
        self._server_container(ns, name, container).readiness_failing = failing
        self.sync_status(ns, name)

    async def evict(self, ns: str, name: str, message: str | None = None) -> None:
        runtime = self.runtimes.get((ns, name))
        pod = self.store.get("pods", ns, name)
        if runtime is None or pod is None:
            raise KeyError(f"no running pod {ns}/{name}")
        text = message or (
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi."
        )
        for c in runtime.containers.values():
            await self._terminate(ns, name, c, exit_code=137, reason="Error")

        self.sync_status(ns, name)
        self.store.mutate("pods", ns, name, lambda p: mark_evicted(p, text))
        self.events.record(pod, "Warning", "Evicted", text, "kubelet")
        self._kick.set()

    async def set_node_ready(self, node: str, ready: bool) -> None:
        if self.store.mutate("nodes", "", node, lambda n: set_node_ready(n, ready)) is None:
            raise KeyError(f"no node {node!r}")
        for (ns, name), runtime in list(self.runtimes.items()):
            if runtime.node != node:
                continue
            for c in runtime.containers.values():
                if c.server is not None:
                    # the node is unreachable: so are its servers
                    await (c.server.stop() if not ready else c.server.start())
            self.sync_status(ns, name)
            if not ready:
                asyncio.get_running_loop().create_task(self._evict_lost(ns, name, node))
        self._kick.set()

    async def _evict_lost(self, ns: str, name: str, node: str) -> None:
        await asyncio.sleep(self.config.node_lost_eviction)
        if not self._node_is_ready(node) and (ns, name) in self.runtimes:
            pod = self.store.get("pods", ns, name)
            if pod is not None:
                self.events.record(
                    pod,
                    "Normal",
                    "TaintManagerEviction",
                    "Marking for deletion Pod " + f"{ns}/{name}",
                    "taint-eviction-controller",
                )
            self.delete_pod(ns, name, None)

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        def change(n: Obj) -> None:
            n["spec"]["unschedulable"] = unschedulable

        if self.store.mutate("nodes", "", node, change) is None:
            raise KeyError(f"no node {node!r}")
        self._kick.set()
