"""Secrets the bot makes for itself once and its replicas share (``server_secrets``)."""

from __future__ import annotations

import contextlib
import secrets

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from bot.infra.storage.database import Database, database_now
from bot.infra.storage.tables import ServerSecret


class ServerSecrets:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get_or_make(self, name: str, *, nbytes: int = 32) -> bytes:
        """The secret called ``name``: made (random, ``nbytes``) by the first process to ask,
        read by every other; two asking at once get the same one (the insert that loses the
        race on the primary key reads the winner's)."""

        def read(conn: Connection) -> str | None:
            return conn.execute(
                select(ServerSecret.value).where(ServerSecret.name == name)
            ).scalar()

        def make(conn: Connection) -> None:
            conn.execute(
                insert(ServerSecret).values(
                    name=name, value=secrets.token_hex(nbytes), created_at=database_now(conn)
                )
            )

        value = self.db.run(read, what=f"secret {name}", read_only=True)
        if value is None:
            with contextlib.suppress(IntegrityError):  # another process made it first
                self.db.run(make, what=f"make secret {name}")
            value = self.db.run(read, what=f"secret {name}", read_only=True)
        if value is None:
            raise RuntimeError(f"secret {name} could not be made")
        return bytes.fromhex(value)
