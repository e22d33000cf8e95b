"""The database boundary: which failures are retried, how often, and which are not."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, event
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.domain.errors import DatabaseError
from bot.infra.storage.database import Database, create_database, is_retryable
from tests import dbutil


def lock_timeout() -> OperationalError:
    return OperationalError("UPDATE t", {}, pymysql.err.OperationalError(1205, "Lock wait"))


def test_only_deadlocks_lock_timeouts_and_busy_sqlite_are_retryable() -> None:
    deadlock = OperationalError("x", {}, pymysql.err.OperationalError(1213, "Deadlock found"))
    gone = OperationalError("x", {}, pymysql.err.OperationalError(2006, "server has gone away"))
    dup = IntegrityError("x", {}, pymysql.err.IntegrityError(1062, "Duplicate entry"))
    busy = OperationalError("x", {}, sqlite3.OperationalError("database is locked"))
    assert is_retryable(deadlock) and is_retryable(lock_timeout()) and is_retryable(busy)
    assert not is_retryable(gone) and not is_retryable(dup)
    assert not is_retryable(ValueError("x"))


def test_retries_are_bounded_and_then_reported(tmp_path: Path) -> None:
    db = create_database(dbutil.sqlite_url(tmp_path))
    db.attempts = 3
    calls = []

    def always_conflicting(_conn: Connection) -> None:
        calls.append(1)
        raise lock_timeout()

    with pytest.raises(DatabaseError, match="still conflicting after 3 attempts"):
        db.run(always_conflicting, what="test")
    assert len(calls) == 3 and db.retries == 2
    db.dispose()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    db = create_database(dbutil.sqlite_url(tmp_path))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    calls = []

    def duplicate(conn: Connection) -> None:
        calls.append(1)
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")

    with pytest.raises(IntegrityError):
        db.run(duplicate, what="test")
    assert len(calls) == 1 and db.retries == 0
    db.dispose()


def test_sqlite_writers_in_two_engines_queue_instead_of_failing(tmp_path: Path) -> None:
    url = dbutil.sqlite_url(tmp_path)
    first, second = create_database(url), create_database(url)
    with first.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE c (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO c VALUES (0)")

    def bump(db: Database) -> None:
        for _ in range(50):
            db.run(lambda c: c.exec_driver_sql("UPDATE c SET n = n + 1"), what="bump")

    threads = [threading.Thread(target=bump, args=(d,)) for d in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with first.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM c").scalar() == 100
    first.dispose()
    second.dispose()


def test_sqlite_writers_of_one_process_take_turns_without_polling(tmp_path: Path) -> None:
    """With SQLite's busy handler off, writers of one process would fail with "database is
    locked" unless they queue in the process first: none fails, none is retried."""
    db = create_database(dbutil.sqlite_url(tmp_path))

    @event.listens_for(db.engine, "connect")
    def no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE c (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO c VALUES (0)")

    def bump() -> None:
        for _ in range(40):
            db.run(lambda c: c.exec_driver_sql("UPDATE c SET n = n + 1"), what="bump")

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(bump) for _ in range(8)]:
            future.result(timeout=60)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM c").scalar() == 320
    assert db.retries == 0
    db.dispose()


def test_a_sqlite_writer_that_never_gets_its_turn_is_told_so(tmp_path: Path) -> None:
    db = create_database(dbutil.sqlite_url(tmp_path))
    db.write_wait_s = 0.2
    holding, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> None:
        holding.set()
        release.wait(10)

    holder = threading.Thread(target=lambda: db.run(hold, what="hold"))
    holder.start()
    holding.wait(10)
    with pytest.raises(DatabaseError, match=r"write: the database stayed locked for 0\.2 s"):
        db.run(lambda c: c.exec_driver_sql("SELECT 1"), what="write")
    assert db.run(lambda c: c.exec_driver_sql("SELECT 1").scalar(), what="r", read_only=True)
    release.set()
    holder.join(10)
    db.dispose()


@pytest.fixture
def mysql_db(mysql_base_url: str):  # type: ignore[no-untyped-def]
    with dbutil.scratch_mysql_database(mysql_base_url) as url:
        db = create_database(url)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INT PRIMARY KEY, n INT) ENGINE=InnoDB")
            conn.exec_driver_sql(
                "INSERT INTO t VALUES " + ",".join(f"({i}, 0)" for i in range(1, 301))
            )
        yield db
        db.dispose()


@pytest.mark.mysql
def test_mysql_lock_wait_timeout_is_retried_until_it_succeeds(mysql_db: Database) -> None:
    holder = mysql_db.engine.connect()
    holder.exec_driver_sql("UPDATE t SET n = n + 1 WHERE id = 1")  # row 1 locked, not committed
    release = threading.Timer(1.5, holder.commit)
    release.start()
    attempts = []

    def work(conn: Connection) -> int:
        attempts.append(1)
        conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
        conn.exec_driver_sql("UPDATE t SET n = n + 10 WHERE id = 1")
        return int(conn.exec_driver_sql("SELECT n FROM t WHERE id = 1").scalar_one())

    try:
        assert mysql_db.run(work, what="test") == 11
    finally:
        release.join()
        holder.close()
    assert len(attempts) >= 2 and mysql_db.retries == len(attempts) - 1


@pytest.mark.mysql
def test_mysql_deadlock_victim_is_retried(mysql_db: Database) -> None:
    # The other transaction changes many rows, so InnoDB picks ours (the smaller) as victim.
    other = mysql_db.engine.connect()
    other.exec_driver_sql("UPDATE t SET n = n + 1 WHERE id >= 2")  # locks rows 2..300
    ours_locked = threading.Event()
    attempts = []

    def work(conn: Connection) -> str:
        attempts.append(1)
        conn.exec_driver_sql("UPDATE t SET n = n + 1 WHERE id = 1")
        if len(attempts) == 1:
            ours_locked.set()
            time.sleep(0.3)  # let the other transaction queue behind row 1
        conn.exec_driver_sql("UPDATE t SET n = n + 1 WHERE id = 2")
        return "done"

    def other_side() -> None:
        ours_locked.wait(timeout=10)
        other.exec_driver_sql("UPDATE t SET n = n + 1 WHERE id = 1")  # waits on us: cycle
        other.commit()

    thread = threading.Thread(target=other_side)
    thread.start()
    try:
        assert mysql_db.run(work, what="test") == "done"
    finally:
        thread.join(timeout=30)
        other.close()
    assert len(attempts) == 2 and mysql_db.retries == 1
    with mysql_db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM t WHERE id = 1")).scalar() == 2
