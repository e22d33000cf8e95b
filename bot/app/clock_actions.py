"""Island clocks: shifts the team can see, requests the owner decides, applied and verified.

A shift by the island's owner (or an admin) is applied at once; anyone else's becomes a
*request* (at most one open per island: a newer one supersedes it) that the owner or an admin
approves or rejects, and that expires. Every request, decision, application and failure is a
``clock_requests`` row plus audit entries, and every applied shift a notice in the island's
thread, broadcast to the channel.

Applying: an island not yet created just gets its new offset (its pod starts there). A ready
island's server gets the offset written into its libfaketime file through exec, as ``+N``/``-N``
seconds (never ``@date`` on a running server, see ``bot.core.clocks``), validated and moved
into place atomically; then ``date +%s`` read through exec must show the expected time (within
a few seconds) before the new offset is recorded. On any failure the recorded offset stays.
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, insert, select, update

from bot.app.island_actions import SERVER_CONTAINER
from bot.domain.errors import Conflict, Forbidden, NotFound, UserError
from bot.domain.island_clock import (
    When,
    WhenKind,
    describe_shift,
    faketime_relative,
    new_offset,
    out_of_bounds,
    valid_relative_content,
)
from bot.domain.lifecycle_rules import Notice
from bot.domain.permissions import Action, Policy
from bot.domain.records import Caller, ClockRecord, ClockView, ShiftOutcome
from bot.domain.states import IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.kubernetes.client import Kube, KubeError
from bot.infra.storage import audit
from bot.infra.storage.database import Database
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.tables import ClockRequest, Island, OutboxMessage
from bot.words import messages

log = logging.getLogger(__name__)

CLOCK_FILE_ENV = "FAKETIME_TIMESTAMP_FILE"
VERIFY_TOLERANCE_S = 5
VERIFY_WITHIN_S = 15.0
PENDING = "pending"
OPEN_STATES = (PENDING, "applying")


@dataclass(frozen=True)
class ClockSettings:
    max_shift: timedelta = timedelta(days=3650)
    request_ttl: timedelta = timedelta(hours=1)
    tz: tzinfo = UTC  # the team's: clock times in notices are shown in it


_COLUMNS = tuple(getattr(ClockRequest, f) for f in ClockRecord.__dataclass_fields__)


def _record(row: Any) -> ClockRecord:
    return ClockRecord(**dict(row._mapping))


def _load(conn: Connection, request_id: int) -> ClockRecord:
    return _record(conn.execute(select(*_COLUMNS).where(ClockRequest.id == request_id)).one())


class ClockActions:
    def __init__(
        self,
        *,
        db: Database,
        kube: Kube,
        policy: Policy,
        settings: ClockSettings | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.kube = kube
        self.policy = policy
        self.settings = settings or ClockSettings()
        self.clock = clock

    # ---- reading -------------------------------------------------------------------------------

    def _island(self, conn: Connection, island_id: int, *, lock: bool = False) -> Any:
        query = select(
            Island.id,
            Island.owner_id,
            Island.state,
            Island.clock_offset_s,
            Island.pod_name,
            Island.chat_channel,
            Island.chat_thread,
        ).where(Island.id == island_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(messages.island_not_found(island_id))
        return row

    def show(self, island_id: int) -> ClockView:
        def read(conn: Connection) -> ClockView:
            island = self._island(conn, island_id)
            last = conn.execute(
                select(*_COLUMNS)
                .where(ClockRequest.island_id == island_id, ClockRequest.state == "applied")
                .order_by(ClockRequest.id.desc())
                .limit(1)
            ).first()
            return ClockView(
                island_id,
                island.owner_id,
                island.clock_offset_s,
                self.clock() + timedelta(seconds=island.clock_offset_s),
                None if last is None else _record(last),
            )

        return self.db.run(read, what="show clock", read_only=True)

    def history(self, island_id: int, limit: int = 50) -> list[ClockRecord]:
        def read(conn: Connection) -> list[ClockRecord]:
            self._island(conn, island_id)
            rows = conn.execute(
                select(*_COLUMNS)
                .where(ClockRequest.island_id == island_id)
                .order_by(ClockRequest.id.desc())
                .limit(limit)
            ).all()
            return [_record(r) for r in rows]

        return self.db.run(read, what="clock history", read_only=True)

    def get(self, request_id: int) -> ClockRecord:
        def read(conn: Connection) -> ClockRecord:
            row = conn.execute(select(*_COLUMNS).where(ClockRequest.id == request_id)).first()
            if row is None:
                raise NotFound(messages.clock_request_not_found(request_id))
            return _record(row)

        return self.db.run(read, what="clock request", read_only=True)

    # ---- asking --------------------------------------------------------------------------------

    def shift(self, caller: Caller, island_id: int, when: When) -> ShiftOutcome:
        """The owner's or an admin's shift is applied now; anyone else's waits for a decision.
        Raises ``UserError`` (nothing written but an audit entry) when it cannot be done."""
        now = self.clock()
        immediate = False

        def write(conn: Connection) -> tuple[ClockRecord, tuple[ClockRecord, ...]]:
            nonlocal immediate
            island = self._island(conn, island_id, lock=True)
            state = IslandState(island.state)
            if state not in (IslandState.READY, IslandState.REQUESTED):
                raise Conflict(messages.clock_not_now(island_id, state.value))
            to = new_offset(when, current_offset_s=island.clock_offset_s, real_now=now)
            if out_of_bounds(to, self.settings.max_shift):
                raise UserError(messages.clock_out_of_bounds(island_id, self.settings.max_shift))
            immediate = self.policy.may(caller.user_id, Action.EXTEND, owner_id=island.owner_id)
            superseded = self._supersede(conn, island_id, by=caller.user_id)
            request_id = conn.execute(
                insert(ClockRequest).values(
                    island_id=island_id,
                    requested_by=caller.user_id,
                    requested_at=now,
                    from_offset_s=island.clock_offset_s,
                    to_offset_s=to,
                    kind=when.kind.value,
                    target_at=when.at,
                    state="applying" if immediate else PENDING,
                    decided_by=caller.user_id if immediate else None,
                    decided_at=now if immediate else None,
                    expires_at=now + self.settings.request_ttl,
                    chat_channel=caller.channel or island.chat_channel,
                )
            ).inserted_primary_key
            assert request_id is not None
            audit.record(
                conn,
                at=now,
                actor=caller.user_id,
                action="clock:shift" if immediate else "clock:request",
                outcome=audit.Outcome.OK,
                island_id=island_id,
                detail={"from": island.clock_offset_s, "to": to, "request": int(request_id[0])},
            )
            return _load(conn, int(request_id[0])), superseded

        try:
            request, superseded = self.db.run(write, what="clock shift")
        except UserError as exc:
            self._audit_refusal(caller, island_id, "clock:shift", str(exc))
            raise
        backwards = request.to_offset_s < request.from_offset_s
        if immediate:
            request = self._apply(request, actor=caller.user_id)
        return ShiftOutcome(request, immediate, backwards, superseded)

    def _supersede(self, conn: Connection, island_id: int, *, by: str) -> tuple[ClockRecord, ...]:
        rows = conn.execute(
            select(*_COLUMNS).where(
                ClockRequest.island_id == island_id, ClockRequest.state == PENDING
            )
        ).all()
        if not rows:
            return ()
        now = self.clock()
        conn.execute(
            update(ClockRequest)
            .where(ClockRequest.id.in_([r.id for r in rows]))
            .values(state="superseded", decided_by=by, decided_at=now)
        )
        return tuple(
            replace(_record(r), state="superseded", decided_by=by, decided_at=now) for r in rows
        )

    def decide(self, caller: Caller, request_id: int, *, approve: bool) -> ClockRecord:
        """The owner or an admin approves (applied now) or rejects a pending request."""
        now = self.clock()

        def write(conn: Connection) -> ClockRecord:
            row = conn.execute(
                select(*_COLUMNS).where(ClockRequest.id == request_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(messages.clock_request_not_found(request_id))
            request = _record(row)
            island = self._island(conn, request.island_id, lock=True)
            if not self.policy.may(caller.user_id, Action.EXTEND, owner_id=island.owner_id):
                raise Forbidden(
                    messages.clock_decide_not_allowed(
                        request.island_id,
                        self.policy.who_may(Action.EXTEND, island.owner_id),
                    )
                )
            if request.state != PENDING:
                raise Conflict(messages.clock_request_closed(request_id, request.state))
            if now >= request.expires_at:
                conn.execute(
                    update(ClockRequest)
                    .where(ClockRequest.id == request_id)
                    .values(state="expired", decided_at=now)
                )
                raise Conflict(messages.clock_request_closed(request_id, "expired"))
            if approve and IslandState(island.state) not in (
                IslandState.READY,
                IslandState.REQUESTED,
            ):
                raise Conflict(messages.clock_not_now(request.island_id, island.state))
            conn.execute(
                update(ClockRequest)
                .where(ClockRequest.id == request_id)
                .values(
                    state="applying" if approve else "rejected",
                    decided_by=caller.user_id,
                    decided_at=now,
                )
            )
            audit.record(
                conn,
                at=now,
                actor=caller.user_id,
                action="clock:approve" if approve else "clock:reject",
                outcome=audit.Outcome.OK,
                island_id=request.island_id,
                detail={"request": request_id},
            )
            return _load(conn, request_id)

        try:
            request = self.db.run(write, what="clock decision")
        except UserError as exc:
            self._audit_refusal(caller, None, "clock:decide", str(exc))
            raise
        if approve:
            request = self._apply(request, actor=caller.user_id)
        return request

    def expire(self) -> list[ClockRecord]:
        """Pending requests past their time become expired; returns them (their messages are
        to be updated)."""
        now = self.clock()

        def write(conn: Connection) -> list[ClockRecord]:
            rows = conn.execute(
                select(*_COLUMNS).where(
                    ClockRequest.state == PENDING, ClockRequest.expires_at <= now
                )
            ).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            conn.execute(
                update(ClockRequest)
                .where(ClockRequest.id.in_(ids), ClockRequest.state == PENDING)
                .values(state="expired", decided_at=now)
            )
            for r in rows:
                audit.record(
                    conn,
                    at=now,
                    actor=audit.SYSTEM_ACTOR,
                    action="clock:expire",
                    outcome=audit.Outcome.OK,
                    island_id=r.island_id,
                    detail={"request": r.id},
                )
            return [
                _record(r)
                for r in conn.execute(select(*_COLUMNS).where(ClockRequest.id.in_(ids))).all()
            ]

        return self.db.run(write, what="expire clock requests")

    def attach_message(self, request_id: int, channel: str, ts: str) -> None:
        self.db.run(
            lambda conn: conn.execute(
                update(ClockRequest)
                .where(ClockRequest.id == request_id)
                .values(chat_channel=channel, chat_ts=ts)
            ),
            what="clock request message",
        )

    # ---- applying ------------------------------------------------------------------------------

    def _apply(self, request: ClockRecord, *, actor: str) -> ClockRecord:
        """Carry out an ``applying`` request; one at a time per island (a lease in the
        database, so two replicas cannot interleave their writes to one clock file)."""
        lease = LeaderLease(self.db, name=f"clock-{request.island_id}", ttl=timedelta(seconds=60))
        deadline = time.monotonic() + 30
        while not lease.try_acquire():
            if time.monotonic() > deadline:
                return self._finish(request, actor, error=messages.clock_busy(request.island_id))
            time.sleep(0.2)
        try:
            return self._apply_locked(request, actor)
        finally:
            lease.release()

    def _apply_locked(self, request: ClockRecord, actor: str) -> ClockRecord:
        island = self.db.run(
            lambda conn: self._island(conn, request.island_id), what="island clock", read_only=True
        )
        now = self.clock()
        current = int(island.clock_offset_s)
        if request.kind == WhenKind.ABSOLUTE and request.target_at is not None:
            to = round((request.target_at - now).total_seconds())  # lands where it was meant
        elif request.kind == WhenKind.NOW:
            to = 0
        else:
            to = current + (request.to_offset_s - request.from_offset_s)
        if out_of_bounds(to, self.settings.max_shift):
            return self._finish(
                request,
                actor,
                error=messages.clock_out_of_bounds(request.island_id, self.settings.max_shift),
            )
        state = IslandState(island.state)
        if state == IslandState.REQUESTED:
            return self._finish(request, actor, from_s=current, to_s=to)  # its pod starts there
        if state != IslandState.READY:
            return self._finish(
                request, actor, error=messages.clock_not_now(request.island_id, state.value)
            )
        try:
            self._write_clock_file(island.pod_name, to)
        except (KubeError, ClockWriteError) as exc:
            log.warning("island %d: clock not applied: %s", request.island_id, exc)
            return self._finish(request, actor, error=str(exc))
        try:
            self.kube.annotate_pod(island.pod_name, {"islandbot.io/clock-offset-seconds": str(to)})
        except KubeError as exc:  # only a mirror: the database is the source of truth
            log.warning("island %d: clock annotation not updated: %s", request.island_id, exc)
        return self._finish(request, actor, from_s=current, to_s=to)

    def _write_clock_file(self, pod: str, offset_s: int) -> None:
        content = faketime_relative(offset_s)
        if not valid_relative_content(content):  # bad content can kill the server
            raise ClockWriteError(f"refusing to write {content!r} into the clock file")
        view = self.kube.get_pod(pod)
        if view is None:
            raise ClockWriteError("the island's pod is gone")
        path = view.server_env.get(CLOCK_FILE_ENV)
        if not path:
            raise ClockWriteError(f"the server container has no {CLOCK_FILE_ENV}")
        script = 'printf "%s\\n" "$1" > "$2.islandbot-tmp" && mv -f "$2.islandbot-tmp" "$2"'
        result = self.kube.exec(
            pod,
            container=SERVER_CONTAINER,
            command=["sh", "-c", script, "sh", content, path],
        )
        if result.exit_code != 0:
            raise ClockWriteError(
                f"writing the clock file failed (exit {result.exit_code}): "
                f"{shlex.quote(result.stderr.strip()[:200])}"
            )
        expected_offset = offset_s
        deadline = time.monotonic() + VERIFY_WITHIN_S
        seen = None
        while time.monotonic() < deadline:
            check = self.kube.exec(pod, container=SERVER_CONTAINER, command=["date", "+%s"])
            real = self.clock().timestamp()
            if check.exit_code == 0 and check.stdout.strip().lstrip("-").isdigit():
                seen = int(check.stdout.strip()) - real
                if abs(seen - expected_offset) <= VERIFY_TOLERANCE_S:
                    return
            time.sleep(0.5)
        raise ClockWriteError(
            "the island's clock did not move as expected: "
            + (f"it reads {round(seen)}s" if seen is not None else "it could not be read")
            + f" from real time, not {expected_offset}s"
        )

    def _finish(
        self,
        request: ClockRecord,
        actor: str,
        *,
        from_s: int | None = None,
        to_s: int | None = None,
        error: str | None = None,
    ) -> ClockRecord:
        now = self.clock()

        def write(conn: Connection) -> ClockRecord:
            if error is None:
                assert from_s is not None and to_s is not None
                conn.execute(
                    update(Island).where(Island.id == request.island_id).values(clock_offset_s=to_s)
                )
                conn.execute(
                    update(ClockRequest)
                    .where(ClockRequest.id == request.id)
                    .values(state="applied", applied_at=now, from_offset_s=from_s, to_offset_s=to_s)
                )
                notice = (
                    Notice.CLOCK_SHIFTED,
                    {
                        "by": request.requested_by,
                        "approved_by": actor,
                        "from_clock": self._shown(now, from_s),
                        "to_clock": self._shown(now, to_s),
                        "shift": describe_shift(from_s, to_s),
                    },
                )
            else:
                conn.execute(
                    update(ClockRequest)
                    .where(ClockRequest.id == request.id)
                    .values(state="failed", failure_reason=error[:1000])
                )
                notice = (Notice.CLOCK_FAILED, {"by": request.requested_by, "error": error[:300]})
            conn.execute(
                insert(OutboxMessage).values(
                    island_id=request.island_id,
                    kind=notice[0].value,
                    detail=notice[1],
                    created_at=now,
                )
            )
            audit.record(
                conn,
                at=now,
                actor=actor,
                action="clock:applied" if error is None else "clock:failed",
                outcome=audit.Outcome.OK if error is None else audit.Outcome.ERROR,
                island_id=request.island_id,
                detail={"request": request.id, "to": to_s} if error is None else {"error": error},
            )
            return _load(conn, request.id)

        return self.db.run(write, what="clock result")

    def _shown(self, now: datetime, offset_s: int) -> str:
        return messages.clock_time(now + timedelta(seconds=offset_s), self.settings.tz)

    def _audit_refusal(
        self, caller: Caller, island_id: int | None, action: str, reason: str
    ) -> None:
        self.db.run(
            lambda conn: audit.record(
                conn,
                at=self.clock(),
                actor=caller.user_id,
                action=action,
                outcome=audit.Outcome.REFUSED,
                island_id=island_id,
                detail={"reason": reason},
            ),
            what="audit refusal",
        )


class ClockWriteError(Exception):
    """The clock file could not be written or the clock did not move as expected."""
