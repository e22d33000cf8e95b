"""Fixtures shared by the whole suite.

Database tests run against every backend: SQLite always, MariaDB/MySQL when
``ISLANDBOT_TEST_MYSQL_URL`` is set (CI sets it). When it is set but the server does not answer,
the suite fails loudly instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.infra.kubernetes.templates import TemplateSet, load_templates
from bot.infra.storage.database import Database, create_database
from tests import dbutil


@pytest.fixture(scope="session")
def templates() -> TemplateSet:
    """The shipped island templates, loaded and validated once."""
    return load_templates()


@pytest.fixture(scope="session")
def mysql_base_url() -> str:
    url = dbutil.mysql_url()
    if url is None:
        pytest.skip(
            f"MariaDB/MySQL tests need {dbutil.MYSQL_ENV} "
            "(e.g. mysql+pymysql://root@127.0.0.1:3306/test)"
        )
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"{dbutil.MYSQL_ENV} is set but the server does not answer: {exc}", pytrace=False
        )
    return url


@pytest.fixture(scope="session")
def mysql_session_url(mysql_base_url: str) -> Iterator[str]:
    """One migrated scratch database for the whole session (tests wipe it between them)."""
    with dbutil.scratch_mysql_database(mysql_base_url) as url:
        db = dbutil.migrated(url)
        db.dispose()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL on each backend."""
    if request.param == "sqlite":
        url = dbutil.sqlite_url(tmp_path)
        dbutil.migrated(url).dispose()
        return url
    url = str(request.getfixturevalue("mysql_session_url"))
    wiper = dbutil.migrated(url)  # no-op upgrade; also proves the schema is current
    dbutil.wipe(wiper)
    wiper.dispose()
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = create_database(db_url)
    yield database
    database.dispose()
