"""The durable intake: chat requests recorded before they are acknowledged, shared by every
replica through the database (the ``deliveries`` table).

``accept`` records a request with what carrying it out needs; the first to record a key wins
(Slack may deliver one request more than once: ``X-Slack-Retry-Num``, a Socket Mode envelope
sent again, two replicas each getting a copy). A worker ``claim``s it (a ticket; ``take`` is
both in one write, for a worker free at once), carries it out, and the change it makes marks
it done in the same transaction (``finish``), so it is never done twice; a request whose
worker died (pending, or working under an expired claim) is found by ``unfinished`` and
claimed again by any replica. Claims run on the database's clock.

A claim is live while its ``claim_until`` has not passed and, when the claiming process keeps a
``Heartbeat``, while that process is alive: a worker that lives keeps the request however long
its answer takes (up to the cap the caller gives), one that died lets it go within one
heartbeat.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import IslandbotError
from bot.domain.records import Accepted, WorkTicket
from bot.infra.storage.database import Database, database_now
from bot.infra.storage.heartbeat import Heartbeat, alive
from bot.infra.storage.tables import Delivery

MAX_KEY = 191
PENDING, WORKING, DONE = "pending", "working", "done"


class TicketLost(IslandbotError):
    """The request's claim is no longer this worker's (it expired and another took it, or the
    work is done): what was about to be written is rolled back."""


def stored_key(key: str) -> str:
    if len(key) > MAX_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def finish(conn: Connection, ticket: WorkTicket) -> None:
    """Inside the caller's transaction: mark the request done, or raise ``TicketLost`` (then
    the transaction, and the change it was making, is rolled back)."""
    done = conn.execute(
        update(Delivery)
        .where(
            Delivery.key == ticket.key,
            Delivery.claimed_by == ticket.claim,
            Delivery.state == WORKING,
        )
        .values(state=DONE, done_at=database_now(conn), claimed_by=None, claim_until=None)
    ).rowcount
    if not done:
        raise TicketLost(f"request {ticket.key} is no longer ours")


def _released(now: datetime) -> Any:
    """SQL: a request being worked on whose claim is no longer live."""
    return (Delivery.state == WORKING) & or_(
        Delivery.claim_until < now,
        Delivery.worker.is_not(None) & ~alive(Delivery.worker, now),
    )


class Intake:
    def __init__(self, db: Database, *, heartbeat: Heartbeat | None = None) -> None:
        """``heartbeat``: this process's; its claims live only while it beats. Without one,
        a claim lives until its ``ttl`` is over, whatever became of its worker."""
        self.db = db
        self.worker = heartbeat.name if heartbeat is not None else None
        self.owner = heartbeat.instance if heartbeat is not None else uuid.uuid4().hex[:12]

    def first(self, key: str) -> bool:
        """Record ``key`` as done at once; True only for the first caller anywhere (a
        delivery to act on once, whose work needs no recovery)."""
        return self._insert(key, state=DONE, kind=None, payload=None)

    def accept(self, key: str, kind: str, payload: Mapping[str, Any]) -> bool:
        """Record a request to carry out; False when its key was recorded before (a retry)."""
        return self._insert(key, state=PENDING, kind=kind, payload=dict(payload))

    def ticket(self, key: str) -> WorkTicket:
        """A new claim on ``key``, for ``take``: known before its write, so that a write whose
        commit may or may not have happened can be given back (``release``)."""
        return WorkTicket(stored_key(key), self._new_claim())

    def take(
        self, ticket: WorkTicket, kind: str, payload: Mapping[str, Any], *, ttl: timedelta
    ) -> Accepted | None:
        """``accept`` and ``claim`` in one write, for a worker idle now: the request recorded
        as being carried out under ``ticket``; None when its key was recorded before (a
        retry). A worker that dies before finishing it lets it go as any claim."""
        claim = (ticket.claim, ttl)
        if not self._insert(
            ticket.key, state=WORKING, kind=kind, payload=dict(payload), claim=claim
        ):
            return None
        return Accepted(ticket, kind, dict(payload), 1)

    def _new_claim(self) -> str:
        return f"{self.owner}/{uuid.uuid4().hex[:12]}"

    def _insert(
        self,
        key: str,
        *,
        state: str,
        kind: str | None,
        payload: dict[str, Any] | None,
        claim: tuple[str, timedelta] | None = None,
    ) -> bool:
        def write(conn: Connection) -> None:
            now = database_now(conn)  # ages are judged on the database's clock
            taken: dict[str, Any] = {}
            if claim is not None:
                taken = {
                    "claimed_by": claim[0],
                    "claim_until": now + claim[1],
                    "worker": self.worker,
                    "attempts": 1,
                }
            conn.execute(
                insert(Delivery).values(
                    key=stored_key(key),
                    seen_at=now,
                    kind=kind,
                    payload=payload,
                    state=state,
                    done_at=now if state == DONE else None,
                    **taken,
                )
            )

        try:
            self.db.run(write, what="record delivery")
        except IntegrityError:
            return False
        return True

    def claim(self, key: str, *, ttl: timedelta) -> Accepted | None:
        """Take the request for carrying out, if it is pending or its claim is no longer live;
        None when it is done or another live worker holds it. ``ttl``: the longest the claim
        lives (a worker that hangs does not hold it for ever)."""
        stored = stored_key(key)
        claim = self._new_claim()

        def write(conn: Connection) -> Accepted | None:
            now = database_now(conn)
            taken = conn.execute(
                update(Delivery)
                .where(
                    Delivery.key == stored,
                    or_(Delivery.state == PENDING, _released(now)),
                )
                .values(
                    state=WORKING,
                    claimed_by=claim,
                    claim_until=now + ttl,
                    worker=self.worker,
                    attempts=Delivery.attempts + 1,
                )
            ).rowcount
            if not taken:
                return None
            row = conn.execute(
                select(Delivery.kind, Delivery.payload, Delivery.attempts).where(
                    Delivery.key == stored
                )
            ).one()
            return Accepted(
                WorkTicket(stored, claim), str(row.kind), row.payload or {}, row.attempts
            )

        return self.db.run(write, what="claim delivery")

    def release(self, ticket: WorkTicket, *, after: timedelta) -> bool:
        """Give the request back ``after`` from now, unless the claim is no longer this
        worker's: its work met a fault expected to pass (the database, the cluster), and any
        replica's recovery carries it out again then, not after the claim's cap (its worker
        lives on: its heartbeat would hold the claim)."""

        def write(conn: Connection) -> bool:
            released = conn.execute(
                update(Delivery)
                .where(
                    Delivery.key == ticket.key,
                    Delivery.claimed_by == ticket.claim,
                    Delivery.state == WORKING,
                )
                .values(claim_until=database_now(conn) + after, worker=None)
            ).rowcount
            return bool(released)

        return self.db.run(write, what="delivery released")

    def done(self, ticket: WorkTicket) -> None:
        """Mark the request done, unless its change already did (or the claim was lost). A
        read first: a change (a start, a stop) finishes its request in its own transaction,
        and a read takes no write lock (SQLite has one writer)."""

        def ours(conn: Connection) -> bool:
            return (
                conn.execute(
                    select(Delivery.key).where(
                        Delivery.key == ticket.key,
                        Delivery.claimed_by == ticket.claim,
                        Delivery.state == WORKING,
                    )
                ).first()
                is not None
            )

        if not self.db.run(ours, what="delivery done?", read_only=True):
            return

        def write(conn: Connection) -> None:
            try:
                finish(conn, ticket)
            except TicketLost:
                return

        self.db.run(write, what="delivery done")

    def unfinished(self, *, older_than: timedelta, limit: int = 100) -> list[str]:
        """Keys of requests accepted more than ``older_than`` ago and not done: pending, or
        working under a claim no longer live (their worker died or hung)."""

        def read(conn: Connection) -> list[str]:
            now = database_now(conn)
            rows = conn.execute(
                select(Delivery.key)
                .where(
                    or_(
                        (Delivery.state == PENDING) & (Delivery.seen_at < now - older_than),
                        _released(now),
                    )
                )
                .order_by(Delivery.seen_at)
                .limit(limit)
            ).all()
            return [str(r.key) for r in rows]

        return self.db.run(read, what="unfinished deliveries", read_only=True)
