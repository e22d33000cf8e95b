"""The cluster's view of a pod, translated into what the lifecycle rules look at."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain.lifecycle_rules import PodFacts, ServerFacts
from bot.infra.kubernetes.views import ClusterSnapshot, PodView


def pod_facts(view: PodView, scheduling: Mapping[str, str]) -> PodFacts:
    """``scheduling``: pod name -> the scheduler's latest FailedScheduling message."""
    scheduled = view.condition("PodScheduled")
    unschedulable = None
    if view.node is None and scheduled is not None and scheduled[0] == "False":
        unschedulable = scheduled[2] or scheduling.get(view.name) or "Unschedulable"
    server = next(iter(view.containers.values()), None)
    ready = view.condition("Ready")
    return PodFacts(
        deleting=view.deleting,
        phase=view.phase,
        node=view.node,
        host_ip=view.host_ip,
        unschedulable=unschedulable,
        ready=ready is not None and ready[0] == "True",
        server=None
        if server is None
        else ServerFacts(server.state, server.reason, server.exit_code, server.message),
        evicted=(view.message or "evicted") if view.reason == "Evicted" else None,
        memory_limit=view.memory_limit,
        memory_request=view.memory_request,
    )


class FactsCache:
    """``pod_facts`` remembered while the pod cache hands out the same view object (a watch
    event replaces the view, so a changed pod is translated again)."""

    def __init__(self) -> None:
        self._facts: dict[str, tuple[PodView, str | None, PodFacts]] = {}  # pod name -> ...

    def of(self, view: PodView, snapshot: ClusterSnapshot) -> PodFacts:
        reason = snapshot.scheduling.get(view.name)
        hit = self._facts.get(view.name)
        if hit is not None and hit[0] is view and hit[1] == reason:
            return hit[2]
        facts = pod_facts(view, snapshot.scheduling)
        self._facts[view.name] = (view, reason, facts)
        return facts

    def forget_gone(self, snapshot: ClusterSnapshot) -> None:
        if len(self._facts) > len(snapshot.pods):
            names = {view.name for view in snapshot.pods.values()}
            self._facts = {k: v for k, v in self._facts.items() if k in names}
