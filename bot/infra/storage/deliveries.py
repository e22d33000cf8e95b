"""Chat deliveries already acted on, shared by every replica through the database.

Slack may deliver one request more than once (``X-Slack-Retry-Num``, a Socket Mode envelope
sent again, two replicas each getting a copy); the first to record its key acts, the others
see the key taken and do nothing. The lifecycle's housekeeping forgets old keys.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Delivery

MAX_KEY = 191


class Deliveries:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def first(self, key: str) -> bool:
        """Record ``key``; True only for the first caller, whichever process it is in."""
        if len(key) > MAX_KEY:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()

        def write(conn: Connection) -> None:
            conn.execute(insert(Delivery).values(key=key, seen_at=self.clock()))

        try:
            self.db.run(write, what="record delivery")
        except IntegrityError:
            return False
        return True
