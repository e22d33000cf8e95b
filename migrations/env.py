"""Alembic environment. The bot passes its own connection in ``config.attributes``; the
``alembic`` command line uses ``ISLANDBOT_DATABASE_URL`` (default: the embedded SQLite file)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from bot.infra.storage.database import create_database
from bot.infra.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=os.environ.get("ISLANDBOT_DATABASE_URL", "sqlite:///islandbot.db"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    """Run the migrations on ``connection``. On SQLite all of them run in one transaction
    (SQLite's DDL is transactional) with foreign keys off, as SQLite's procedure for altering
    a table others refer to requires (a batch migration rebuilds it), and are checked before
    that transaction commits: migrations that broke a foreign key are undone whole. The
    pragma only takes outside a transaction: on the driver's connection, before the first
    statement, and is turned on again whatever happened."""
    sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.dbapi_connection if sqlite else None
    if raw is not None:
        if connection.in_transaction():
            connection.commit()
        raw.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            transactional_ddl=True if sqlite else None,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migrations broke foreign keys: {broken[:5]}")
    finally:
        if raw is not None:
            if connection.in_transaction():
                connection.rollback()
            raw.execute("PRAGMA foreign_keys=ON")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    db = create_database(os.environ.get("ISLANDBOT_DATABASE_URL", "sqlite:///islandbot.db"))
    try:
        with db.engine.connect() as conn:
            _migrate(conn)
            conn.commit()
    finally:
        db.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
