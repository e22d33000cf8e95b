"""This process, alive: a row of its own in ``leases`` (named ``process:<random>``), renewed
by a thread every ttl/3 on the database's clock.

Work a process claims (a chat request from the intake) names the process that holds it, and
the claim is live only while that process's row is: a process that dies (SIGKILL, OOM, a node
lost) lets its claims go within one ttl, so a restarted bot, or another replica, carries them
out within seconds; a process that is alive keeps its claims however long the work takes (an
answer waiting behind a paced channel), up to the claim's own cap. A graceful stop expires the
row at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, exists, insert, select, update

from bot.domain.errors import log_failure
from bot.infra.storage.database import Database, database_now
from bot.infra.storage.tables import Lease

log = logging.getLogger(__name__)

PREFIX = "process:"


def alive(worker: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: the process named in the column ``worker`` (a heartbeat's ``name``) is alive."""
    return exists(select(Lease.name).where(Lease.name == worker, Lease.expires_at > now))


class Heartbeat:
    def __init__(self, db: Database, *, instance: str, ttl: timedelta) -> None:
        """``instance``: who this process is, for people (host/pid/random, as its leases)."""
        self.db = db
        self.name = f"{PREFIX}{uuid.uuid4().hex}"  # what its claims name: unique, short
        self.instance = instance
        self.ttl = ttl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Say this process is alive for one more ttl."""

        def write(conn: Connection) -> None:
            now = database_now(conn)
            values = {"expires_at": now + self.ttl, "renewed_at": now}
            if not conn.execute(
                update(Lease).where(Lease.name == self.name).values(values)
            ).rowcount:
                conn.execute(insert(Lease).values(name=self.name, holder=self.instance, **values))

        self.db.run(write, what="heartbeat")

    def start(self) -> Heartbeat:
        """Beat now (raises if the database does not answer), then every ttl/3 in a thread."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            try:
                self.beat()
            except Exception as exc:  # the database away: beat again at the next turn
                log_failure(log, "heartbeat not renewed", exc)

    def stop(self) -> None:
        """Stop beating and let this process's claims go at once (a graceful stop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

        def expire(conn: Connection) -> None:
            conn.execute(
                update(Lease)
                .where(Lease.name == self.name)
                .values(expires_at=database_now(conn) - timedelta(seconds=1))
            )

        try:
            self.db.run(expire, what="heartbeat stop")
        except Exception as exc:
            log_failure(log, "heartbeat not ended", exc)


def forget_dead(conn: Connection, *, older_than: timedelta) -> int:
    """Housekeeping, inside the caller's transaction: the rows of processes dead longer than
    ``older_than`` (every start of the bot writes one)."""

    now = database_now(conn)
    gone = conn.execute(
        delete(Lease).where(Lease.name.startswith(PREFIX), Lease.expires_at < now - older_than)
    )
    return int(gone.rowcount)
