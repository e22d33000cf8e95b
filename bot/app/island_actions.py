"""What people can do to islands, independent of the chat that carries the request.

Each method validates, authorises (``bot.core.permissions``), changes the database in one
transaction together with its audit entry and the thread notice it causes, and returns what
the chat adapter needs to answer. Refusals are ``UserError`` with text safe to show; nothing
is written but an audit entry when one is refused. The lifecycle engine carries the change out
(deletes or creates the pod) on its next tick; ``poke`` asks for that tick at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, func, insert, select, update

from bot.domain.commands import ListIslands, ListScope, Start
from bot.domain.durations import format_duration
from bot.domain.errors import Conflict, Forbidden, NotFound, UserError
from bot.domain.lifecycle_rules import Notice
from bot.domain.permissions import Action, Policy
from bot.domain.port_blocks import named_ports
from bot.domain.records import (
    Allocation,
    BranchCapacity,
    Caller,
    CapacityReport,
    Extended,
    IslandRecord,
    LogTail,
    StartRequest,
)
from bot.domain.states import LIVE_STATES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.kubernetes.client import Kube, KubeError, NodeView
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.storage import audit
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.tables import Island, OutboxMessage
from bot.words import messages

log = logging.getLogger(__name__)
T = TypeVar("T")

SERVER_CONTAINER = "altraserver"
_LIVE = [s.value for s in LIVE_STATES]


@dataclass(frozen=True)
class ActionSettings:
    default_ttl: timedelta = timedelta(hours=8)
    max_ttl: timedelta = timedelta(days=7)
    extend_step: timedelta = timedelta(hours=4)  # what the Extend button adds


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
    ) -> None:
        self.db = db
        self.allocator = allocator
        self.templates = templates
        self.kube = kube
        self.policy = policy
        self.settings = settings or ActionSettings()
        self.clock = clock
        self.store = IslandStore(db, clock=clock)
        self.poke = poke or (lambda: None)

    # ---- checks ----------------------------------------------------------------------------

    def check_channel(self, caller: Caller) -> None:
        if not self.policy.channel_allowed(caller.channel):
            raise Forbidden(messages.channel_not_allowed(sorted(self.policy.allowed_channels)))

    def _authorise(self, caller: Caller, action: Action, island: Mapping[str, Any]) -> None:
        owner = str(island["owner_id"])
        if not self.policy.may(caller.user_id, action, owner_id=owner):
            raise Forbidden(
                messages.not_allowed(
                    action.value, int(island["id"]), self.policy.who_may(action, owner)
                )
            )

    def _change(
        self,
        caller: Caller,
        action: Action,
        island_id: int,
        write: Callable[[Connection], T],
        *,
        poke: bool = False,
    ) -> T:
        """Run a change; a refusal is audited in a transaction of its own (the change's was
        rolled back) and raised on. ``poke``: a truthy result asks the loop for a tick now."""
        try:
            result = self.db.run(write, what=action.value)
        except UserError as exc:
            self._refused(caller, action, island_id, str(exc))
            raise
        if poke and result:
            self.poke()
        return result

    def _refused(self, caller: Caller, action: Action, island_id: int, reason: str) -> None:
        self.record_look(caller, action, island_id=island_id, refusal=reason)

    def record_look(
        self,
        caller: Caller,
        action: Action,
        *,
        island_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
        refusal: str | None = None,
    ) -> None:
        """Audit, in a transaction of its own, a command that only looks (list, status, logs,
        capacity), answered or refused, or the refusal of a change."""
        self.db.run(
            lambda conn: audit.record(
                conn,
                at=self.clock(),
                actor=caller.user_id,
                action=action.value,
                outcome=audit.Outcome.OK if refusal is None else audit.Outcome.REFUSED,
                island_id=island_id,
                detail={**(detail or {}), **({"reason": refusal} if refusal else {})},
            ),
            what=f"audit {action.value}",
        )

    @staticmethod
    def _locked(conn: Connection, island_id: int) -> Mapping[str, Any]:
        row = conn.execute(
            select(
                Island.id,
                Island.owner_id,
                Island.state,
                Island.expires_at,
                Island.restart_requested_at,
            )
            .where(Island.id == island_id)
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(messages.island_not_found(island_id))
        return dict(row._mapping)

    def _record(
        self,
        conn: Connection,
        caller: Caller,
        island_id: int,
        action: Action,
        notice: Notice,
        *,
        audit_detail: dict[str, Any],
        **notice_detail: Any,
    ) -> None:
        """In the change's transaction: the thread notice it causes and its audit entry."""
        now = self.clock()
        conn.execute(
            insert(OutboxMessage).values(
                island_id=island_id,
                kind=notice.value,
                detail={"by": caller.user_id, **notice_detail},
                created_at=now,
            )
        )
        audit.record(
            conn,
            at=now,
            actor=caller.user_id,
            action=action.value,
            outcome=audit.Outcome.OK,
            island_id=island_id,
            detail=audit_detail,
        )

    # ---- start -----------------------------------------------------------------------------

    def start(self, caller: Caller, command: Start, *, request_key: str | None) -> Allocation:
        self.check_channel(caller)
        overrides = self.templates.overrides(
            command.branch, [f"{k}={v}" for k, v in command.overrides]
        )
        now = self.clock()
        offset = 0 if command.at is None else int((command.at - now).total_seconds())
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
            )
        )
        if allocation.created:
            self.poke()
        return allocation

    def attach_thread(self, island_id: int, channel: str, ts: str) -> bool:
        """Record the island's root message; False when one was recorded already."""

        def write(conn: Connection) -> bool:
            return bool(
                conn.execute(
                    update(Island)
                    .where(Island.id == island_id, Island.chat_thread.is_(None))
                    .values(chat_channel=channel, chat_thread=ts)
                ).rowcount
            )

        return self.db.run(write, what="attach thread")

    # ---- stop, restart, extend ---------------------------------------------------------------

    def stop(self, caller: Caller, island_id: int) -> bool:
        """Ask for the island to be stopped. False when it is already stopping."""

        def write(conn: Connection) -> bool:
            island = self._locked(conn, island_id)
            self._authorise(caller, Action.STOP, island)
            state = IslandState(island["state"])
            if state == IslandState.STOPPED:
                raise Conflict(messages.already_stopped(island_id))
            if state == IslandState.STOPPING:
                return False
            conn.execute(
                update(Island)
                .where(Island.id == island_id)
                .values(state=IslandState.STOPPING.value, restart_requested_at=None)
            )
            self._record(
                conn,
                caller,
                island_id,
                Action.STOP,
                Notice.STOP_REQUESTED,
                audit_detail={"from": state.value},
            )
            return True

        return self._change(caller, Action.STOP, island_id, write, poke=True)

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

    def restart(self, caller: Caller, island_id: int) -> bool:
        """Ask for a new pod with the same id and ports. False when a restart is pending."""

        def write(conn: Connection) -> bool:
            island = self._locked(conn, island_id)
            self._authorise(caller, Action.RESTART, island)
            state = IslandState(island["state"])
            if state in (IslandState.STOPPED, IslandState.STOPPING):
                raise Conflict(messages.cannot_restart(island_id, state.value))
            if island["restart_requested_at"] is not None:
                return False
            conn.execute(
                update(Island)
                .where(Island.id == island_id)
                .values(restart_requested_at=self.clock(), restarts=Island.restarts + 1)
            )
            self._record(
                conn,
                caller,
                island_id,
                Action.RESTART,
                Notice.RESTARTING,
                audit_detail={"from": state.value},
            )
            return True

        return self._change(caller, Action.RESTART, island_id, write, poke=True)

    def extend(
        self,
        caller: Caller,
        island_id: int,
        by: timedelta,
        *,
        seen_expires_at: datetime | None = None,
    ) -> Extended:
        """Move the expiry ``by`` later (from now if it is past). ``seen_expires_at`` (a
        button's) makes it a compare-and-set: a second click of the same button does nothing."""

        def write(conn: Connection) -> Extended:
            island = self._locked(conn, island_id)
            self._authorise(caller, Action.EXTEND, island)
            state = IslandState(island["state"])
            if state in (IslandState.STOPPED, IslandState.STOPPING):
                raise Conflict(messages.cannot_extend(island_id, state.value))
            current: datetime = island["expires_at"]
            if (
                seen_expires_at is not None
                and abs((current - seen_expires_at).total_seconds()) >= 1
            ):
                return Extended(island_id, current, changed=False)
            now = self.clock()
            new = max(current, now) + by
            if new - now > self.settings.max_ttl:
                raise UserError(
                    messages.extend_too_far(
                        island_id,
                        max_ttl=self.settings.max_ttl,
                        room=max(self.settings.max_ttl - (current - now), timedelta(0)),
                    )
                )
            conn.execute(
                update(Island)
                .where(Island.id == island_id)
                .values(expires_at=new, expiry_warned_at=None)
            )
            self._record(
                conn,
                caller,
                island_id,
                Action.EXTEND,
                Notice.EXTENDED,
                audit_detail={"from": current.isoformat(), "to": new.isoformat()},
                expires_at=new.isoformat(),
                added=format_duration(by),
            )
            return Extended(island_id, new, changed=True)

        return self._change(caller, Action.EXTEND, island_id, write)

    # ---- looking -------------------------------------------------------------------------------

    def islands(self, caller: Caller, command: ListIslands) -> list[IslandRecord]:
        if command.scope == ListScope.MINE:
            return self.store.live(owner_id=caller.user_id)
        if command.scope == ListScope.BRANCH:
            return self.store.live(branch=command.branch)
        return self.store.live()

    def status(self, island_id: int) -> IslandRecord:
        return self.store.get(island_id)

    def ports(self, island: IslandRecord) -> dict[str, int]:
        return named_ports(self.templates.ports, island.first_port)

    def island_clock(self, island: IslandRecord) -> datetime | None:
        if not island.clock_offset_s:
            return None
        return self.clock() + timedelta(seconds=island.clock_offset_s)

    def logs(self, island_id: int, *, lines: int, previous: bool = False) -> LogTail:
        island = self.store.get(island_id)
        if island.state in (IslandState.REQUESTED, IslandState.STOPPED):
            raise Conflict(messages.no_logs(island_id, island.state.value))
        try:
            text = self.kube.pod_logs(
                island.pod_name, container=SERVER_CONTAINER, tail_lines=lines, previous=previous
            )
        except KubeError as exc:
            log.warning("logs of island %d: %s", island_id, exc)
            raise UserError(messages.logs_unavailable(island_id, previous=previous)) from exc
        kept = text.splitlines()[-lines:]
        return LogTail(island_id, "\n".join(kept), len(kept), previous)

    def capacity(self) -> CapacityReport:
        usage = self.allocator.usage()
        counts: dict[str, int] = dict(
            self.db.run(
                lambda conn: conn.execute(
                    select(Island.branch, func.count())
                    .where(Island.state.in_(_LIVE))
                    .group_by(Island.branch)
                ).all(),
                what="capacity",
                read_only=True,
            )
        )
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
                )
            )
        return CapacityReport(usage, sum(counts.values()), tuple(branches), error)
