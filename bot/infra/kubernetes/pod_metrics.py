"""The island pods' memory as the cluster's resource metrics API reads it (``metrics.k8s.io``,
served by metrics-server): one LIST of the namespace's island pods per reading, never one call
per island. Memory there is each container's working set, what the kernel's OOM killer weighs
against the container's limit. A cluster without metrics-server has no such API: ``probe``
says so, and the bot runs without memory readings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client

from bot.domain.podspec import SELECTOR
from bot.infra.kubernetes.client import Kube, memory_of
from bot.infra.kubernetes.errors import KubeForbidden, KubeNotFound

log = logging.getLogger(__name__)

GROUP, VERSION = "metrics.k8s.io", "v1beta1"


@dataclass(frozen=True)
class PodUsage:
    """One pod's reading: each container's working set (bytes), and when the metrics API
    sampled it (None when it did not say)."""

    pod: str
    containers: dict[str, int]
    sampled_at: datetime | None


class PodMetrics:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.api = client.CustomObjectsApi(kube.api_client)

    def probe(self) -> str | None:
        """None when the island pods' metrics can be read; else why not, in a sentence (no
        metrics API on the cluster, or the bot may not read it)."""
        try:
            self.usage()
        except KubeNotFound:
            return "the cluster serves no metrics API (metrics-server is not installed)"
        except KubeForbidden as exc:
            return f"the bot may not read pod metrics ({exc})"
        return None

    def usage(self) -> dict[str, PodUsage]:
        """Pod name -> its containers' working sets, for the island pods that have metrics
        (a pod just started has none yet)."""
        data = self.kube.json(
            "list pod metrics",
            self.api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.kube.settings.namespace,
            "pods",
            label_selector=SELECTOR,
            once=True,  # best effort: the next reading is the retry
        )
        usage: dict[str, PodUsage] = {}
        for item in data.get("items", []):
            name = (item.get("metadata") or {}).get("name")
            if not name:
                continue
            containers: dict[str, int] = {}
            for c in item.get("containers") or []:
                memory = (c.get("usage") or {}).get("memory")
                if not c.get("name") or memory is None:
                    continue
                try:
                    containers[str(c["name"])] = memory_of(memory)
                except ValueError:
                    log.warning("pod %s: unreadable memory usage %r", name, memory)
            usage[str(name)] = PodUsage(str(name), containers, _timestamp(item.get("timestamp")))
        return usage


def _timestamp(value: object) -> datetime | None:
    """An RFC 3339 time as the API server writes it (``2026-12-03T11:28:57Z``), aware."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
