"""The append-only audit log: one row for every command and every state change."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert

from bot.infra.storage.tables import AuditEntry, Base

SYSTEM_ACTOR = "system"


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    ERROR = "error"


# Built once: every command and every state change writes one.
_INSERT = insert(Base.metadata.tables[AuditEntry.__tablename__])


def record(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    outcome: Outcome,
    island_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry inside the caller's transaction."""
    conn.execute(
        _INSERT,
        {
            "at": at,
            "actor": actor,
            "action": action,
            "island_id": island_id,
            "outcome": outcome.value,
            "detail": detail or {},
        },
    )
