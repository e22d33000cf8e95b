"""Alembic environment. The bot passes its own connection in ``config.attributes``; the
``alembic`` command line uses ``ISLANDBOT_DATABASE_URL`` (default: the embedded SQLite file)."""

from __future__ import annotations

import os

from alembic import context

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


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    db = create_database(os.environ.get("ISLANDBOT_DATABASE_URL", "sqlite:///islandbot.db"))
    try:
        with db.engine.connect() as conn:
            context.configure(
                connection=conn, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        db.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
