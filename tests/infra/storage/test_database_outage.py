"""The database unreachable (issue 21): every way it shows (refused, reset, a connection the
driver finds closed, no pooled connection free in time) is one expected fault,
``DatabaseUnavailable``, told once in the log when it begins and once when it ends."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, text

from bot.domain.errors import DatabaseUnavailable, IslandbotError
from bot.infra import metrics
from bot.infra.storage.database import Database, create_database
from tests.tcpproxy import TcpProxy, database_behind_proxy


def select_one(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


def test_no_pooled_connection_free_in_time_is_the_database_unavailable(db_url: str) -> None:
    """SQLAlchemy's pool ``TimeoutError`` is no ``DBAPIError``: it used to pass through as a
    plain exception, and an acknowledged command was answered "sorry" and dropped."""
    engine = sa.create_engine(db_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    db = Database(engine)
    held = engine.connect()  # the pool's only connection
    try:
        with pytest.raises(DatabaseUnavailable, match="pool test: the database is unreachable"):
            db.run(select_one, what="pool test")
    finally:
        held.close()
    assert db.run(select_one, what="pool test") == 1
    engine.dispose()


@pytest.mark.mysql
def test_a_connection_the_driver_finds_closed_is_the_database_unavailable(
    mysql_session_url: str,
) -> None:
    """PyMySQL raises ``InterfaceError`` on a connection already closed (a dropped connection
    it had noticed); it used to pass through ``Database.run`` unwrapped."""
    db = create_database(mysql_session_url)

    def on_a_closed_connection(conn: Connection) -> int:
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
        return select_one(conn)

    with pytest.raises(DatabaseUnavailable) as caught:
        db.run(on_a_closed_connection, what="closed")
    assert isinstance(caught.value, IslandbotError)
    assert type(caught.value.__cause__).__name__ == "InterfaceError"
    assert db.run(select_one, what="after") == 1  # the pool threw the dead connection away
    db.dispose()


@pytest.fixture
def proxied(mysql_session_url: str) -> Iterator[tuple[Database, TcpProxy]]:
    with database_behind_proxy(mysql_session_url) as proxied_db:
        yield proxied_db


@pytest.mark.mysql
def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    proxied: tuple[Database, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    db, proxy = proxied
    caplog.set_level(logging.DEBUG, logger="bot")
    assert db.run(select_one, what="before") == 1
    before = metrics.DATABASE_UNREACHABLE._value.get()
    proxy.outage(1.5)  # open connections reset, new ones refused
    failures = []
    for i in range(12):
        try:
            db.run(select_one, what=f"job {i}", read_only=i % 2 == 0)
        except DatabaseUnavailable as exc:
            failures.append(exc)
    assert len(failures) == 12
    assert failures[-1].down_for_s >= failures[0].down_for_s >= 0
    assert metrics.DATABASE_UNREACHABLE._value.get() - before == 12
    assert metrics.DATABASE_UP._value.get() == 0
    threading.Event().wait(1.6)
    assert db.run(select_one, what="after") == 1
    assert metrics.DATABASE_UP._value.get() == 1
    told = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert len(told) == 2, told
    (warning, went), (info, back) = told
    assert warning == "WARNING" and went.startswith("the database is unreachable (job 0: (")
    assert info == "INFO" and back.startswith("the database answers again after")
    assert back.endswith("(12 operations failed meanwhile)")
    assert not any(r.exc_info for r in caplog.records)
    assert db.health.outages == 1


@pytest.mark.mysql
def test_a_stalled_connection_resumes_where_it_was(proxied: tuple[Database, TcpProxy]) -> None:
    """Connections that hang without closing (a partition that heals) finish their work once
    the stall ends: nothing is reported, nothing is lost."""
    db, proxy = proxied
    assert db.run(select_one, what="before") == 1
    proxy.stall(1.0)
    assert db.run(select_one, what="stalled") == 1
    assert not db.health.down and db.health.outages == 0


def test_a_sqlite_file_that_cannot_be_opened_is_the_database_unavailable(tmp_path: object) -> None:
    db = create_database(f"sqlite:///{tmp_path}/missing/dir/islandbot.db")
    with pytest.raises(DatabaseUnavailable, match="open: the database is unreachable"):
        db.run(select_one, what="open")
    db.dispose()


def test_an_error_in_what_was_asked_is_a_bug_not_an_outage(db_url: str) -> None:
    """An unknown column (a migration not run, a typo) is an ``OperationalError`` on both
    drivers: raised as it is, for a traceback, and the database is not reported unreachable."""
    db = create_database(db_url)
    with pytest.raises(sa.exc.OperationalError) as caught:
        db.run(lambda conn: conn.execute(text("SELECT no_such_column FROM islands")), what="bug")
    assert not isinstance(caught.value, IslandbotError)
    assert not db.health.down and db.health.outages == 0
    db.dispose()
