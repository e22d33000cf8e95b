"""This process, alive: a row of its own in ``leases`` (named ``process:<random>``), renewed
by a thread every ttl/3 on the database's clock.

Work a process claims (a chat request from the intake) names the process that holds it, and
the claim is live only while that process's row is: a process that dies (SIGKILL, OOM, a node
lost) lets its claims go within one ttl, so a restarted bot, or another replica, carries them
out within seconds; a process that is alive keeps its claims however long the work takes (an
answer waiting behind a paced channel), up to the claim's own cap. A graceful stop expires the
row at once.

A process that was paused (SIGSTOP, a long GC, a frozen VM) or cut off from the database for
longer than its row lives was dead in the others' eyes meanwhile: they may have taken its work
over. It knows it from its own monotonic clock (which runs on while a process is stopped):
``holds(token)`` is False for a token taken before such a lapse, and while the last beat is too
old; the chat adapter asks it right before each call it queued (``bot.chat.output.Liveness``),
so a paused leader that wakes does not post what its successor posted already.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, exists, insert, select, update

from bot.domain.errors import log_failure
from bot.infra.storage.database import Database, database_now
from bot.infra.storage.tables import Lease

log = logging.getLogger(__name__)

PREFIX = "process:"
BEAT_EVERY = 1 / 3  # of the ttl: how often the row is renewed
# of the ttl: a last beat older than this may have expired in the others' eyes (a margin for the
# write's own time); then the process acts on nothing it took on before
FRESH_FOR = 5 / 6


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
        self._fresh_s = ttl.total_seconds() * FRESH_FOR
        self._beat_at = float("-inf")  # time.monotonic() when the last good beat began
        self._generation = 0  # raised by each beat that follows a lapse
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def token(self) -> int:
        """What ``holds`` later checks: the beats since the last lapse."""
        with self._lock:
            return self._generation

    def holds(self, token: int) -> bool:
        """True while no lapse came since ``token`` was taken and the last beat is fresh."""
        with self._lock:
            fresh = time.monotonic() - self._beat_at < self._fresh_s
            return fresh and token == self._generation

    def beat(self) -> None:
        """Say this process is alive for one more ttl."""
        began = time.monotonic()

        def write(conn: Connection) -> None:
            now = database_now(conn)
            values = {"expires_at": now + self.ttl, "renewed_at": now}
            if not conn.execute(
                update(Lease).where(Lease.name == self.name).values(values)
            ).rowcount:
                conn.execute(insert(Lease).values(name=self.name, holder=self.instance, **values))

        self.db.run(write, what="heartbeat")
        with self._lock:
            if began - self._beat_at >= self._fresh_s and self._beat_at > float("-inf"):
                self._generation += 1  # lapsed: whatever was queued before is not ours now
                log.warning(
                    "this process was not heard from for %.1f s (paused, or the database "
                    "away): work it had queued is dropped, others may have taken it over",
                    began - self._beat_at,
                )
            self._beat_at = began

    def start(self) -> Heartbeat:
        """Beat now (raises if the database does not answer), then every ttl/3 in a thread."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() * BEAT_EVERY):
            try:
                self.beat()
            except Exception as exc:  # the database away: beat again at the next turn
                log_failure(log, "heartbeat not renewed", exc)

    def stop(self) -> None:
        """Stop beating and let this process's claims go at once (a graceful stop); from now
        on it holds nothing it took on (``holds`` is False)."""
        self._stop.set()
        with self._lock:
            self._beat_at = float("-inf")
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
