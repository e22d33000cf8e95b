"""The memory watch, set up from the settings: the leader reads the islands' memory and warns
owners before an OOM kill, when the cluster has a metrics API the bot may read."""

from __future__ import annotations

import logging

from bot.app.memory_check import MemoryCheck
from bot.domain.memory_watch import MemoryPolicy
from bot.domain.quantity import memory_bytes
from bot.domain.time_source import Clock
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError
from bot.infra.kubernetes.pod_metrics import PodMetrics
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.storage.database import Database
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.memory import MemoryStore
from bot.run.loop import LifecycleService
from bot.run.settings import Settings

log = logging.getLogger(__name__)


def watch_memory(
    service: LifecycleService,
    kube: Kube,
    templates: TemplateSet,
    db: Database,
    settings: Settings,
    *,
    lease: LeaderLease,
    clock: Clock,
) -> None:
    """The leader reads the islands' memory every ``metrics_interval`` and warns owners
    before an OOM kill; off, said once, on a cluster without a metrics API the bot may read."""
    metrics_api = PodMetrics(kube)
    try:
        off = metrics_api.probe()
    except KubeError as exc:  # the cluster not answering now: each reading tries again
        log.warning("memory readings: the metrics API could not be asked now (%s)", exc)
        off = None
    if off is not None:
        log.info("memory readings and warnings are off: %s", off)
        return

    def allowed(branch: str) -> int | None:
        profile = templates.profiles.get(branch)
        if profile is None or "memory" not in profile.allowed_keys:
            return None
        return memory_bytes(str(profile.memory_max))

    check = MemoryCheck(
        metrics_api=metrics_api,
        kube=kube,
        store=MemoryStore(db),
        policy=MemoryPolicy(warn_at=settings.memory_warning),
        server_container=templates.server_container,
        allowed=allowed,
        clock=clock,
        fence=lease.fence,
    )

    def read_memory() -> None:
        check.run()

    service.add_job(read_memory, "memory", seconds=settings.metrics_interval.total_seconds())
