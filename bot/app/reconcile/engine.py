"""The reconcile tick: fetch everything once, decide per island (``bot.core.lifecycle``), carry
out the decisions, deliver the notices. Level-triggered: nothing depends on having seen an event.

Per tick: one or two Kubernetes requests (``Kube.snapshot``), one query for the live islands,
one concurrent round of TCP probes, then one transaction per island that changes. Every failure
of a dependency is logged and counted, and the next tick tries again.
"""

from __future__ import annotations

import functools
import heapq
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from bot.app.notices import Announcement, Notifier
from bot.domain.errors import Conflict, IslandbotError
from bot.domain.lifecycle_rules import (
    Decision,
    Failure,
    FailureKind,
    IslandFacts,
    Limits,
    Notice,
    PodFacts,
    ServerFacts,
    decide,
)
from bot.domain.podspec import IslandParams
from bot.domain.states import LIVE_STATES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra import metrics
from bot.infra.kubernetes.client import ClusterSnapshot, Kube, KubeError, KubeInvalid, PodView
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.storage import audit
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import Database
from bot.infra.storage.registry import token_hash
from bot.infra.storage.tables import Delivery, Island, OutboxMessage, PortBlock
from bot.infra.tcp_probe import probe_ports
from bot.words import messages

log = logging.getLogger(__name__)

SERVER_PORT_NAME = "server-port"
EARLY_TICK_MIN_S = 0.25  # while pods are being created, tick at most this often between ticks
_LIVE = [s.value for s in LIVE_STATES]
Prober = Callable[[list[tuple[str, int]]], Mapping[tuple[str, int], bool]]


@dataclass(frozen=True)
class LifecycleSettings:
    limits: Limits = field(default_factory=Limits)
    ready_probe_interval: timedelta = timedelta(seconds=5)  # cadence for islands already ready
    reconcile_interval: timedelta = timedelta(seconds=1)  # how often the service ticks
    probe_timeout_s: float = 0.5
    orphan_grace: timedelta = timedelta(minutes=2)  # our pods with no live island, then deleted
    api_url: str = "http://127.0.0.1:8080"
    exclusions_interval: timedelta = timedelta(minutes=5)  # NodePorts re-read this often
    outbox_batch: int = 200
    outbox_attempts: int = 10
    thread_wait: timedelta = timedelta(seconds=30)  # for a chat island's root message
    delivery_threads: int = 4  # channels delivered to at once
    outbox_retention: timedelta = timedelta(days=7)  # sent notices kept this long
    delivery_retention: timedelta = timedelta(days=2)  # chat delivery keys kept this long


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


@dataclass(frozen=True)
class IslandRow:
    id: int
    pod_name: str
    owner_id: str
    owner_name: str
    branch: str
    state: IslandState
    first_port: int
    created_at: datetime
    expires_at: datetime
    pod_requested_at: datetime | None
    expiry_warned_at: datetime | None
    unschedulable_message: str | None
    probe_failures: int
    clock_offset_s: int
    host_ip: str | None
    restart_requested_at: datetime | None
    registered_at: datetime | None

    @functools.cached_property
    def facts(self) -> IslandFacts:
        return IslandFacts(
            self.id,
            self.state,
            self.created_at,
            self.expires_at,
            self.pod_requested_at,
            self.expiry_warned_at is not None,
            self.unschedulable_message,
            self.probe_failures,
            self.restart_requested_at is not None,
            self.registered_at is not None,
        )


_ROW_COLUMNS = (
    Island.id,
    Island.pod_name,
    Island.owner_id,
    Island.owner_name,
    Island.branch,
    Island.state,
    Island.first_port,
    Island.created_at,
    Island.expires_at,
    Island.pod_requested_at,
    Island.expiry_warned_at,
    Island.unschedulable_message,
    Island.probe_failures,
    Island.clock_offset_s,
    Island.host_ip,
    Island.restart_requested_at,
    Island.registered_at,
)  # only what every tick needs; what a pod create needs more is read then


def _row(r: Any) -> IslandRow:
    values = dict(r._mapping)
    values["state"] = IslandState(values["state"])
    return IslandRow(**values)


