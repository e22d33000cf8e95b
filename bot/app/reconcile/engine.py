"""The reconcile tick: read the cluster and the islands once, decide per island
(``bot.domain.lifecycle_rules``), carry out the decisions, deliver the notices.
Level-triggered: nothing depends on having seen an event.

Per tick: no Kubernetes request with the watch-backed pod cache (one LIST of scheduling events
while a pod is unbound), one query for the live islands, one concurrent round of TCP probes,
then the decisions carried out together: one transaction for the tick's changes, two and one
LIST for a burst's pod creates. Every failure of a dependency is logged and counted, and the
next tick tries again. The parts: ``probes`` (what answers), ``pod_facts`` (what a pod says),
``apply`` (a decision carried out), ``batches`` (a tick's decisions carried out together),
``sweep`` (what is left over), ``deliver`` (notices to the chat).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from bot.app.notices import Notifier
from bot.app.reconcile.apply import Applier
from bot.app.reconcile.batches import Batches
from bot.app.reconcile.claimed import claimed_unlabelled, relabel_claimed
from bot.app.reconcile.deliver import Deliverer, DeliveryPolicy
from bot.app.reconcile.pod_facts import FactsCache
from bot.app.reconcile.probes import Prober, Probes
from bot.app.reconcile.sweep import sweep
from bot.domain.errors import log_failure
from bot.domain.lifecycle_rules import Decision, Limits, decide
from bot.domain.podspec import REGISTER_TOKEN_ENV
from bot.domain.records import IslandRecord
from bot.domain.registration import token_hash
from bot.domain.states import LIVE_STATES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.kubernetes.views import ClusterSnapshot, PodView
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.outbox import Outbox
from bot.infra.storage.reconcile_rows import ReconcileRows
from bot.infra.tcp_probe import probe_ports

log = logging.getLogger(__name__)

EARLY_TICK_MIN_S = 0.25  # while pods are being created, tick at most this often between ticks


@dataclass(frozen=True)
class LifecycleSettings:
    limits: Limits = field(default_factory=Limits)
    ready_probe_interval: timedelta = timedelta(seconds=5)  # cadence for islands already ready
    reconcile_interval: timedelta = timedelta(seconds=1)  # how often the service ticks
    probe_timeout_s: float = 0.5
    orphan_grace: timedelta = timedelta(minutes=2)  # our pods with no live island, then deleted
    api_url: str = "http://127.0.0.1:8080"
    exclusions_interval: timedelta = timedelta(minutes=5)  # NodePorts re-read this often
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    outbox_retention: timedelta = timedelta(days=7)  # sent (or given up) notices kept this long
    delivery_retention: timedelta = timedelta(days=2)  # chat delivery keys kept this long
    create_concurrency: int = 8  # islands without a pod handled at once in a tick (creates)
    tz: tzinfo = UTC  # the team's time zone, for island clocks in notices


@dataclass
class TickReport:
    islands: int = 0
    changed: int = 0
    probes: int = 0
    confirmed: int = 0  # pods the snapshot missed but a GET found (a lagging cache)
    notices_sent: int = 0
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    probe_s: float = 0.0


# A ready island that decided nothing: (record, pod view, probe result, valid until)
Quiet = tuple[IslandRecord, PodView | None, bool | None, datetime]
# An island with no pod in the snapshot and a decision to act on that: (record, probe, decision)
Unsure = tuple[IslandRecord, bool | None, Decision]


class LifecycleEngine:
    def __init__(
        self,
        *,
        db: Database,
        kube: Kube,
        templates: TemplateSet,
        allocator: Allocator,
        notifier: Notifier,
        settings: LifecycleSettings | None = None,
        clock: Clock = utcnow,
        prober: Prober | None = None,
        lease: LeaderLease | None = None,
        worker: str | None = None,
    ) -> None:
        """``lease``: the leader's; the tick's decisions are written, pods deleted and notices
        delivered only while it holds it. ``worker``: this process's heartbeat name; the
        notices it claims go back to the outbox when it dies."""
        self.kube = kube
        self.allocator = allocator
        self.settings = s = settings or LifecycleSettings()
        self.clock = clock
        self.rows = ReconcileRows(db, clock=clock, fence=None if lease is None else lease.fence)
        self.outbox = Outbox(db, worker=worker)
        self.probes = Probes(
            prober or (lambda targets: probe_ports(targets, timeout=s.probe_timeout_s)),
            port_names=templates.ports,
            ready_interval=s.ready_probe_interval,
            tick_interval=s.reconcile_interval,
        )
        self.applier = applier = Applier(
            rows=self.rows,
            kube=kube,
            templates=templates,
            allocator=allocator,
            api_url=s.api_url,
        )
        # The tick's decisions carried out together; the service hands a burst's creates to a
        # worker of their own (``batches.inline_creates``), so the next ticks go on meanwhile
        self.batches = Batches(applier, concurrency=s.create_concurrency)
        self.deliverer = Deliverer(
            outbox=self.outbox,
            notifier=notifier,
            port_names=templates.ports,
            clock=clock,
            policy=s.delivery,
            fence=None if lease is None else lease.fence,
            islands=IslandStore(db, clock=clock),
            requests=ClockRequests(db, clock=clock),
            tz=s.tz,
        )
        # True: ready islands are probed inside the tick; the service turns this off and runs
        # probe_ready() as its own job, so that probing thousands of ports never slows a tick
        self.inline_ready_probes = True
        # True: notices are delivered at the end of each tick; the service delivers them in
        # a job of their own instead, so a slow or rate-limited chat never delays a tick
        self.inline_delivery = True
        # True: NodePort exclusions are refreshed by the tick every ``exclusions_interval``; the
        # service runs that as its own job (a LIST of services and a sweep of the port blocks)
        self.inline_exclusions = True
        self._exclusions_at = float("-inf")
        self._tick_lock = threading.Lock()
        self._last_tick = float("-inf")
        self._rows: dict[int, tuple[int, IslandRecord]] = {}  # id -> (version, record)
        self._quiet: dict[int, Quiet] = {}
        self._facts = FactsCache()

    @property
    def notifier(self) -> Notifier:
        return self.deliverer.notifier

    # ---- the tick -----------------------------------------------------------------------------

    def worth_an_early_tick(self) -> bool:
        """Cheap check between ticks (no Kubernetes request): does an island on its way to
        ready answer on its server port already, or is a pod just created waiting to be seen
        bound (its server may be up before the next tick)?"""
        waiting = self.rows.waiting()
        if not waiting:
            return False
        if any(host is None for host, _ in waiting):
            return time.monotonic() - self._last_tick >= EARLY_TICK_MIN_S
        return self.probes.answering(waiting)

    def tick(self) -> TickReport:
        """One reconcile pass. Ticks never overlap: a second caller waits for the first."""
        with self._tick_lock:
            return self._tick()

    def _tick(self) -> TickReport:
        began = time.monotonic()
        self._last_tick = began
        report = TickReport()
        try:
            self._reconcile(report)
        except Exception as exc:  # a tick must never kill the loop
            report.errors.append(f"{type(exc).__name__}: {exc}")
            log_failure(log, "reconcile tick failed", exc)
        if self.inline_delivery:
            try:
                report.notices_sent = self.deliver()
            except Exception as exc:
                report.errors.append(f"deliver: {type(exc).__name__}: {exc}")
                log_failure(log, "delivering notices failed", exc)
        report.duration_s = time.monotonic() - began
        return report

    def refresh_exclusions(self) -> None:
        """Keep ports used by NodePort Services out of the allocator's hands."""
        conflicts = self.allocator.set_excluded_ports(self.kube.node_ports())
        for c in conflicts:
            log.warning(
                "island %d holds port block %d, now also used by %s",
                c.island_id,
                c.first_port,
                c.reason,
            )

    def _reconcile(self, report: TickReport) -> None:
        mono = time.monotonic()
        if (
            self.inline_exclusions
            and mono - self._exclusions_at >= self.settings.exclusions_interval.total_seconds()
        ):
            self.refresh_exclusions()
            self._exclusions_at = mono
        snapshot = self.kube.snapshot()
        now = self.clock()
        self._rows = self.rows.live(self._rows)
        islands = [r for _v, r in self._rows.values() if r.state in LIVE_STATES]
        report.islands = len(islands)
        probes, report.probes, report.probe_s = self.probes.for_tick(
            islands, snapshot, ready_inline=self.inline_ready_probes
        )
        changes: list[tuple[IslandRecord, Decision]] = []
        unsure: list[Unsure] = []  # no pod in the snapshot, and a decision to act on that
        in_flight = self.batches.in_flight()
        relabel: list[IslandRecord] = []  # warm islands handed over, their pods not yet told
        for island in islands:
            if island.id in in_flight:  # its create is under way: a later tick decides
                continue
            view = snapshot.pods.get(island.id)
            if view is not None and claimed_unlabelled(island, view):
                relabel.append(island)
            target = self.probes.target(island, view)
            probe_ok = probes.get(target) if target else None
            if self._steady(island, view, probe_ok, now):
                continue
            if view is not None:
                self._keep_token(island, view)
            decision = self._decide(island, view, snapshot, probe_ok, now)
            if view is None and (decision.create_pod or decision.release_ports):
                unsure.append((island, probe_ok, decision))
            else:
                self._note(island, view, probe_ok, decision, changes)
        for island, view, probe_ok, decision in self._confirm(unsure, snapshot, now):
            report.confirmed += view is not None
            self._note(island, view, probe_ok, decision, changes)
        report.changed += self.batches.carry_out(changes, now, report.errors.append)
        sweep(
            live={i.id for i in islands},
            snapshot=snapshot,
            now=now,
            rows=self.rows,
            applier=self.applier,
            kube=self.kube,
            orphan_grace=self.settings.orphan_grace,
            report_error=report.errors.append,
        )
        for island in relabel:
            try:
                relabel_claimed(self.kube, island)
            except KubeError as exc:  # the next tick tries again
                report.errors.append(f"relabel island {island.id}: {exc}")
                log.warning("island %d: its pod not relabelled for its owner: %s", island.id, exc)
        if len(self._quiet) > len(islands):
            live_ids = {island.id for island in islands}
            self._quiet = {k: v for k, v in self._quiet.items() if k in live_ids}
        self._facts.forget_gone(snapshot)

    def _confirm(
        self, unsure: list[Unsure], snapshot: ClusterSnapshot, now: datetime
    ) -> list[tuple[IslandRecord, PodView | None, bool | None, Decision]]:
        """The snapshot may come from a cache that lags behind (a burst of creates): never
        create a pod or free ports on its word alone. The API server is asked, one GET for
        one island, one LIST for many, and an island whose pod it has is decided again."""
        if not unsure:
            return []
        if len(unsure) == 1:
            island = unsure[0][0]
            view = self.kube.get_pod(island.pod_name)
            found = {} if view is None else {island.id: view}
        else:
            found = self.kube.island_pods(island.id for island, _, _ in unsure)
        confirmed = []
        for island, probe_ok, first in unsure:
            view = found.get(island.id)
            decision = first
            if view is not None:
                self._keep_token(island, view)
                decision = self._decide(island, view, snapshot, probe_ok, now)
            confirmed.append((island, view, probe_ok, decision))
        return confirmed

    def _note(
        self,
        island: IslandRecord,
        view: PodView | None,
        probe_ok: bool | None,
        decision: Decision,
        changes: list[tuple[IslandRecord, Decision]],
    ) -> None:
        if decision.changes_anything:
            self._quiet.pop(island.id, None)
            changes.append((island, decision))
        else:
            self._remember_quiet(island, view, probe_ok)

    def _keep_token(self, island: IslandRecord, view: PodView) -> None:
        """The registration token the island's pod carries is the one its seed will send: if
        the row says otherwise (the bot died between recording a create and learning it found
        an earlier attempt's pod), the row follows the pod."""
        carried = view.server_env.get(REGISTER_TOKEN_ENV)
        if carried and token_hash(carried) != island.registration_token_hash:
            self.rows.set_token_hash(island.id, token_hash(carried))

    def _decide(
        self,
        island: IslandRecord,
        view: PodView | None,
        snapshot: ClusterSnapshot,
        probe_ok: bool | None,
        now: datetime,
    ) -> Decision:
        facts = None if view is None else self._facts.of(view, snapshot)
        return decide(island.facts, facts, probe_ok, now, self.settings.limits)

    def _steady(
        self, island: IslandRecord, view: PodView | None, probe_ok: bool | None, now: datetime
    ) -> bool:
        """A ready island whose row, pod object and probe result are those of a previous tick
        that decided nothing, before its next deadline (expiry warning, expiry): deciding
        again would decide nothing. Thousands of idle islands cost a lookup each."""
        hit = self._quiet.get(island.id)
        return (
            hit is not None
            and hit[0] is island
            and hit[1] is view
            and hit[2] == probe_ok
            and now < hit[3]
        )

    def _remember_quiet(
        self, island: IslandRecord, view: PodView | None, probe_ok: bool | None
    ) -> None:
        if island.state != IslandState.READY or view is None:
            self._quiet.pop(island.id, None)
            return
        until = island.expires_at
        if island.expiry_warned_at is None:
            until = min(until, island.expires_at - self.settings.limits.expiry_warning)
        self._quiet[island.id] = (island, view, probe_ok, until)

    # ---- the service's other jobs ---------------------------------------------------------------

    def probe_ready(self) -> int:
        """One round of probes of ready islands (see ``Probes.probe_ready``)."""
        return self.probes.probe_ready()

    def deliver(self) -> int:
        """Send undelivered notices (see ``Deliverer.deliver``)."""
        return self.deliverer.deliver()

    def housekeeping(self) -> dict[str, int]:
        """Forget what is no longer needed: notices sent (or given up on) longer ago than
        ``outbox_retention``, and chat delivery keys older than ``delivery_retention``."""
        removed = self.outbox.forget(
            keep=self.settings.outbox_retention, keep_deliveries=self.settings.delivery_retention
        )
        if any(removed.values()):
            log.info("housekeeping removed %s", removed)
        return removed

    def close(self) -> None:
        self.batches.close()
        self.deliverer.close()
