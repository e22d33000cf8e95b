"""The outbox: notices written in the same transaction as the change they announce, delivered
afterwards by the lifecycle loop, each marked sent once delivered (so once, also across
restarts). A notice is claimed (``attempts`` + 1) before it is handed to the chat."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from bot.domain.lifecycle_rules import Notice
from bot.domain.records import NoticeSpec, PendingNotice
from bot.domain.states import IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Base, Delivery, Island, OutboxMessage

_INSERT = insert(Base.metadata.tables[OutboxMessage.__tablename__])


def add(conn: Connection, island_id: int, notices: Iterable[NoticeSpec], *, at: datetime) -> None:
    """Queue ``notices`` for the island inside the caller's transaction, in order."""
    for kind, detail in notices:
        conn.execute(
            _INSERT,
            {
                "island_id": island_id,
                "kind": kind.value,
                "detail": _jsonable(detail),
                "created_at": at,
            },
        )


def _jsonable(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in detail.items()}


def _revive(detail: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(detail)
    if isinstance(out.get("expires_at"), str):
        out["expires_at"] = datetime.fromisoformat(out["expires_at"])
    return out


class Outbox:
    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def pending(
        self, *, limit: int, max_attempts: int, thread_wait: timedelta
    ) -> list[PendingNotice]:
        """Undelivered notices, oldest first. Notices of an island started from a chat wait (up
        to ``thread_wait``) for its root message, so they land in its thread."""
        now = self.clock()

        def read(conn: Connection) -> list[PendingNotice]:
            rows = conn.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.island_id,
                    OutboxMessage.kind,
                    OutboxMessage.detail,
                    OutboxMessage.attempts,
                    Island.owner_id,
                    Island.branch,
                    Island.first_port,
                    Island.chat_channel,
                    Island.chat_thread,
                    Island.state,
                    Island.clock_offset_s,
                )
                .join(Island, Island.id == OutboxMessage.island_id)
                .where(
                    OutboxMessage.sent_at.is_(None),
                    OutboxMessage.attempts < max_attempts,
                    or_(
                        Island.chat_channel.is_(None),
                        Island.chat_thread.is_not(None),
                        Island.created_at < now - thread_wait,
                    ),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            ).all()
            return [
                PendingNotice(
                    r.id,
                    r.island_id,
                    Notice(r.kind),
                    _revive(r.detail),
                    r.attempts,
                    r.owner_id,
                    r.branch,
                    r.first_port,
                    r.chat_channel,
                    r.chat_thread,
                    IslandState(r.state),
                    r.clock_offset_s,
                )
                for r in rows
            ]

        return self.db.run(read, what="outbox", read_only=True)

    def claim(self, ids: Sequence[int]) -> None:
        """Count an attempt for each (before handing them to the chat)."""
        self._update(ids, attempts=OutboxMessage.attempts + 1)

    def unclaim(self, ids: Sequence[int]) -> None:
        """Claimed but never tried (an earlier notice of the island failed): uncount it."""
        self._update(ids, attempts=OutboxMessage.attempts - 1)

    def sent(self, ids: Sequence[int]) -> None:
        self._update(ids, sent_at=self.clock())

    def failed(self, notice_id: int, error: str) -> None:
        self._update([notice_id], last_error=error[:500])

    def unsent(self) -> int:
        """Notices written but not yet delivered."""

        def read(conn: Connection) -> int:
            query = select(func.count()).select_from(OutboxMessage)
            return int(conn.execute(query.where(OutboxMessage.sent_at.is_(None))).scalar_one())

        return self.db.run(read, what="unsent notices", read_only=True)

    def forget(
        self, *, sent_before: datetime, max_attempts: int, deliveries_before: datetime
    ) -> dict[str, int]:
        """Housekeeping: notices sent (or given up on) before ``sent_before``, and chat
        delivery keys older than ``deliveries_before``."""

        def write(conn: Connection) -> dict[str, int]:
            notices = conn.execute(
                delete(OutboxMessage).where(
                    or_(
                        OutboxMessage.sent_at < sent_before,
                        (OutboxMessage.sent_at.is_(None))
                        & (OutboxMessage.attempts >= max_attempts)
                        & (OutboxMessage.created_at < sent_before),
                    )
                )
            ).rowcount
            keys = conn.execute(delete(Delivery).where(Delivery.seen_at < deliveries_before))
            return {"notices": int(notices), "deliveries": int(keys.rowcount)}

        return self.db.run(write, what="housekeeping")

    def _update(self, ids: Sequence[int], **values: Any) -> None:
        if not ids:
            return

        def write(conn: Connection) -> None:
            conn.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(values))

        self.db.run(write, what="outbox update")
