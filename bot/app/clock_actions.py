"""Island clocks: shifts the team can see, requests the owner decides, applied and verified.

A shift by the island's owner (or an admin) is applied at once; anyone else's becomes a
*request* (at most one open per island: a newer one supersedes it) that the owner or an admin
approves or rejects, and that expires. Every request, decision, application and failure is a
clock request plus audit entries (``bot.infra.storage.clock_requests``), and every applied
shift a notice in the island's thread, broadcast to the channel.

Applying: an island not yet created just gets its new offset (its pod starts there). A ready
island's server gets it through its libfaketime file (``bot.app.clock_file``), and the new
offset is recorded only once the server's clock reads it. On any failure the recorded offset
stays.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from bot.app.clock_file import ClockNotMoved, write_clock_file
from bot.domain.errors import Conflict, Forbidden, Refusal, UserError
from bot.domain.island_clock import (
    ClockFault,
    When,
    WhenKind,
    describe_shift,
    new_offset,
    out_of_bounds,
)
from bot.domain.lifecycle_rules import Notice
from bot.domain.permissions import Action, Policy
from bot.domain.podspec import ANNOTATION_CLOCK
from bot.domain.pool import CLAIM_CLOCK
from bot.domain.records import (
    Audit,
    Caller,
    ClockAsk,
    ClockRecord,
    ClockView,
    IslandRecord,
    NoticeSpec,
    Outcome,
    ShiftOutcome,
    WorkTicket,
)
from bot.domain.states import IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError
from bot.infra.storage.audit import AuditLog
from bot.infra.storage.clock_requests import APPLYING, PENDING, ClockRequests
from bot.infra.storage.database import Database
from bot.infra.storage.lease import LeaderLease
from bot.words import clock_text, formatting, refusals
from bot.words.catalogue import speaking

log = logging.getLogger(__name__)

MOVABLE = (IslandState.READY, IslandState.REQUESTED)  # a clock moves before the pod or once ready


@dataclass(frozen=True)
class ClockSettings:
    max_shift: timedelta = timedelta(days=3650)
    request_ttl: timedelta = timedelta(hours=1)
    tz: tzinfo = UTC  # the team's: clock times in notices are shown in it


class ClockActions:
    def __init__(
        self,
        *,
        db: Database,
        kube: Kube,
        policy: Policy,
        server_container: str,
        settings: ClockSettings | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.kube = kube
        self.policy = policy
        self.server_container = server_container
        self.settings = settings or ClockSettings()
        self.clock = clock
        self.requests = ClockRequests(db, clock=clock)
        self.audit = AuditLog(db, clock=clock)

    # ---- reading -------------------------------------------------------------------------------

    def show(self, island_id: int) -> ClockView:
        island, last = self.requests.island_and_last_applied(island_id)
        return ClockView(
            island_id,
            island.owner_id,
            island.clock_offset_s,
            self.clock() + timedelta(seconds=island.clock_offset_s),
            last,
        )

    def history(self, island_id: int, limit: int = 50) -> list[ClockRecord]:
        return self.requests.history(island_id, limit)

    def get(self, request_id: int) -> ClockRecord:
        return self.requests.get(request_id)

    # ---- asking --------------------------------------------------------------------------------

    def shift(
        self, caller: Caller, island_id: int, when: When, *, ticket: WorkTicket | None = None
    ) -> ShiftOutcome:
        """The owner's or an admin's shift is applied now; anyone else's waits for a decision.
        Raises ``UserError`` (nothing written but an audit entry) when it cannot be done."""
        now = self.clock()

        def decide(island: IslandRecord) -> ClockAsk:
            if island.pooled:
                raise Conflict(Refusal.IN_POOL, island_id=island.id, branch=island.branch)
            if island.state not in MOVABLE:
                raise Conflict(Refusal.CLOCK_NOT_NOW, island_id=island_id, state=island.state.value)
            to = new_offset(when, current_offset_s=island.clock_offset_s, real_now=now)
            if out_of_bounds(to, self.settings.max_shift):
                raise self._out_of_bounds(island_id)
            return ClockAsk(
                requested_by=caller.user_id,
                from_offset_s=island.clock_offset_s,
                to_offset_s=to,
                kind=when.kind.value,
                target_at=when.at,
                immediate=self.policy.may(caller.user_id, Action.EXTEND, owner_id=island.owner_id),
                expires_at=now + self.settings.request_ttl,
                chat_channel=caller.channel or island.chat_channel,
            )

        try:
            request, superseded = self.requests.ask(island_id, decide, ticket=ticket)
        except UserError as exc:
            self._refused(caller, island_id, "clock:shift", exc)
            raise
        immediate = request.state != PENDING
        backwards = request.to_offset_s < request.from_offset_s
        if immediate:
            request = self._apply(request, actor=caller.user_id)
        return ShiftOutcome(request, immediate, backwards, superseded)

    def decide(
        self,
        caller: Caller,
        request_id: int,
        *,
        approve: bool,
        ticket: WorkTicket | None = None,
    ) -> ClockRecord:
        """The owner or an admin approves (applied now) or rejects a pending request."""
        now = self.clock()

        def check(request: ClockRecord, island: IslandRecord) -> None:
            if not self.policy.may(caller.user_id, Action.EXTEND, owner_id=island.owner_id):
                raise Forbidden(
                    Refusal.CLOCK_DECIDE_NOT_ALLOWED,
                    island_id=request.island_id,
                    who=list(self.policy.who_may(Action.EXTEND, island.owner_id)),
                )
            if request.state != PENDING:
                raise Conflict(
                    Refusal.CLOCK_REQUEST_CLOSED, request_id=request_id, state=request.state
                )
            if now >= request.expires_at:  # the expiry job records it as expired
                raise Conflict(Refusal.CLOCK_REQUEST_CLOSED, request_id=request_id, state="expired")
            if approve and island.state not in MOVABLE:
                raise Conflict(
                    Refusal.CLOCK_NOT_NOW, island_id=request.island_id, state=island.state.value
                )

        try:
            request = self.requests.decide(
                request_id, by=caller.user_id, approve=approve, check=check, ticket=ticket
            )
        except UserError as exc:
            self._refused(caller, None, "clock:decide", exc)
            raise
        if approve:
            request = self._apply(request, actor=caller.user_id)
        return request

    def expire(self) -> list[ClockRecord]:
        """Pending requests past their time become expired; returns them (their messages are
        to be updated)."""
        return self.requests.expire()

    # ---- applying ------------------------------------------------------------------------------

    def _apply(self, request: ClockRecord, *, actor: str) -> ClockRecord:
        """Carry out a request being applied; one at a time per island (a lease in the
        database, so two replicas cannot interleave their writes to one clock file), and
        once: the request is read again under the lease (see ``_apply_locked``)."""
        lease = self._lease(request.island_id)
        deadline = time.monotonic() + 30
        while not lease.try_acquire():
            if time.monotonic() > deadline:
                busy = ClockNotMoved(ClockFault.BUSY, island_id=request.island_id)
                return self._failed(request, actor, busy)
            time.sleep(0.2)
        with lease.kept():  # renewed while the change takes, however long
            return self._apply_locked(request, actor)

    def apply_claim(self, request_id: int) -> ClockRecord:
        """Set a warm island's clock as its claim asked (``at=``), then tell its owner it is
        ready. Left undone by a crash, the leader's ``resume_stuck`` does it."""
        request = self.requests.get(request_id)
        return self._apply(request, actor=request.requested_by)

    def _lease(self, island_id: int) -> LeaderLease:
        return LeaderLease(self.db, name=f"clock-{island_id}", ttl=timedelta(seconds=60))

    def resume_stuck(self) -> None:
        """Changes left being applied by a replica that died (no one holds their island's
        clock lease): carried out now. A job of the leader's. Its list may be stale by the
        time it has the lease (a slow apply that finished meanwhile released it): a request
        settled since is left as it is."""
        for request in self.requests.applying(older_than=timedelta(minutes=2)):
            lease = self._lease(request.island_id)
            if not lease.try_acquire():
                continue  # still being applied
            with lease.kept():
                log.info("island %d: resuming clock request %d", request.island_id, request.id)
                self._apply_locked(request, str(request.decided_by or request.requested_by))

    def _apply_locked(self, request: ClockRecord, actor: str) -> ClockRecord:
        """Carry out ``request`` holding its island's clock lease. It is read again first,
        with the island: another applier may have settled it since ``request`` was read (the
        leader's resume and a slow apply, each after the other released the lease), and a
        relative shift applied twice would move the clock twice."""
        request, island = self.requests.with_island(request)
        if request.state != APPLYING:
            log.info(
                "island %d: clock request %d already %s: not applied again",
                request.island_id,
                request.id,
                request.state,
            )
            return request
        now = self.clock()
        current = island.clock_offset_s
        if request.kind in (WhenKind.ABSOLUTE, CLAIM_CLOCK) and request.target_at is not None:
            to = round((request.target_at - now).total_seconds())  # lands where it was meant
        elif request.kind == WhenKind.NOW:
            to = 0
        else:
            to = current + (request.to_offset_s - request.from_offset_s)
        if out_of_bounds(to, self.settings.max_shift):
            return self._failed(request, actor, self._out_of_bounds(request.island_id))
        if island.state == IslandState.REQUESTED:  # its pod starts there
            return self._applied(request, actor, current, to, IslandState.REQUESTED)
        if island.state != IslandState.READY:
            return self._failed(
                request,
                actor,
                Conflict(Refusal.CLOCK_NOT_NOW, island_id=island.id, state=island.state.value),
                island=island,
            )
        try:
            write_clock_file(
                self.kube, island.pod_name, to, container=self.server_container, clock=self.clock
            )
        except (KubeError, ClockNotMoved) as exc:
            log.warning("island %d: clock not applied: %s", request.island_id, exc)
            why = exc if isinstance(exc, ClockNotMoved) else ClockNotMoved.cluster(exc)
            return self._failed(request, actor, why, island=island)
        try:
            self.kube.annotate_pod(island.pod_name, {ANNOTATION_CLOCK: str(to)})
        except KubeError as exc:  # only a mirror: the database is the source of truth
            log.warning("island %d: clock annotation not updated: %s", request.island_id, exc)
        return self._applied(request, actor, current, to, IslandState.READY, island=island)

    def _applied(
        self,
        request: ClockRecord,
        actor: str,
        from_s: int,
        to_s: int,
        state: IslandState,
        *,
        island: IslandRecord | None = None,
    ) -> ClockRecord:
        now = self.clock()
        notice: NoticeSpec = (
            Notice.CLOCK_SHIFTED,
            {
                "by": request.requested_by,
                "approved_by": actor,
                "from_clock": self._shown(now, from_s),
                "to_clock": self._shown(now, to_s),
                "shift": describe_shift(from_s, to_s),  # (read by notices before shift_s)
                "shift_s": to_s - from_s,
            },
        )
        if request.kind == CLAIM_CLOCK and island is not None:  # a warm island's, at claim:
            notice = _claimed_ready(island)  # its owner is told it is ready, at that clock
        try:
            record, won = self.requests.applied(
                request, actor=actor, from_s=from_s, to_s=to_s, notice=notice, state=state
            )
        except Conflict as exc:  # its pod was created (or it stopped) meanwhile
            return self._failed(request, actor, exc)
        if not won:
            self._lost(record)
        return record

    def _out_of_bounds(self, island_id: int) -> UserError:
        bound_s = int(self.settings.max_shift.total_seconds())
        return UserError(Refusal.CLOCK_OUT_OF_BOUNDS, island_id=island_id, bound_s=bound_s)

    def _failed(
        self,
        request: ClockRecord,
        actor: str,
        why: UserError | ClockNotMoved,
        *,
        island: IslandRecord | None = None,
    ) -> ClockRecord:
        """The change was not made, for ``why``: worded for the request and its notice, kept
        as its code and details in the audit log. A warm island's clock at claim that could
        not be set: its owner is told so, and that the island is ready (at real time)."""
        with speaking(None):  # kept, and shown in the channel: the deployment's language
            if isinstance(why, UserError):
                error = refusals.text(why)
            else:
                error = clock_text.clock_fault(why.fault, why.detail)
        notice = (Notice.CLOCK_FAILED, {"by": request.requested_by, "error": error[:300]})
        also: tuple[NoticeSpec, ...] = ()
        if request.kind == CLAIM_CLOCK:
            if island is None:
                island = self.requests.with_island(request)[1]
            if island.state == IslandState.READY:
                also = (_claimed_ready(island),)
        record, won = self.requests.failed(
            request, actor=actor, error=error, why=why.data(), notice=notice, also=also
        )
        if not won:
            self._lost(record)
        return record

    @staticmethod
    def _lost(record: ClockRecord) -> None:
        """Another applier recorded the request's result first: that one stands (and was
        announced); the request as it stands is what the caller gets."""
        log.warning(
            "island %d: clock request %d was settled meanwhile (%s): this result not recorded",
            record.island_id,
            record.id,
            record.state,
        )

    def _shown(self, now: datetime, offset_s: int) -> str:
        return formatting.clock_time(now + timedelta(seconds=offset_s), self.settings.tz)

    def _refused(
        self, caller: Caller, island_id: int | None, action: str, refusal: UserError
    ) -> None:
        self.audit.append(
            Audit(
                caller.user_id, action, Outcome.REFUSED, island_id=island_id, detail=refusal.data()
            )
        )


def _claimed_ready(island: IslandRecord) -> NoticeSpec:
    """The "ready" of a warm island handed over with a clock asked for, said once that clock
    is set (or could not be)."""
    return (Notice.READY, {"host": island.host_ip, "node": island.node, "warm": True})
