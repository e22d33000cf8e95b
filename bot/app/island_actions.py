"""What people can do to islands, independent of the chat that carries the request.

Each method validates, authorises (``bot.domain.permissions``), decides on the island's locked
row what changes (written in one transaction with its audit entry and the thread notice it
causes, by ``bot.infra.storage.islands``), and returns what the chat adapter needs to answer.
Refusals are ``UserError`` with text safe to show; nothing is written but an audit entry when
one is refused. The lifecycle engine carries the change out (deletes or creates the pod) on its
next tick; ``poke`` asks for that tick at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.app.clock_actions import ClockActions
from bot.domain.commands import ListIslands, ListScope, Start
from bot.domain.durations import format_duration
from bot.domain.errors import Conflict, Forbidden, IslandbotError, Refusal, UserError, log_failure
from bot.domain.island_clock import out_of_bounds
from bot.domain.lifecycle_rules import Notice
from bot.domain.permissions import Action, Policy
from bot.domain.pool import PoolUse, servable
from bot.domain.port_blocks import named_ports
from bot.domain.records import (
    Allocation,
    Audit,
    BranchCapacity,
    Caller,
    CapacityReport,
    Extended,
    IslandChange,
    IslandRecord,
    LogTail,
    Outcome,
    StartRequest,
    WorkTicket,
)
from bot.domain.states import IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.kubernetes.views import NodeView
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.audit import AuditLog
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.memory import MemoryStore

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ActionSettings:
    default_ttl: timedelta = timedelta(hours=8)
    max_ttl: timedelta = timedelta(days=7)
    extend_step: timedelta = timedelta(hours=4)  # what the Extend button adds
    clock_max_shift: timedelta = timedelta(days=3650)  # how far from real time a clock may be


class IslandActions:
    def __init__(
        self,
        *,
        db: Database,
        allocator: Allocator,
        templates: TemplateSet,
        kube: Kube,
        policy: Policy,
        settings: ActionSettings | None = None,
        clock: Clock = utcnow,
        poke: Callable[[], None] | None = None,
        pool_sizes: Mapping[str, int] | None = None,
        clocks: ClockActions | None = None,
    ) -> None:
        """``pool_sizes``: the deployment's warm pool sizes by branch (``ISLANDBOT_POOLS``),
        over the branch profiles' (an admin's from chat wins over both). ``clocks``: sets a
        warm island's clock when its claim asks for one (``at=``)."""
        self.db = db
        self.allocator = allocator
        self.templates = templates
        self.kube = kube
        self.policy = policy
        self.settings = settings or ActionSettings()
        self.clock = clock
        self.store = IslandStore(db, clock=clock)
        self.audit = AuditLog(db, clock=clock)
        self.poke = poke or (lambda: None)
        self.pool_sizes = dict(pool_sizes or {})
        self.clocks = clocks

    # ---- checks ----------------------------------------------------------------------------

    def check_channel(
        self, caller: Caller, action: Action | None = None, *, island_id: int | None = None
    ) -> None:
        """Refuse (``Forbidden``) what comes from a channel the bot may not serve; with
        ``action``, the refusal is audited as that action's (a button pressed there)."""
        if self.policy.channel_allowed(caller.channel):
            return
        refused = Forbidden(
            Refusal.CHANNEL_NOT_ALLOWED, allowed=sorted(self.policy.allowed_channels)
        )
        if action is not None:
            self.record_look(caller, action, island_id=island_id, refusal=refused)
        raise refused

    def _authorise(self, caller: Caller, action: Action, island: IslandRecord) -> None:
        if island.pooled:
            raise Conflict(Refusal.IN_POOL, island_id=island.id, branch=island.branch)
        if not self.policy.may(caller.user_id, action, owner_id=island.owner_id):
            raise Forbidden(
                Refusal.NOT_ALLOWED,
                action=action.value,
                island_id=island.id,
                who=list(self.policy.who_may(action, island.owner_id)),
            )

    def _change(
        self,
        caller: Caller,
        action: Action,
        island_id: int,
        decide: Callable[[IslandRecord], tuple[IslandChange | None, T]],
        *,
        poke: bool = False,
        ticket: WorkTicket | None = None,
    ) -> T:
        """Run a change; a refusal is audited in a transaction of its own (the change's was
        rolled back) and raised on. ``poke``: a truthy result asks the loop for a tick now."""
        try:
            result = self.store.change(island_id, decide, what=action.value, ticket=ticket)
        except UserError as exc:
            self.record_look(caller, action, island_id=island_id, refusal=exc)
            raise
        if poke and result:
            self.poke()
        return result

    def record_look(
        self,
        caller: Caller,
        action: Action,
        *,
        island_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
        refusal: UserError | None = None,
    ) -> None:
        """Audit, in a transaction of its own, a command that only looks (list, status, logs,
        capacity), answered or refused, or the refusal of a change (kept as its code and
        details, ``UserError.data``)."""
        self.audit.append(
            Audit(
                caller.user_id,
                action.value,
                Outcome.OK if refusal is None else Outcome.REFUSED,
                island_id=island_id,
                detail={**(detail or {}), **(refusal.data() if refusal else {})},
            )
        )

    @staticmethod
    def _told(
        caller: Caller,
        island: IslandRecord,
        action: Action,
        notice: Notice,
        updates: Mapping[str, Any],
        *,
        audit_detail: Mapping[str, Any],
        **notice_detail: Any,
    ) -> IslandChange:
        """A person's change: its values, the thread notice it causes, its audit entry."""
        return IslandChange(
            updates,
            ((notice, {"by": caller.user_id, **notice_detail}),),
            Audit(caller.user_id, action.value, island_id=island.id, detail=audit_detail),
        )

    # ---- start -----------------------------------------------------------------------------

    def start(
        self,
        caller: Caller,
        command: Start,
        *,
        request_key: str | None,
        reply: Mapping[str, str | None] | None = None,
        ticket: WorkTicket | None = None,
    ) -> Allocation:
        """``reply``: where to tell the person who asked, if the island's root message cannot
        go to the channel they asked from."""
        self.check_channel(caller)
        now = self.clock()
        offset = 0 if command.at is None else int((command.at - now).total_seconds())
        try:
            overrides = self.templates.overrides(
                command.branch, [f"{k}={v}" for k, v in command.overrides]
            )
            self._check_start_clock(offset)
        except UserError as exc:  # refused before anything was allocated
            self.record_look(caller, Action.START, refusal=exc)
            raise
        allocation = self.allocator.allocate(
            StartRequest(
                owner_id=caller.user_id,
                owner_name=caller.name,
                branch=command.branch,
                ttl=command.ttl or self.settings.default_ttl,
                request_key=request_key,
                overrides=overrides,
                clock_offset_s=offset,
                note=command.note,
                chat_channel=caller.channel,
                reply=reply,
                pool=self.pool_use(command),
            ),
            ticket=ticket,
        )
        if allocation.created:
            self.poke()
        if allocation.clock_request is not None and self.clocks is not None:
            try:
                self.clocks.apply_claim(allocation.clock_request)  # then "ready" is said
            except IslandbotError as exc:  # the start stands; the leader's resume finishes it
                log_failure(log, f"island {allocation.island_id}: its clock not set now", exc)
        return allocation

    def pool_use(self, command: Start) -> PoolUse:
        """How this start may use its branch's warm pool (the deployment's size; the start's
        transaction reads an admin's)."""
        spec = self.templates.profile(command.branch).pool
        return PoolUse(
            self.pool_sizes.get(command.branch, spec.size),
            servable(command.overrides),
            spec.max_age,
            command.at,
        )

    def _check_start_clock(self, offset_s: int) -> None:
        bound = self.settings.clock_max_shift
        if out_of_bounds(offset_s, bound):
            raise UserError(Refusal.START_CLOCK_OUT_OF_BOUNDS, bound_s=int(bound.total_seconds()))

    # ---- stop, restart, extend ---------------------------------------------------------------

    def stop(self, caller: Caller, island_id: int, *, ticket: WorkTicket | None = None) -> bool:
        """Ask for the island to be stopped. False when it is already stopping."""

        def decide(island: IslandRecord) -> tuple[IslandChange | None, bool]:
            self._authorise(caller, Action.STOP, island)
            if island.state == IslandState.STOPPED:
                raise Conflict(Refusal.ALREADY_STOPPED, island_id=island_id)
            if island.state == IslandState.STOPPING:
                return None, False
            updates = {"state": IslandState.STOPPING.value, "restart_requested_at": None}
            return self._told(
                caller,
                island,
                Action.STOP,
                Notice.STOP_REQUESTED,
                updates,
                audit_detail={"from": island.state.value},
            ), True

        return self._change(caller, Action.STOP, island_id, decide, poke=True, ticket=ticket)

    def stop_mine(self, caller: Caller) -> list[int]:
        """Stop every live island of the caller; returns the ids newly stopping."""
        stopped = []
        for island in self.store.live(owner_id=caller.user_id):
            try:
                if self.stop(caller, island.id):
                    stopped.append(island.id)
            except Conflict:  # stopped meanwhile
                continue
        return stopped

    def restart(self, caller: Caller, island_id: int, *, ticket: WorkTicket | None = None) -> bool:
        """Ask for a new pod with the same id and ports. False when a restart is pending."""

        def decide(island: IslandRecord) -> tuple[IslandChange | None, bool]:
            self._authorise(caller, Action.RESTART, island)
            if island.state in (IslandState.STOPPED, IslandState.STOPPING):
                raise Conflict(
                    Refusal.CANNOT_RESTART, island_id=island_id, state=island.state.value
                )
            if island.restart_requested_at is not None:
                return None, False
            updates = {"restart_requested_at": self.clock(), "restarts": island.restarts + 1}
            return self._told(
                caller,
                island,
                Action.RESTART,
                Notice.RESTARTING,
                updates,
                audit_detail={"from": island.state.value},
            ), True

        return self._change(caller, Action.RESTART, island_id, decide, poke=True, ticket=ticket)

    def extend(
        self,
        caller: Caller,
        island_id: int,
        by: timedelta,
        *,
        seen_expires_at: datetime | None = None,
        ticket: WorkTicket | None = None,
    ) -> Extended:
        """Move the expiry ``by`` later (from now if it is past). ``seen_expires_at`` (a
        button's) makes it a compare-and-set: a second click of the same button does nothing."""

        def decide(island: IslandRecord) -> tuple[IslandChange | None, Extended]:
            self._authorise(caller, Action.EXTEND, island)
            if island.state in (IslandState.STOPPED, IslandState.STOPPING):
                raise Conflict(Refusal.CANNOT_EXTEND, island_id=island_id, state=island.state.value)
            current = island.expires_at
            if (
                seen_expires_at is not None
                and abs((current - seen_expires_at).total_seconds()) >= 1
            ):
                return None, Extended(island_id, current, changed=False)
            now = self.clock()
            new = max(current, now) + by
            if new - now > self.settings.max_ttl:
                raise UserError(
                    Refusal.EXTEND_TOO_FAR,
                    island_id=island_id,
                    max_ttl_s=int(self.settings.max_ttl.total_seconds()),
                    room_s=max(int((self.settings.max_ttl - (current - now)).total_seconds()), 0),
                )
            change = self._told(
                caller,
                island,
                Action.EXTEND,
                Notice.EXTENDED,
                {"expires_at": new, "expiry_warned_at": None},
                audit_detail={"from": current.isoformat(), "to": new.isoformat()},
                expires_at=new.isoformat(),
                added_s=int(by.total_seconds()),
                added=format_duration(by),  # (what a replica of the release before reads)
            )
            return change, Extended(island_id, new, changed=True)

        return self._change(caller, Action.EXTEND, island_id, decide, ticket=ticket)

    # ---- looking -------------------------------------------------------------------------------

    def islands(self, caller: Caller, command: ListIslands) -> list[IslandRecord]:
        if command.scope == ListScope.MINE:
            return self.store.live(owner_id=caller.user_id)
        if command.scope == ListScope.BRANCH:
            return self.store.live(branch=command.branch, people=True)
        return self.store.live(people=True)

    def status(self, island_id: int) -> IslandRecord:
        return self.store.get(island_id)

    def memory(self, island_id: int) -> tuple[int, int | None] | None:
        """The island's last memory reading (working set, limit), if it was read."""
        return self.memories([island_id]).get(island_id)

    def memories(self, island_ids: Sequence[int]) -> dict[int, tuple[int, int | None]]:
        """These islands' last memory readings (working set, limit), those read, in one query."""
        kept = MemoryStore(self.db).last(island_ids)
        return {i: (k.used, k.limit) for i, k in kept.items()}

    def ports(self, island: IslandRecord) -> dict[str, int]:
        return named_ports(self.templates.ports, island.first_port)

    def island_clock(self, island: IslandRecord) -> datetime | None:
        if not island.clock_offset_s:
            return None
        return self.clock() + timedelta(seconds=island.clock_offset_s)

    def logs(self, island_id: int, *, lines: int, previous: bool = False) -> LogTail:
        island = self.store.get(island_id)
        if island.state in (IslandState.REQUESTED, IslandState.STOPPED):
            raise Conflict(Refusal.NO_LOGS, island_id=island_id, state=island.state.value)
        try:
            text = self.kube.pod_logs(
                island.pod_name,
                container=self.templates.server_container,
                tail_lines=lines,
                previous=previous,
            )
        except KubeError as exc:
            log.warning("logs of island %d: %s", island_id, exc)
            raise UserError(
                Refusal.LOGS_UNAVAILABLE, island_id=island_id, previous=previous
            ) from exc
        kept = text.splitlines()[-lines:]
        return LogTail(island_id, "\n".join(kept), len(kept), previous)

    def capacity(self) -> CapacityReport:
        usage = self.allocator.usage()
        counts: dict[str, int] = {}
        for _state, branch, number in self.store.counts(pooled=False):
            counts[branch] = counts.get(branch, 0) + number
        warm: dict[str, int] = {}  # pool islands ready to hand out
        warming: dict[str, int] = {}  # pool islands on their way to ready
        for state, branch, number in self.store.counts(pooled=True):
            if state == IslandState.READY.value:
                warm[branch] = warm.get(branch, 0) + number
            elif state not in (IslandState.STOPPING.value, IslandState.FAILED.value):
                warming[branch] = warming.get(branch, 0) + number
        error = None
        nodes: list[NodeView] = []
        try:
            nodes = self.kube.nodes()
        except KubeError as exc:
            error = str(exc)
            log.warning("capacity: %s", exc)
        branches = []
        for branch in self.templates.branches:
            selector = self.templates.node_selector(branch)
            usable = [
                n
                for n in nodes
                if n.ready
                and not n.unschedulable
                and all(n.labels.get(k) == v for k, v in selector.items())
            ]
            branches.append(
                BranchCapacity(
                    branch,
                    counts.get(branch, 0),
                    len(usable),
                    sum(max(n.allocatable_memory - n.requested_memory, 0) for n in usable),
                    warm.get(branch, 0),
                    warming.get(branch, 0),
                )
            )
        return CapacityReport(usage, sum(counts.values()), tuple(branches), error)
