"""Applying the Alembic migrations in ``migrations/`` with the bot's own database connection."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from bot.domain.errors import DatabaseError
from bot.infra.storage.database import Database

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"
_LOCK_NAME = "islandbot.migrations"
_LOCK_WAIT_S = 120


def alembic_config() -> Config:
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise DatabaseError(f"migrations not found in {MIGRATIONS_DIR}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the repository always ships migrations
        raise DatabaseError("no migrations found")
    return head


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _run(db: Database, revision: str, *, up: bool) -> None:
    config = alembic_config()
    with db.engine.connect() as conn:
        # Several replicas may start at once: on MySQL only one migrates at a time.
        locked = db.dialect == "mysql"
        if locked:
            got = conn.execute(
                text("SELECT GET_LOCK(:n, :t)"), {"n": _LOCK_NAME, "t": _LOCK_WAIT_S}
            ).scalar()
            if got != 1:
                raise DatabaseError(
                    "another process has been migrating the database for "
                    f"{_LOCK_WAIT_S}s; try again later"
                )
            conn.commit()
        try:
            config.attributes["connection"] = conn
            if up:
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            conn.commit()
        finally:
            if locked:
                conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": _LOCK_NAME})
                conn.commit()


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (default: the newest)."""
    _run(db, revision, up=True)


def downgrade(db: Database, revision: str) -> None:
    """Undo migrations down to ``revision`` (``base`` removes every table)."""
    _run(db, revision, up=False)


def ensure_current(db: Database) -> bool:
    """Upgrade when the schema is behind the code; True when anything was applied."""
    before = current_revision(db)
    if before == head_revision():
        return False
    log.info("database schema at %s, upgrading to %s", before or "(empty)", head_revision())
    upgrade(db)
    return True
