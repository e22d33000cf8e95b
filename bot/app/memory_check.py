"""Reading the islands' memory, and warning an owner before the kernel OOMKills their island
(``bot.domain.memory_watch``): one LIST of the namespace's pod metrics per reading (the
leader's job every ``metrics_interval``), each island's container nearest its limit kept and
judged, and the warnings queued in the same transaction (``MemoryStore.record``).

The readings are best effort: when the metrics API stops answering (metrics-server down or
removed, its RBAC rule gone) that is logged once with its cause, and once more when it answers
again; the readings wait meanwhile and nothing else changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.domain.memory_watch import MemoryPolicy, MemoryReading, more_memory
from bot.domain.quantity import memory_bytes
from bot.domain.time_source import Clock, utcnow
from bot.infra import metrics
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError
from bot.infra.kubernetes.pod_metrics import PodMetrics, PodUsage
from bot.infra.kubernetes.views import PodView
from bot.infra.storage.memory import MemoryStore
from bot.infra.storage.outbox import Fence

log = logging.getLogger(__name__)

# a branch -> the largest memory its islands may be started with (None: no override)
AllowedMemory = Callable[[str], int | None]


def reading_of(
    island_id: int, pod: PodView, usage: PodUsage, at: datetime
) -> tuple[MemoryReading, str] | None:
    """The island's reading, and which container: of its containers with a memory limit, the
    nearest its limit (the one the kernel kills first); without any limit, the largest. None
    while a container with a limit has no metrics (just started, or killed: the last reading
    of it is what is kept, and what an OOMKilled failure names)."""
    if any(name not in usage.containers for name in pod.memory_limits):
        return None
    best: tuple[float, MemoryReading, str] | None = None
    for name, used in usage.containers.items():
        try:
            limit = memory_bytes(pod.memory_limits[name]) if name in pod.memory_limits else None
        except ValueError:
            limit = None
        reading = MemoryReading(island_id, used, limit or None, usage.sampled_at or at)
        rank = reading.ratio if reading.ratio is not None else -1 / (1 + used)
        if best is None or rank > best[0]:
            best = (rank, reading, name)
    return None if best is None else (best[1], best[2])


class MemoryCheck:
    def __init__(
        self,
        *,
        metrics_api: PodMetrics,
        kube: Kube,
        store: MemoryStore,
        policy: MemoryPolicy,
        server_container: str | None = None,
        allowed: AllowedMemory | None = None,
        clock: Clock = utcnow,
        fence: Fence | None = None,
    ) -> None:
        """``server_container``/``allowed``: the container ``set memory=`` sizes and what each
        branch allows it, for the warning's advice (None: no such advice)."""
        self.metrics_api = metrics_api
        self.kube = kube
        self.store = store
        self.policy = policy
        self.server_container = server_container
        self.allowed = allowed
        self.clock = clock
        self.fence = fence
        self.failing: str | None = None  # why the metrics API does not answer now, if so

    def run(self) -> list[int]:
        """One reading of every island with metrics; returns the islands whose owners are
        warned now."""
        try:
            usage = self.metrics_api.usage()
        except KubeError as exc:
            if self.failing is None:
                log.warning("memory readings wait: the metrics API does not answer (%s)", exc)
            self.failing = str(exc)
            return []
        if self.failing is not None:
            log.info("memory readings go on: the metrics API answers again")
            self.failing = None
        pods = self.kube.snapshot().pods
        now = self.clock()
        readings = [
            reading
            for island_id, pod in pods.items()
            if pod.name in usage and not pod.deleting
            for reading in [reading_of(island_id, pod, usage[pod.name], now)]
            if reading is not None
        ]
        recorded = self.store.record(
            readings, policy=self.policy, advice=self._advice, fence=self.fence
        )
        kept = set(recorded.kept)
        for reading, _container in readings:
            if reading.island_id in kept and reading.ratio is not None:
                metrics.MEMORY_RATIO.observe(reading.ratio)
        if recorded.warned:
            metrics.MEMORY_WARNINGS.inc(len(recorded.warned))
        return recorded.warned

    def _advice(self, branch: str, container: str, limit: int | None) -> int | None:
        """The size to suggest starting the island with (``set memory=``), when the container
        near its limit is the one it sizes and the branch allows more."""
        if self.allowed is None or container != self.server_container:
            return None
        return more_memory(limit, self.allowed(branch))
