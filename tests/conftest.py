"""Fixtures shared by the whole suite.

Database tests run against every backend: SQLite always, and MariaDB/MySQL: the server
``ISLANDBOT_TEST_MYSQL_URL`` names (CI sets it), else a throwaway one the session starts when a
server is installed (tests/mysqlserver.py). They skip, saying what to install, only when neither
is there; a named server that does not answer, or a throwaway one that does not start, fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.infra.kubernetes.templates import TemplateSet, load_templates
from bot.infra.storage.database import Database, create_database
from bot.words import catalogue
from tests import dbutil, mysqlserver


@pytest.fixture(scope="session")
def templates() -> TemplateSet:
    """The shipped island templates, loaded and validated once."""
    return load_templates()


@pytest.fixture(scope="session")
def throwaway_mysql_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MariaDB/MySQL server of the session's own, in a temporary directory on a free port."""
    binaries = mysqlserver.find_binaries()
    if binaries is None:
        pytest.skip(mysqlserver.MISSING)
    with ExitStack() as stack:
        try:
            url = stack.enter_context(
                mysqlserver.throwaway_server(binaries, tmp_path_factory.mktemp("mysql"))
            )
        except mysqlserver.ServerDidNotStart as exc:
            pytest.fail(str(exc), pytrace=False)
        yield url


@pytest.fixture(scope="session")
def mysql_base_url(request: pytest.FixtureRequest) -> str:
    url = dbutil.mysql_url()
    if url is None:
        return str(request.getfixturevalue("throwaway_mysql_url"))
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


@pytest.fixture(autouse=True)
def _deployment_language_back_to_english() -> Iterator[None]:
    """A bot built in a test sets its process's deployment language; the next test starts in
    English again."""
    yield
    catalogue.set_deployment_language(catalogue.SOURCE)
