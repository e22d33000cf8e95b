"""Leases in the database: among replicas sharing it, the holder of an unexpired lease does
the work the lease names (``reconciler``: the lifecycle loop; ``clock-<id>``: one island's
clock change). If the holder dies, another takes over once the lease expires.

Time is the database server's (``database_now``), so a replica whose own clock is skewed can
neither steal a lease early nor keep one late. Every change of hands raises the lease's
``epoch``: work done for a holder is accepted only while ``fence`` finds the lease still
held with that epoch (a deposed leader's writes are refused). Works on MySQL and SQLite: a
conditional UPDATE decides; no session locks are held.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain.errors import IslandbotError, log_failure
from bot.infra.storage.database import Database, database_now
from bot.infra.storage.tables import Lease

log = logging.getLogger(__name__)


class Deposed(IslandbotError):
    """This replica no longer holds the lease it acted under."""


class LeaderLease:
    def __init__(
        self,
        db: Database,
        *,
        name: str = "reconciler",
        ttl: timedelta = timedelta(seconds=10),
        holder: str | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        # host/pid/random: which process holds a lease is plain in the table and the logs
        self.holder = holder or f"{platform.node()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self.is_leader = False
        self.epoch = 0  # the epoch this replica holds the lease with (0: never held)
        self._lapsing = threading.Lock()

    def try_acquire(self) -> bool:
        """Take or renew the lease; True while this replica holds it. Call every ttl/3."""
        try:
            leading = self.db.run(self._acquire, what="leader lease")
        except IntegrityError:  # two replicas created the row at once; the other won
            leading = False
        if leading and not self.is_leader:
            log.info("%s took leadership of %s (epoch %d)", self.holder, self.name, self.epoch)
        elif self.is_leader and not leading:
            self.lapse("another replica holds its lease now")
        self.is_leader = leading
        return leading

    def lapse(self, why: str) -> None:
        """Stop acting as the holder (this replica can no longer be sure it holds the lease),
        saying so once, however many of its jobs find it out at the same time: a leader that
        stops leading is worth a line in the log."""
        with self._lapsing:
            was, self.is_leader = self.is_leader, False
        if was:
            log.warning(
                "%s stopped leading %s (epoch %d): %s", self.holder, self.name, self.epoch, why
            )

    def _acquire(self, conn: Connection) -> bool:
        now = database_now(conn)
        expires = now + self.ttl
        mine = conn.execute(
            update(Lease)
            .where(Lease.name == self.name, Lease.holder == self.holder)
            .values(expires_at=expires, renewed_at=now)
        ).rowcount
        if not mine:
            mine = conn.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.expires_at < now)
                .values(
                    holder=self.holder,
                    expires_at=expires,
                    renewed_at=now,
                    epoch=Lease.epoch + 1,
                )
            ).rowcount
        if mine:
            self.epoch = int(
                conn.execute(select(Lease.epoch).where(Lease.name == self.name)).scalar_one()
            )
            return True
        exists = conn.execute(select(Lease.name).where(Lease.name == self.name)).first()
        if exists is not None:
            return False
        conn.execute(
            insert(Lease).values(
                name=self.name, holder=self.holder, expires_at=expires, renewed_at=now, epoch=1
            )
        )
        self.epoch = 1
        return True

    def fence(self, conn: Connection) -> None:
        """Inside the caller's transaction: raise ``Deposed`` unless this replica still holds
        the lease, unexpired, with the epoch it took it with. It does not lock the lease row:
        a leader frozen inside such a transaction (SIGSTOP, a long GC) would hold that lock,
        and no other replica could take the lease over until it woke. So the lease may change
        hands between this check and the commit; what is written under it is guarded on its
        own (a decision only while its island is as it was read, a claim only while free)."""
        row = conn.execute(
            select(Lease.holder, Lease.epoch, Lease.expires_at).where(Lease.name == self.name)
        ).first()
        if (
            row is None
            or row.holder != self.holder
            or int(row.epoch) != self.epoch
            or row.expires_at <= database_now(conn)
        ):
            self.lapse("its lease expired or changed hands while it worked")
            raise Deposed(f"{self.holder} no longer holds {self.name} (epoch {self.epoch})")

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the (held) lease every ttl/3 while the block runs, then release it: work
        that may outlast the lease's ttl keeps it to the end."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.ttl.total_seconds() / 3):
                try:
                    self.try_acquire()
                except Exception as exc:  # never end silently: try again at the next turn
                    log_failure(log, f"renewing {self.name} failed", exc)

        keeper = threading.Thread(target=renew, name=f"lease-{self.name}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join(timeout=10)
            self.release()

    def release(self) -> None:
        """Give the lease up at once (graceful shutdown), so another replica need not wait."""

        def give_up(conn: Connection) -> None:
            conn.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == self.holder)
                .values(expires_at=database_now(conn) - timedelta(seconds=1))
            )

        self.db.run(give_up, what="release lease")
        self.is_leader = False
