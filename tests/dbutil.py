"""Test databases: a fresh migrated SQLite file, or a wiped MariaDB schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.infra.storage import migrate
from bot.infra.storage.database import Database, create_database

MYSQL_ENV = "ISLANDBOT_TEST_MYSQL_URL"
# Children first, so foreign keys never object.
WIPE_ORDER = (
    "port_blocks",
    "clock_requests",
    "audit_log",
    "outbox",
    "island_memory",
    "memory_samples",
    "server_secrets",
    "pools",
    "code_versions",
    "pool_days",
    "islands",
    "users",
    "excluded_ports",
    "leases",
    "deliveries",
)


def mysql_url() -> str | None:
    return os.environ.get(MYSQL_ENV) or None


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'islandbot.db'}"


@contextmanager
def scratch_mysql_database(base_url: str) -> Iterator[str]:
    """Create an empty database next to the one ``base_url`` names; drop it afterwards."""
    url = make_url(base_url)
    name = f"islandbot_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


def wipe(db: Database) -> None:
    """Empty every table, leaving the schema and the single layout row as migrated."""
    with db.engine.begin() as conn:
        for table in WIPE_ORDER:
            conn.exec_driver_sql(f"DELETE FROM {table}")
        conn.exec_driver_sql(
            "UPDATE port_layout SET range_first = NULL, range_last = NULL, block_size = NULL, "
            "synced_at = NULL"
        )


def migrated(url: str) -> Database:
    db = create_database(url)
    migrate.upgrade(db)
    return db
