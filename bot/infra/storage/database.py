"""The database boundary: engine set-up for SQLite and MySQL, and retried transactions.

SQLite (the embedded default) gets WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` for
every transaction that may write, so concurrent writers (threads or processes) queue instead of
interleaving; transactions that only read (``read_only=True``) take no lock and wait for none.
MySQL gets pre-ping, recycling, utf8mb4, READ COMMITTED and a short lock wait.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.domain.errors import DatabaseError, DatabaseUnavailable
from bot.infra.storage.db_health import DatabaseHealth

log = logging.getLogger(__name__)

T = TypeVar("T")

# MySQL/MariaDB error codes worth retrying the whole transaction for.
MYSQL_DEADLOCK = 1213
MYSQL_LOCK_WAIT_TIMEOUT = 1205
_RETRYABLE_MYSQL = frozenset({MYSQL_DEADLOCK, MYSQL_LOCK_WAIT_TIMEOUT})

DEFAULT_ATTEMPTS = 8
MYSQL_LOCK_WAIT_S = 10
SQLITE_BUSY_S = 10  # how long a SQLite writer waits for the lock


def is_retryable(exc: BaseException) -> bool:
    """True for a deadlock or lock timeout: the transaction can simply be run again."""
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return False
    args = getattr(exc.orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _RETRYABLE_MYSQL
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


# MySQL/MariaDB codes that mean the server cannot be reached or dropped the connection: can't
# connect (2002, 2003), gone away (2006), lost (2013, 2055), too many connections (1040), shutting
# down (1053), connection killed (1927), disconnected for inactivity (4031)
_UNREACHABLE_MYSQL = frozenset({2002, 2003, 2006, 2013, 2055, 1040, 1053, 1927, 4031})


def is_unreachable(exc: BaseException) -> bool:
    """True when the database could not be reached or the connection broke: refused, reset,
    gone away, lost (the MySQL client and server codes that say so, PyMySQL's
    ``InterfaceError`` on a dropped connection, any error SQLAlchemy took for a disconnect, a
    SQLite file that cannot be opened), or no pooled connection came free in time (the pool's
    ``TimeoutError``). Not a deadlock or a lock wait, and not an error in what was asked (an
    unknown column, a constraint): that is a bug, raised as it is."""
    if isinstance(exc, PoolTimeout | DisconnectionError):
        return True
    if not isinstance(exc, DBAPIError) or is_retryable(exc):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    args = getattr(exc.orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in _UNREACHABLE_MYSQL
    return isinstance(exc, OperationalError) and "unable to open database file" in str(exc.orig)


class Database:
    """An engine plus a retrying transaction runner. One per process."""

    def __init__(
        self,
        engine: Engine,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        health: DatabaseHealth | None = None,
    ) -> None:
        """``health``: shared by every engine of one process on one database (it is told
        once that the database went, whichever noticed)."""
        self.engine = engine
        self._reader = engine.execution_options(islandbot_read_only=True)
        self.attempts = attempts
        self._retries = 0
        self._lock = threading.Lock()
        # SQLite has one writer at a time. Threads of this process queue for it here, woken as
        # soon as it is free, instead of polling SQLite's busy handler (which sleeps up to
        # 100 ms between tries); other processes still meet at BEGIN IMMEDIATE.
        self._writer = threading.RLock() if engine.dialect.name == "sqlite" else None
        self.write_wait_s: float = SQLITE_BUSY_S
        self.health = health or DatabaseHealth()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``mysql``."""
        return self.engine.dialect.name

    @property
    def retries(self) -> int:
        """How many transactions were run again after a deadlock or lock timeout."""
        return self._retries

    def run(self, work: Callable[[Connection], T], *, what: str, read_only: bool = False) -> T:
        """Run ``work`` in one transaction; run it again on deadlock/lock timeout (bounded).

        ``work`` must be safe to run again: it sees a fresh transaction each time. A database
        that cannot be reached raises ``DatabaseUnavailable`` (and is logged once, by
        ``health``, until it answers again); any other error is raised at once. ``what`` names
        the operation in logs and errors.
        ``read_only`` (SQLite): a plain deferred transaction that never waits for writers (WAL),
        instead of queueing for the write lock like every other transaction.
        """
        engine = self._reader if read_only else self.engine
        for attempt in range(1, self.attempts + 1):
            try:
                with self._writing(read_only, what), engine.begin() as conn:
                    result = work(conn)
            except (DBAPIError, PoolTimeout, DisconnectionError) as exc:
                if is_unreachable(exc):
                    down_for = self.health.failed(what, _cause(exc))
                    raise DatabaseUnavailable(
                        f"{what}: the database is unreachable ({_cause(exc)})", down_for_s=down_for
                    ) from exc
                if not is_retryable(exc):
                    raise
                if attempt == self.attempts:
                    raise DatabaseError(
                        f"{what}: still conflicting after {attempt} attempts"
                    ) from exc
                with self._lock:
                    self._retries += 1
                delay = min(0.2, 0.005 * 2**attempt) * random.uniform(0.5, 1.5)  # noqa: S311
                log.debug("%s: retrying after %s (attempt %d)", what, _cause(exc), attempt)
                time.sleep(delay)
            else:
                self.health.succeeded()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _writing(self, read_only: bool, what: str) -> Iterator[None]:
        if self._writer is None or read_only:
            yield
            return
        if not self._writer.acquire(timeout=self.write_wait_s):  # as long as SQLite would wait
            raise DatabaseError(f"{what}: the database stayed locked for {self.write_wait_s} s")
        try:
            yield
        finally:
            self._writer.release()

    def ping(self) -> None:
        """Raise ``DatabaseError`` (an ``IslandbotError``) unless the database answers."""
        self.run(lambda conn: conn.execute(text("SELECT 1")), what="ping", read_only=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _cause(exc: BaseException) -> str:
    """The driver's own words (``(2003, "Can't connect ...")``), without SQLAlchemy's SQL echo."""
    orig = getattr(exc, "orig", None)
    return str(orig) if orig is not None else str(exc).split("\n", 1)[0]


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event emit BEGIN
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_S * 1000}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get("islandbot_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def database_now(conn: Connection) -> datetime:
    """The database server's clock, in UTC: the one clock every replica shares (leases and
    claims are compared against it, never against a replica's own, which may be skewed)."""
    if conn.dialect.name == "mysql":
        value = conn.exec_driver_sql("SELECT UTC_TIMESTAMP(6)").scalar_one()
    else:
        text_value = conn.exec_driver_sql("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
        value = datetime.fromisoformat(str(text_value.scalar_one()))
    if not isinstance(value, datetime):  # pragma: no cover - both drivers return datetimes
        raise DatabaseError(f"the database's clock read {value!r}")
    return value.replace(tzinfo=UTC)


def create_database(
    url: str, *, pool_size: int = 10, echo: bool = False, health: DatabaseHealth | None = None
) -> Database:
    """Build the engine for ``url`` with the settings its backend needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": SQLITE_BUSY_S})
        _sqlite_setup(engine)
    elif parsed.get_backend_name() == "mysql":
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        engine = create_engine(
            parsed,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=30,
            pool_pre_ping=True,
            pool_recycle=3600,  # below MySQL's wait_timeout (8 h by default)
            isolation_level="READ COMMITTED",
            connect_args={
                "connect_timeout": 10,
                "init_command": f"SET SESSION innodb_lock_wait_timeout={MYSQL_LOCK_WAIT_S}",
            },
        )
    else:
        raise DatabaseError(f"unsupported database {parsed.get_backend_name()!r}")
    return Database(engine, health=health)
