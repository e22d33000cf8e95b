"""Simulator settings and node specs (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubesim.quantity import cpu_millis, memory_bytes


@dataclass(frozen=True)
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    cpu: str = "8"
    memory: str = "16Gi"
    pods: int = 110
    address: str = "127.0.0.2"  # InternalIP; a loopback address so listeners are reachable

    @property
    def cpu_millis(self) -> int:
        return cpu_millis(self.cpu)

    @property
    def memory_bytes(self) -> int:
        return memory_bytes(self.memory)


DEFAULT_NODES: tuple[NodeSpec, ...] = (
    NodeSpec("dev-1", {"branch": "dev"}, address="127.0.0.2"),
    NodeSpec("dev-2", {"branch": "dev"}, address="127.0.0.3"),
    NodeSpec("weekly-1", {"branch": "weekly"}, address="127.0.0.4"),
)


@dataclass(frozen=True)
class SimConfig:
    """Timings are in seconds. Every delay may be 0."""

    nodes: tuple[NodeSpec, ...] = DEFAULT_NODES
    schedule_delay: float = 0.0  # pod created -> bound to a node
    create_delay: float = 0.2  # bound -> containers running (ContainerCreating meanwhile)
    boot_delay: float = 1.0  # server container running -> its listeners open
    probe_period: float = 0.2  # how often readiness probes run
    grace_period: float = 1.0  # deleted -> gone, for pods that were bound to a node
    node_lost_eviction: float = 5.0  # node NotReady -> its pods are deleted
    failing_images: frozenset[str] = frozenset()  # images that fail to pull
    history: int = 20_000  # watch window, in events; older resourceVersions get 410
    default_namespaces: tuple[str, ...] = ("default", "kube-system", "islands")
    server_mode: str = "inprocess"  # or "process": a real process under real libfaketime
    # True: like seed.sh, island servers register (ISLANDBOT_REGISTER_URL/_TOKEN from their
    # env) before they listen, and exit 1 if that keeps failing
    register_islands: bool = False
    # what the shared code volume holds, as seed.sh reports it (``code`` in its registration);
    # ``KubeSim.set_code_version`` changes it, as CI updating the volume does
    code_version: str = "1"
    # the resource metrics API (metrics.k8s.io, as metrics-server serves it); False: a cluster
    # without metrics-server (the group is not discovered, its paths are 404)
    metrics: bool = True
    metrics_delay: float = 1.0  # container running -> its metrics appear (two scrapes)


def parse_nodes(text: str) -> tuple[NodeSpec, ...]:
    """``NAME[:k=v,...][;NAME...]``; keys ``cpu``, ``memory``, ``pods``, ``ip`` set resources
    and the address, every other key is a label. Example:
    ``dev-1:branch=dev,memory=8Gi,ip=127.0.0.2;weekly-1:branch=weekly,ip=127.0.0.3``."""
    nodes = []
    for index, raw in enumerate(part for part in text.split(";") if part.strip()):
        name, _, rest = raw.strip().partition(":")
        labels: dict[str, str] = {}
        values = {"cpu": "8", "memory": "16Gi", "pods": "110", "ip": f"127.0.0.{index + 2}"}
        for item in (i for i in rest.split(",") if i.strip()):
            key, sep, value = item.strip().partition("=")
            if not sep:
                raise ValueError(f"node {name!r}: expected key=value, got {item!r}")
            if key in values:
                values[key] = value
            else:
                labels[key] = value
        spec = NodeSpec(
            name.strip(), labels, values["cpu"], values["memory"], int(values["pods"]), values["ip"]
        )
        spec.cpu_millis  # noqa: B018 - validates the quantities now
        spec.memory_bytes  # noqa: B018
        nodes.append(spec)
    if not nodes:
        raise ValueError("no nodes given")
    return tuple(nodes)
