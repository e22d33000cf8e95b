"""Leader election with a lease row: among replicas sharing a database, the one holding an
unexpired lease runs the scheduled jobs; if it dies, another takes over once the lease expires.
Works on MySQL and SQLite (a conditional UPDATE decides; no session locks are held)."""

from __future__ import annotations

import logging
import platform
import uuid
from datetime import timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Lease

log = logging.getLogger(__name__)


class LeaderLease:
    def __init__(
        self,
        db: Database,
        *,
        name: str = "reconciler",
        ttl: timedelta = timedelta(seconds=10),
        holder: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.holder = holder or f"{platform.node()}/{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.is_leader = False

    def try_acquire(self) -> bool:
        """Take or renew the lease; True while this replica leads. Call every ttl/3."""
        try:
            leading = self.db.run(self._acquire, what="leader lease")
        except IntegrityError:  # two replicas created the row at once; the other won
            leading = False
        if leading != self.is_leader:
            log.info(
                "%s %s leadership of %s", self.holder, "took" if leading else "lost", self.name
            )
        self.is_leader = leading
        return leading

    def _acquire(self, conn: Connection) -> bool:
        now = self.clock()
        expires = now + self.ttl
        taken = conn.execute(
            update(Lease)
            .where(
                Lease.name == self.name, (Lease.holder == self.holder) | (Lease.expires_at < now)
            )
            .values(holder=self.holder, expires_at=expires, renewed_at=now)
        ).rowcount
        if taken:
            return True
        exists = conn.execute(select(Lease.name).where(Lease.name == self.name)).first()
        if exists is not None:
            return False
        conn.execute(
            insert(Lease).values(
                name=self.name, holder=self.holder, expires_at=expires, renewed_at=now
            )
        )
        return True

    def release(self) -> None:
        """Give the lease up at once (graceful shutdown), so another replica need not wait."""

        def give_up(conn: Connection) -> None:
            conn.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == self.holder)
                .values(expires_at=self.clock() - timedelta(seconds=1))
            )

        self.db.run(give_up, what="release lease")
        self.is_leader = False
