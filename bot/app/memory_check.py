"""Reading the islands' memory, and warning an owner before the kernel OOMKills their island
(``bot.domain.memory_watch``): one LIST of the namespace's pod metrics per reading (the
leader's job every ``metrics_interval``), each island's container nearest its limit kept and
judged, and the warnings queued in the same transaction (``MemoryStore.record``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain.memory_watch import MemoryPolicy, MemoryReading
from bot.domain.quantity import memory_bytes
from bot.domain.time_source import Clock, utcnow
from bot.infra import metrics
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.pod_metrics import PodMetrics, PodUsage
from bot.infra.kubernetes.views import PodView
from bot.infra.storage.memory import MemoryStore
from bot.infra.storage.outbox import Fence


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
        reading = MemoryReading(island_id, used, limit or None, at)
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
        clock: Clock = utcnow,
        fence: Fence | None = None,
    ) -> None:
        self.metrics_api = metrics_api
        self.kube = kube
        self.store = store
        self.policy = policy
        self.clock = clock
        self.fence = fence

    def run(self) -> list[int]:
        """One reading of every island with metrics; returns the islands whose owners are
        warned now."""
        usage: Mapping[str, PodUsage] = self.metrics_api.usage()
        pods = self.kube.snapshot().pods
        now = self.clock()
        readings = [
            reading
            for island_id, pod in pods.items()
            if pod.name in usage and not pod.deleting
            for reading in [reading_of(island_id, pod, usage[pod.name], now)]
            if reading is not None
        ]
        warned = self.store.record(readings, policy=self.policy, fence=self.fence)
        for reading, _container in readings:
            if reading.ratio is not None:
                metrics.MEMORY_RATIO.observe(reading.ratio)
        if warned:
            metrics.MEMORY_WARNINGS.inc(len(warned))
        return warned
