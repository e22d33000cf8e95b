"""The reconcile tick's world: SQLite/MariaDB + kubesim (real HTTP, real client) + real TCP
probes, an in-memory notifier, and ticks driven by the test until an expected state."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from bot.app.reconcile.deliver import DeliveryPolicy
from bot.app.reconcile.engine import LifecycleEngine, LifecycleSettings
from bot.app.reconcile.probes import Prober
from bot.domain.lifecycle_rules import Limits
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.records import StartRequest
from bot.domain.time_source import utcnow
from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.kubernetes.templates import load_templates
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.lease import LeaderLease
from kubesim import KubeSim, NodeSpec, SimConfig
from tests.memory_notifier import MemoryNotifier

NODES = (
    NodeSpec("dev-1", {"branch": "dev"}, address="127.0.0.2"),
    NodeSpec("dev-2", {"branch": "dev"}, address="127.0.0.3"),
    NodeSpec("weekly-1", {"branch": "weekly"}, memory="1Gi", address="127.0.0.4"),
)
SIM = SimConfig(
    nodes=NODES,
    create_delay=0.05,
    boot_delay=0.2,
    probe_period=0.05,
    grace_period=0.3,
    node_lost_eviction=0.5,
    metrics_delay=0.3,  # a container's first metrics, as metrics-server's first scrape
)
LIMITS = Limits(
    unschedulable_timeout=timedelta(seconds=1.5),
    ready_timeout=timedelta(seconds=20),
    image_pull_timeout=timedelta(seconds=1),
    expiry_warning=timedelta(seconds=2),
    probe_failures=2,
    pod_create_grace=timedelta(seconds=2),
)


class ShiftedClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self):  # type: ignore[no-untyped-def]
        return utcnow() + self.offset


class World:
    def __init__(self, db: Database, sim: KubeSim) -> None:
        self.db, self.sim = db, sim
        self.clock = ShiftedClock()
        self.templates = load_templates()
        self.allocator = Allocator(
            db,
            layout=BlockLayout(PortRange(36000, 36089), 3),
            max_live_per_user=5,
            clock=self.clock,
        )
        self.allocator.sync_layout()
        self.kube = Kube.connect(
            KubeSettings(namespace="islands", request_timeout_s=2, attempts=2, backoff_s=0.01),
            kubeconfig=sim.kubeconfig_path,
        )
        self.notifier = MemoryNotifier()
        self.settings = LifecycleSettings(
            limits=LIMITS,
            ready_probe_interval=timedelta(0),
            probe_timeout_s=0.3,
            orphan_grace=timedelta(seconds=0.5),
            delivery=DeliveryPolicy(  # a failed notice is retried within a tick or two
                backoff_base=timedelta(seconds=0.05), backoff_cap=timedelta(seconds=0.2)
            ),
        )
        self.engine = self.new_engine()

    def new_engine(
        self, prober: Prober | None = None, lease: LeaderLease | None = None
    ) -> LifecycleEngine:
        return LifecycleEngine(
            db=self.db,
            kube=self.kube,
            templates=self.templates,
            allocator=self.allocator,
            notifier=self.notifier,
            settings=self.settings,
            clock=self.clock,
            prober=prober,
            lease=lease,
        )

    def start(
        self, user: str = "U0ALICE", branch: str = "dev", ttl: timedelta = timedelta(hours=8)
    ) -> int:
        return self.allocator.allocate(
            StartRequest(
                owner_id=user,
                owner_name=user.lower(),
                branch=branch,
                ttl=ttl,
                chat_channel="C0TEAM",
            )
        ).island_id

    def state(self, island_id: int) -> str:
        return IslandStore(self.db).get(island_id).state.value

    def until(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.engine.tick()
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(
            f"not reached within {timeout}s; notices: "
            f"{[(a.island_id, a.kind) for a in getattr(self.notifier, 'items', [])]}"
        )

    def pod_name(self, island_id: int) -> str:
        return IslandStore(self.db).get(island_id).pod_name


def ready_island(world: World, **kw: object) -> int:
    island_id = world.start(**kw)  # type: ignore[arg-type]
    world.until(lambda: world.state(island_id) == "ready")
    return island_id
