"""The island registry: registrations from inside the islands, and the islands other tools
read (``GET /api/v1/islands``, shaped as JSON by ``bot.http.island_json``).

An island registers with the token it was given at pod creation (stored hashed). Registering
again (a restarted container) updates the record. Each registration is audited.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from bot.domain.errors import Conflict, NotFound, Refusal, Unauthorized
from bot.domain.records import Audit, IslandRecord
from bot.domain.registration import Registration, token_hash
from bot.domain.states import LIVE_VALUES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage import audit, pools
from bot.infra.storage.database import Database
from bot.infra.storage.islands import COLUMNS, island_record, read_island
from bot.infra.storage.tables import Island

MAX_PAGE = 1000


@dataclass(frozen=True)
class Page:
    islands: list[IslandRecord]
    next_after: int | None  # pass as ``after`` for the next page


class Registry:
    def __init__(
        self,
        db: Database,
        *,
        port_names: Sequence[str],
        clock: Clock = utcnow,
        on_registered: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.port_names = tuple(port_names)
        self.clock = clock
        self.on_registered = on_registered

    def register(self, island_id: int, token: str | None, registration: Registration) -> None:
        """Record the island's registration; ``NotFound``, ``Unauthorized`` or ``Conflict``
        (a stopped island) otherwise. Nothing is written when any check fails."""
        now = self.clock()

        def check(conn: Connection, *, lock: bool) -> tuple[str, str]:
            query = select(Island.state, Island.branch, Island.registration_token_hash).where(
                Island.id == island_id
            )
            row = conn.execute(query.with_for_update() if lock else query).mappings().first()
            if row is None:
                raise NotFound(Refusal.ISLAND_NOT_FOUND, island_id=island_id)
            stored = row["registration_token_hash"]
            if not token or stored is None or not hmac.compare_digest(stored, token_hash(token)):
                raise Unauthorized(Refusal.REGISTRATION_UNAUTHORIZED)
            return str(row["state"]), str(row["branch"])

        # A request without the right token is refused by a read that locks nothing: only an
        # island's own seed may make the bot take the row's write lock.
        self.db.run(lambda conn: check(conn, lock=False), what="check registration", read_only=True)

        def write(conn: Connection) -> None:
            state, branch = check(conn, lock=True)
            if state in (IslandState.STOPPING.value, IslandState.STOPPED.value):
                raise Conflict(Refusal.REGISTRATION_STOPPED, island_id=island_id, state=state)
            conn.execute(
                update(Island)
                .where(Island.id == island_id)
                .values(
                    registered_at=now,
                    registration=registration.as_json(),
                    code_version=registration.code,
                )
            )
            if registration.code is not None:
                pools.note_code_version(conn, branch, registration.code, now)
            audit.record(
                conn,
                Audit(
                    f"island:{island_id}",
                    "island.registered",
                    island_id=island_id,
                    detail=registration.as_json(),
                ),
                at=now,
            )

        self.db.run(write, what="register island")
        if self.on_registered is not None:
            self.on_registered(island_id)

    def exists(self, island_id: int) -> bool:
        """Whether an island with this id was ever started (rows are never deleted)."""
        return self.db.run(
            lambda conn: (
                conn.execute(select(Island.id).where(Island.id == island_id)).first() is not None
            ),
            what="island exists",
            read_only=True,
        )

    def get(self, island_id: int) -> IslandRecord:
        return self.db.run(
            lambda conn: read_island(conn, island_id), what="registry island", read_only=True
        )

    def page(
        self,
        *,
        states: Sequence[IslandState] | None = None,
        branch: str | None = None,
        owner_id: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> Page:
        """Islands in id order (live ones unless ``states`` says otherwise)."""
        wanted = [s.value for s in states] if states else LIVE_VALUES
        limit = max(1, min(limit, MAX_PAGE))

        def read(conn: Connection) -> Page:
            query = select(*COLUMNS).where(Island.state.in_(wanted), Island.id > after)
            if branch is not None:
                query = query.where(Island.branch == branch)
            if owner_id is not None:
                query = query.where(Island.owner_id == owner_id)
            rows = conn.execute(query.order_by(Island.id).limit(limit + 1)).all()
            more = len(rows) > limit
            islands = [island_record(r) for r in rows[:limit]]
            return Page(islands, islands[-1].id if more else None)

        return self.db.run(read, what="registry", read_only=True)