def pod_facts(view: PodView, scheduling: Mapping[str, str]) -> PodFacts:
    """Translate the adapter's view of a pod into what the rules look at."""
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
    ) -> None:
        self.db = db
        self.kube = kube
        self.templates = templates
        self.allocator = allocator
        self.notifier = notifier
        self.settings = settings or LifecycleSettings()
        self.clock = clock
        self.prober = prober or (
            lambda targets: probe_ports(targets, timeout=self.settings.probe_timeout_s)
        )
        self._last_probe: dict[int, float] = {}  # island id -> monotonic time, ready islands
        self._exclusions_at = float("-inf")
        self._tick_lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._ready_targets: dict[int, tuple[str, int]] = {}  # ready islands at the last tick
        self._ready_results: dict[int, bool] = {}  # found by probe rounds, not yet used
        # True: ready islands are probed inside the tick; the service turns this off and runs
        # probe_ready() as its own job, so that probing thousands of ports never slows a tick
        self.inline_ready_probes = True
        # True: notices are delivered at the end of each tick; the service delivers them in
        # a job of their own instead, so a slow or rate-limited chat never delays a tick
        self.inline_delivery = True
        # True: NodePort exclusions are refreshed by the tick every ``exclusions_interval``; the
        # service runs that as its own job (a LIST of services and a sweep of the port blocks)
        self.inline_exclusions = True
        self._last_tick = float("-inf")
        self._delivery_lock = threading.Lock()
        self._delivery_pool: ThreadPoolExecutor | None = None
        self._live_sql: dict[str, str] = {}  # dialect -> the live-islands query, compiled
        self._rows: dict[int, tuple[int, IslandRow]] = {}  # id -> (version, row)
        # ready islands that decided nothing: id -> (row, pod, probe result, valid until)
        self._quiet: dict[int, tuple[IslandRow, PodView | None, bool | None, datetime]] = {}
        self._facts: dict[str, tuple[PodView, str | None, PodFacts]] = {}  # pod -> facts
        self._server_index = (
            self.templates.ports.index(SERVER_PORT_NAME)
            if SERVER_PORT_NAME in self.templates.ports
            else len(self.templates.ports) - 1
        )

    # ---- the tick -----------------------------------------------------------------------------

    def worth_an_early_tick(self) -> bool:
        """Cheap check between ticks (no Kubernetes request): does an island on its way to
        ready answer on its server port already, or is a pod just created waiting to be seen
        bound (its server may be up before the next tick)?"""
        waiting = [
            IslandState.CREATING.value,
            IslandState.SCHEDULED.value,
            IslandState.RUNNING.value,
        ]

        def read(conn: Connection) -> list[tuple[str | None, int]]:
            rows = conn.execute(
                select(Island.host_ip, Island.first_port).where(Island.state.in_(waiting))
            ).all()
            return [(r.host_ip, r.first_port + self._server_index) for r in rows]

        rows = self.db.run(read, what="waiting islands", read_only=True)
        if not rows:
            return False
        if any(host is None for host, _ in rows):
            return time.monotonic() - self._last_tick >= EARLY_TICK_MIN_S
        return any(self.prober([(str(h), p) for h, p in rows]).values())

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
        except (KubeError, IslandbotError) as exc:
            report.errors.append(f"{type(exc).__name__}: {exc}")
            log.warning("reconcile tick: %s", exc)
        except Exception as exc:  # a tick must never kill the loop
            report.errors.append(f"{type(exc).__name__}: {exc}")
            log.exception("reconcile tick failed")
        if self.inline_delivery:
            try:
                report.notices_sent = self.deliver()
            except Exception as exc:
                report.errors.append(f"deliver: {type(exc).__name__}: {exc}")
                log.exception("delivering notices failed")
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
        islands = self.db.run(self._live, what="live islands", read_only=True)
        report.islands = len(islands)
        probes = self._probe(islands, snapshot, report)
        for island in islands:
            view = snapshot.pods.get(island.id)
            target = self._target(island, view)
            probe_ok = probes.get(target) if target else None
            if self._steady(island, view, probe_ok, now):
                continue
            decision = self._decide(island, view, snapshot, probe_ok, now)
            if view is None and (decision.release_ports or decision.create_pod):
                # The snapshot may come from a cache that lags behind (a burst of creates): never
                # free ports or create a pod on its word alone. One GET confirms the absence.
                view = self.kube.get_pod(island.pod_name)
                if view is not None:
                    report.confirmed += 1
                    decision = self._decide(island, view, snapshot, probe_ok, now)
            if not decision.changes_anything:
                self._remember_quiet(island, view, probe_ok)
            else:
                self._quiet.pop(island.id, None)
                try:
                    self._apply(island, view, decision, now)
                    report.changed += 1
                except KubeInvalid as exc:  # the cluster refuses the pod: retrying won't help
                    refused = Decision(
                        state=IslandState.FAILED,
                        failure=Failure(FailureKind.POD_REFUSED, {"message": str(exc)}),
                        notices=(
                            (
                                Notice.FAILED,
                                {"kind": FailureKind.POD_REFUSED.value, "message": str(exc)},
                            ),
                        ),
                    )
                    self._apply(island, view, refused, now)
                    report.errors.append(f"island {island.id}: {exc}")
                except (KubeError, IslandbotError) as exc:
                    report.errors.append(f"island {island.id}: {exc}")
                    log.warning("island %d: %s", island.id, exc)
        self._sweep(islands, snapshot, now, report)
        if len(self._quiet) > len(islands):
            live_ids = {island.id for island in islands}
            self._quiet = {k: v for k, v in self._quiet.items() if k in live_ids}
        if len(self._facts) > len(snapshot.pods):
            names = {view.name for view in snapshot.pods.values()}
            self._facts = {k: v for k, v in self._facts.items() if k in names}

    def _decide(
        self,
        island: IslandRow,
        view: PodView | None,
        snapshot: ClusterSnapshot,
        probe_ok: bool | None,
        now: datetime,
    ) -> Decision:
        facts = None if view is None else self._pod_facts(view, snapshot)
        return decide(island.facts, facts, probe_ok, now, self.settings.limits)

    def _live(self, conn: Connection) -> list[IslandRow]:
        """Every live island. Only ``(id, version)`` is read for all of them; full rows only
        for islands new or changed since the last tick (every update bumps ``version``)."""
        sql = self._live_sql.get(conn.dialect.name)
        if sql is None:
            query = (
                select(Island.id, Island.version).where(Island.state.in_(_LIVE)).order_by(Island.id)
            )
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            self._live_sql[conn.dialect.name] = sql
        raw: Sequence[Any] = conn.exec_driver_sql(sql).cursor.fetchall()  # DB-API tuples
        cache = self._rows
        changed = [i for i, v in raw if (hit := cache.get(i)) is None or hit[0] != v]
        fresh: dict[int, IslandRow] = {}
        for chunk in range(0, len(changed), 500):
            ids = changed[chunk : chunk + 500]
            for typed in conn.execute(select(*_ROW_COLUMNS).where(Island.id.in_(ids))).all():
                fresh[typed.id] = _row(typed)
        rows: dict[int, tuple[int, IslandRow]] = {}
        for island_id, version in raw:
            row = fresh.get(island_id)
            if row is not None:
                # A row changed again between the two reads is stored with the older version
                # and read once more next tick: never a stale row kept.
                rows[island_id] = (version, row)
            elif island_id in cache:
                rows[island_id] = cache[island_id]
        self._rows = rows
        return [row for _version, row in rows.values() if row.state in LIVE_STATES]

    def _steady(
        self, island: IslandRow, view: PodView | None, probe_ok: bool | None, now: datetime
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
        self, island: IslandRow, view: PodView | None, probe_ok: bool | None
    ) -> None:
        if island.state != IslandState.READY or view is None:
            self._quiet.pop(island.id, None)
            return
        until = island.expires_at
        if island.expiry_warned_at is None:
            until = min(until, island.expires_at - self.settings.limits.expiry_warning)
        self._quiet[island.id] = (island, view, probe_ok, until)

    def _pod_facts(self, view: PodView, snapshot: ClusterSnapshot) -> PodFacts:
        """``pod_facts`` for the view, remembered while the cache hands out the same view
        object (a watch event replaces the view, so a changed pod is translated again)."""
        reason = snapshot.scheduling.get(view.name)
        hit = self._facts.get(view.name)
        if hit is not None and hit[0] is view and hit[1] == reason:
            return hit[2]
        facts = pod_facts(view, snapshot.scheduling)
        self._facts[view.name] = (view, reason, facts)
        return facts

    # ---- probing ------------------------------------------------------------------------------

    def _target(self, island: IslandRow, view: PodView | None) -> tuple[str, int] | None:
        if view is None or view.host_ip is None:
            return None
        return view.host_ip, island.first_port + self._server_index

    def _probe(
        self, islands: list[IslandRow], snapshot: ClusterSnapshot, report: TickReport
    ) -> Mapping[tuple[str, int], bool]:
        """Probe islands about to be ready; for ready islands use what the ready-probe round
        found since the last tick (run inline when no service runs the round separately)."""
        due: list[tuple[str, int]] = []
        ready: dict[int, tuple[str, int]] = {}
        for island in islands:
            target = self._target(island, snapshot.pods.get(island.id))
            if target is None:
                continue
            if island.state in (IslandState.SCHEDULED, IslandState.RUNNING):
                due.append(target)
            elif island.state == IslandState.READY:
                ready[island.id] = target
        with self._probe_lock:
            self._ready_targets = ready
        if self.inline_ready_probes:
            self.probe_ready()
        began = time.monotonic()
        results = dict(self.prober(due)) if due else {}
        with self._probe_lock:
            for island_id, ok in self._ready_results.items():
                if island_id in ready:
                    results[ready[island_id]] = ok
            self._ready_results = {}
        report.probes = len(due)
        report.probe_s = time.monotonic() - began
        return results

    def probe_ready(self) -> int:
        """One round of probes of ready islands: the most overdue first, no more than their
        share per round. Results wait for the next tick. Returns how many were probed."""
        mono = time.monotonic()
        interval = self.settings.ready_probe_interval.total_seconds()
        with self._probe_lock:
            targets = dict(self._ready_targets)
            overdue = []
            for island_id, target in targets.items():
                last = self._last_probe.setdefault(island_id, mono)  # first sight: now
                if mono - last >= interval:
                    overdue.append((last, island_id, target))
            rounds = max(interval / self.settings.reconcile_interval.total_seconds(), 1)
            share = max(50, math.ceil(len(targets) / rounds * 1.5))
            chosen = heapq.nsmallest(share, overdue)
            for _last, island_id, _target in chosen:
                self._last_probe[island_id] = mono
        if not chosen:
            return 0
        found = self.prober([target for _l, _i, target in chosen])
        with self._probe_lock:
            for _last, island_id, target in chosen:
                self._ready_results[island_id] = bool(found.get(target))
        metrics.PROBE_FAILURES.inc(sum(1 for _l, _i, target in chosen if not found.get(target)))
        return len(chosen)

    # ---- carrying out a decision --------------------------------------------------------------

    def _apply(
        self, island: IslandRow, view: PodView | None, decision: Decision, now: datetime
    ) -> None:
        updates: dict[str, Any] = dict(decision.updates)
        if decision.create_pod:
            updates.update(self._create_pod(island, now))
        if decision.delete_pod:
            self.kube.delete_pod(island.pod_name)
        state = decision.state
        failure_text = None
        if decision.failure is not None:
            failure_text = messages.failure_text(
                decision.failure, island_id=island.id, branch=island.branch
            )
            updates["failure_reason"] = failure_text
        if state is not None:
            updates["state"] = state.value
            if state == IslandState.STOPPED:
                updates["stopped_at"] = now

        def write(conn: Connection) -> bool:
            # Locked: a command (stop, restart) may be changing the row right now; reading it
            # unlocked would let this write overwrite what the command just committed.
            current = conn.execute(
                select(Island.state, Island.restart_requested_at, Island.expires_at)
                .where(Island.id == island.id)
                .with_for_update()
            ).first()
            if current is None or current.state != island.state.value:
                return False  # someone (a command, another replica) moved it meanwhile
            if (current.restart_requested_at is None) != (island.restart_requested_at is None):
                return False  # a restart was asked for (or done) meanwhile: decide again
            if current.expires_at != island.expires_at:
                return False  # extended meanwhile: the expiry decisions are to be made again
            if updates:
                conn.execute(update(Island).where(Island.id == island.id).values(updates))
            for kind, detail in decision.notices:
                conn.execute(
                    insert(OutboxMessage).values(
                        island_id=island.id,
                        kind=kind.value,
                        detail=_jsonable(detail),
                        created_at=now,
                    )
                )
            if state is not None:
                audit.record(
                    conn,
                    at=now,
                    actor=audit.SYSTEM_ACTOR,
                    action=f"state:{state.value}",
                    outcome=audit.Outcome.OK,
                    island_id=island.id,
                    detail={
                        "from": island.state.value,
                        **({"failure": failure_text} if failure_text else {}),
                    },
                )
            return True

        applied = self.db.run(write, what=f"apply island {island.id}")
        if applied and state == IslandState.READY:
            metrics.START_TO_READY.observe((now - island.created_at).total_seconds())
        if decision.release_ports:
            self._release(island.id)

    def _create_pod(self, island: IslandRow, now: datetime) -> dict[str, Any]:
        extra = self.db.run(
            lambda conn: conn.execute(
                select(Island.overrides, Island.chat_channel, Island.chat_thread).where(
                    Island.id == island.id
                )
            ).one(),
            what="island details",
            read_only=True,
        )
        token = secrets.token_urlsafe(24)
        clock = (now + timedelta(seconds=island.clock_offset_s)).strftime("%Y-%m-%d %H:%M:%S")
        params = IslandParams(
            island_id=island.id,
            owner_id=island.owner_id,
            owner_name=island.owner_name,
            branch=island.branch,
            first_port=island.first_port,
            initial_clock=clock,
            registration_url=f"{self.settings.api_url}/api/v1/islands/{island.id}/register",
            registration_token=token,
            clock_offset_s=island.clock_offset_s,
            chat_channel=extra.chat_channel,
            chat_thread=extra.chat_thread,
        )
        body = self.templates.render(params, dict(extra.overrides or {}))
        view = self.kube.create_island_pod(body)
        # a retried create returns the pod made earlier: its token is the one that counts
        token = view.server_env.get("ISLANDBOT_REGISTER_TOKEN", token)
        return {
            "pod_requested_at": now,
            "registration_token_hash": token_hash(token),  # what the registry checks
        }

    def _release(self, island_id: int) -> None:
        try:
            self.allocator.release(island_id)
        except Conflict:
            log.warning("island %d: ports not released, it is not stopped", island_id)

    # ---- level-triggered clean-up -------------------------------------------------------------

    def _sweep(
        self, islands: list[IslandRow], snapshot: ClusterSnapshot, now: datetime, report: TickReport
    ) -> None:
        """Ports of stopped islands whose release was interrupted; pods without a live
        island (orphans, e.g. the bot died between creating a pod and recording it)."""
        live = {i.id for i in islands}
        pending = self.db.run(
            lambda conn: (
                conn.execute(
                    select(Island.id)
                    .join(PortBlock, PortBlock.island_id == Island.id)
                    .where(Island.state == IslandState.STOPPED.value)
                )
                .scalars()
                .all()
            ),
            what="stopped islands holding ports",
        )
        for island_id in pending:
            if island_id not in snapshot.pods:
                self._release(island_id)
        for island_id, view in snapshot.pods.items():
            if island_id in live or view.deleting:
                continue
            created = _parse_time(view.created_at)
            if created is not None and now - created < self.settings.orphan_grace:
                continue
            log.warning("deleting orphan pod %s (island %s is not live)", view.name, island_id)
            try:
                self.kube.delete_pod(view.name)
            except KubeError as exc:
                report.errors.append(f"orphan {view.name}: {exc}")

    # ---- notices ------------------------------------------------------------------------------

    def deliver(self) -> int:
        """Send undelivered notices, each island's in order; channels in parallel (a chat
        paces each channel, so one busy channel must not hold up the others).

        A notice is claimed (``attempts`` + 1) before it is handed over and marked sent after:
        a notice whose earlier attempt may have reached the chat goes out with ``retry`` set,
        so an adapter that can look up what it posted delivers it once. Notices of an island
        started from a chat wait (up to ``thread_wait``) for its root message to be recorded,
        so they land in its thread."""
        now = self.clock()
        rows = self.db.run(
            lambda conn: conn.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.island_id,
                    OutboxMessage.kind,
                    OutboxMessage.detail,
                    OutboxMessage.attempts,
                    Island.owner_id,
                    Island.branch,
                    Island.first_port,
                    Island.chat_channel,
                    Island.chat_thread,
                    Island.state,
                    Island.clock_offset_s,
                )
                .join(Island, Island.id == OutboxMessage.island_id)
                .where(
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.attempts < self.settings.outbox_attempts,
                    or_(
                        Island.chat_channel.is_(None),
                        Island.chat_thread.is_not(None),
                        Island.created_at < now - self.settings.thread_wait,
                    ),
                )
                .order_by(OutboxMessage.id)
                .limit(self.settings.outbox_batch)
            ).all(),
            what="outbox",
            read_only=True,
        )
        groups: dict[str | None, list[Any]] = {}
        for r in rows:
            groups.setdefault(r.chat_channel, []).append(r)
        if len(groups) <= 1:
            return sum(self._deliver_in_order(group) for group in groups.values())
        with self._delivery_lock:
            if self._delivery_pool is None:
                self._delivery_pool = ThreadPoolExecutor(
                    self.settings.delivery_threads, thread_name_prefix="notices"
                )
            pool = self._delivery_pool
        return sum(pool.map(self._deliver_in_order, groups.values()))

    def _deliver_in_order(self, rows: list[Any]) -> int:
        """Claim the rows in one write, announce them in order, record the sent ones in one
        more. A notice announced but not yet recorded when the process dies is announced again
        with ``retry`` set, which lets the chat adapter find it instead of posting it twice."""
        self._update_outbox([r.id for r in rows], attempts=OutboxMessage.attempts + 1)
        sent: list[int] = []
        untried: list[int] = []
        blocked: set[int] = set()  # keep each island's notices in order
        for r in rows:
            if r.island_id in blocked:
                untried.append(r.id)
                continue
            try:
                self.notifier.announce(self._announcement(r))
            except Exception as exc:  # the chat side failed: keep it for the next round
                blocked.add(r.island_id)
                self._update_outbox([r.id], last_error=str(exc)[:500])
                log.warning("notice %d for island %d not delivered: %s", r.id, r.island_id, exc)
                continue
            sent.append(r.id)
        self._update_outbox(sent, sent_at=self.clock())
        self._update_outbox(untried, attempts=OutboxMessage.attempts - 1)  # never tried: unclaim
        return len(sent)

    def housekeeping(self) -> dict[str, int]:
        """Forget what is no longer needed: notices sent (or given up on) longer ago than
        ``outbox_retention``, and chat delivery keys older than ``delivery_retention``."""
        now = self.clock()
        outbox_cutoff = now - self.settings.outbox_retention
        deliveries_cutoff = now - self.settings.delivery_retention

        def write(conn: Connection) -> dict[str, int]:
            notices = conn.execute(
                delete(OutboxMessage).where(
                    or_(
                        OutboxMessage.sent_at < outbox_cutoff,
                        (OutboxMessage.sent_at.is_(None))
                        & (OutboxMessage.attempts >= self.settings.outbox_attempts)
                        & (OutboxMessage.created_at < outbox_cutoff),
                    )
                )
            ).rowcount
            keys = conn.execute(delete(Delivery).where(Delivery.seen_at < deliveries_cutoff))
            return {"notices": int(notices), "deliveries": int(keys.rowcount)}

        removed = self.db.run(write, what="housekeeping")
        if any(removed.values()):
            log.info("housekeeping removed %s", removed)
        return removed

    def close(self) -> None:
        with self._delivery_lock:
            if self._delivery_pool is not None:
                self._delivery_pool.shutdown(wait=True)
                self._delivery_pool = None

    def _update_outbox(self, ids: list[int], **values: Any) -> None:
        if not ids:
            return

        def write(conn: Connection) -> None:
            conn.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(values))

        self.db.run(write, what="outbox update")

    def _announcement(self, r: Any) -> Announcement:
        kind = Notice(r.kind)
        ports = {name: r.first_port + i for i, name in enumerate(self.templates.ports)}
        clock = None
        if r.clock_offset_s:
            clock = (self.clock() + timedelta(seconds=r.clock_offset_s)).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
        text = messages.notice_text(
            kind,
            _revive(r.detail),
            island_id=r.island_id,
            owner_id=r.owner_id,
            branch=r.branch,
            ports=ports,
            clock=clock,
        )
        return Announcement(
            key=f"outbox-{r.id}",
            island_id=r.island_id,
            kind=kind.value,
            text=text,
            owner_id=r.owner_id,
            channel=r.chat_channel,
            thread_ts=r.chat_thread,
            broadcast=kind in (Notice.READY, Notice.FAILED, Notice.CLOCK_SHIFTED),
            status_line=messages.status_line(r.island_id, r.state, r.branch),
            retry=r.attempts > 0,
        )


def _jsonable(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in detail.items()}


def _revive(detail: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(detail)
    if isinstance(out.get("expires_at"), str):
        out["expires_at"] = datetime.fromisoformat(out["expires_at"])
    return out


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
