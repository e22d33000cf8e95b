"""What the bot reads of the cluster, as small frozen views parsed from the API's raw JSON
(building the client's models for thousands of pods per tick would cost more than the
request)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.domain.podspec import LABEL_ISLAND, LABEL_OWNER

Obj = dict[str, Any]


@dataclass(frozen=True)
class ContainerView:
    name: str
    state: str  # waiting, running, terminated
    reason: str | None
    exit_code: int | None
    ready: bool
    message: str | None = None


@dataclass(frozen=True)
class PodView:
    """What the lifecycle needs to know of one island pod."""

    name: str
    uid: str
    island_id: int | None
    owner_id: str | None
    phase: str
    node: str | None
    host_ip: str | None
    reason: str | None  # status.reason, e.g. Evicted
    message: str | None
    deleting: bool
    conditions: Mapping[str, tuple[str, str | None, str | None]]  # type -> (status, reason, msg)
    containers: Mapping[str, ContainerView]
    annotations: Mapping[str, str] = field(default_factory=dict)
    server_env: Mapping[str, str] = field(default_factory=dict)  # literal env of container 0
    created_at: str | None = None  # metadata.creationTimestamp
    memory_limit: str | None = None  # of container 0
    memory_request: str | None = None
    memory_limits: Mapping[str, str] = field(default_factory=dict)  # container -> its limit

    def condition(self, kind: str) -> tuple[str, str | None, str | None] | None:
        return self.conditions.get(kind)


@dataclass(frozen=True)
class NodeView:
    name: str
    labels: Mapping[str, str]
    address: str | None
    allocatable_memory: int
    requested_memory: int
    ready: bool
    unschedulable: bool


class PodSource(Protocol):
    """A cache of the island pods (``bot.reflector.PodReflector``)."""

    def pods(self) -> list[PodView] | None:
        """The pods as last seen, or None while the cache is not usable."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class ClusterSnapshot:
    pods: Mapping[int, PodView]  # island id -> its pod
    strays: list[PodView]  # our label, but no readable island id
    scheduling: Mapping[str, str]  # pod name -> latest FailedScheduling message


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int


def parse_pod(obj: Obj) -> PodView:
    meta, status = obj.get("metadata", {}), obj.get("status", {})
    labels = meta.get("labels") or {}
    containers = {}
    for cs in status.get("containerStatuses") or []:
        state_name, state = next(iter((cs.get("state") or {"waiting": {}}).items()))
        containers[cs["name"]] = ContainerView(
            cs["name"],
            state_name,
            (state or {}).get("reason"),
            (state or {}).get("exitCode"),
            bool(cs.get("ready")),
            (state or {}).get("message"),
        )
    island = labels.get(LABEL_ISLAND)
    first = (obj.get("spec", {}).get("containers") or [{}])[0]
    resources = first.get("resources") or {}
    return PodView(
        name=meta["name"],
        uid=meta.get("uid", ""),
        island_id=int(island) if island and island.isdigit() else None,
        owner_id=labels.get(LABEL_OWNER),
        phase=status.get("phase", "Pending"),
        node=obj.get("spec", {}).get("nodeName"),
        host_ip=status.get("hostIP"),
        reason=status.get("reason"),
        message=status.get("message"),
        deleting=bool(meta.get("deletionTimestamp")),
        conditions={
            c["type"]: (c.get("status", "Unknown"), c.get("reason"), c.get("message"))
            for c in status.get("conditions") or []
        },
        containers=containers,
        annotations=meta.get("annotations") or {},
        server_env={
            e["name"]: e["value"]
            for e in first.get("env") or []
            if "name" in e and isinstance(e.get("value"), str)
        },
        created_at=meta.get("creationTimestamp"),
        memory_limit=(resources.get("limits") or {}).get("memory"),
        memory_request=(resources.get("requests") or {}).get("memory"),
        memory_limits={
            c["name"]: str(c["resources"]["limits"]["memory"])
            for c in obj.get("spec", {}).get("containers") or []
            if "name" in c and ((c.get("resources") or {}).get("limits") or {}).get("memory")
        },
    )
