"""What the lifecycle tick reads and writes: the live islands (re-reading only rows that
changed), the islands about to be ready, a decision's guarded write, and the stopped islands
whose ports were never released."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot.domain.records import IslandChange, IslandRecord
from bot.domain.states import LIVE_VALUES, IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.database import Database
from bot.infra.storage.islands import COLUMNS, island_record, read_island, write_change
from bot.infra.storage.tables import Island, PortBlock

Versioned = Mapping[int, tuple[int, IslandRecord]]  # island id -> (row version, record)
_WAITING = [s.value for s in (IslandState.CREATING, IslandState.SCHEDULED, IslandState.RUNNING)]
_CHUNK = 500  # ids per IN (...) list
# Inside a transaction: raise unless this replica still leads (``LeaderLease.fence``)
Fence = Callable[[Connection], None]


class ReconcileRows:
    def __init__(self, db: Database, *, clock: Clock = utcnow, fence: Fence | None = None) -> None:
        """``fence``: the leader's; every decision of a tick is written only while it holds
        the lease, checked in the same transaction (a leader paused past its lease, which may
        still believe it leads, writes none)."""
        self.db = db
        self.clock = clock
        self.fence = fence
        self._live_sql: dict[str, str] = {}  # dialect -> the (id, version) query, compiled

    def check_leading(self) -> None:
        """Raise ``Deposed`` unless this replica still leads: asked right before a change made
        outside the database (a pod deleted), which no transaction can fence."""
        if self.fence is not None:
            self.db.run(self.fence, what="leader check", read_only=True)

    def live(self, known: Versioned) -> dict[int, tuple[int, IslandRecord]]:
        """(version, record) of every live island, lowest id first. Only ``(id, version)`` is
        read for all of them; full rows only for islands new or changed since ``known`` (every
        update bumps ``version``)."""
        return self.db.run(
            lambda conn: self._live(conn, known), what="live islands", read_only=True
        )

    def _live(self, conn: Connection, known: Versioned) -> dict[int, tuple[int, IslandRecord]]:
        sql = self._live_sql.get(conn.dialect.name)
        if sql is None:
            query = (
                select(Island.id, Island.version)
                .where(Island.state.in_(LIVE_VALUES))
                .order_by(Island.id)
            )
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            self._live_sql[conn.dialect.name] = sql
        raw: Sequence[Any] = conn.exec_driver_sql(sql).cursor.fetchall()  # DB-API tuples
        changed = [i for i, v in raw if (hit := known.get(i)) is None or hit[0] != v]
        fresh: dict[int, IslandRecord] = {}
        for start in range(0, len(changed), _CHUNK):
            ids = changed[start : start + _CHUNK]
            for row in conn.execute(select(*COLUMNS).where(Island.id.in_(ids))).all():
                fresh[row.id] = island_record(row)
        rows: dict[int, tuple[int, IslandRecord]] = {}
        for island_id, version in raw:
            record = fresh.get(island_id)
            if record is not None:
                # A row changed again between the two reads is kept with the older version
                # and read once more next tick: never a stale row kept.
                rows[island_id] = (version, record)
            elif island_id in known:
                rows[island_id] = known[island_id]
        return rows

    def waiting(self) -> list[tuple[str | None, int]]:
        """(host, first port) of the islands on their way to ready (host None: not bound)."""

        def read(conn: Connection) -> list[tuple[str | None, int]]:
            query = select(Island.host_ip, Island.first_port).where(Island.state.in_(_WAITING))
            return [(r.host_ip, r.first_port) for r in conn.execute(query)]

        return self.db.run(read, what="waiting islands", read_only=True)

    def apply_many(self, items: Sequence[tuple[IslandRecord, IslandChange]]) -> list[bool]:
        """Write the decisions (a tick's) made on the records ``items`` pair them with, in one
        transaction, rows locked in id order; each one unless its island moved on meanwhile (a
        command or another replica changed its state, asked for or finished a restart,
        extended it or moved its clock): then nothing is written for it and the next tick
        decides again. Whether each was written, in the order of ``items``."""
        return [fresh is not None for fresh in self._guarded_many(items, reread=False)]

    def begin_creates(
        self, items: Sequence[tuple[IslandRecord, IslandChange]]
    ) -> list[IslandRecord | None]:
        """``apply_many`` for decisions to create the islands' pods: each pod is then rendered
        from the record this returns (None: not written), read in the same transaction, so
        the pod and the row agree (its token's hash, its clock) whatever happened since the
        tick read it."""
        return self._guarded_many(items, reread=True)

    def _guarded_many(
        self, items: Sequence[tuple[IslandRecord, IslandChange]], *, reread: bool
    ) -> list[IslandRecord | None]:
        if not items:
            return []
        ordered = sorted(range(len(items)), key=lambda n: items[n][0].id)

        def write(conn: Connection) -> list[IslandRecord | None]:
            if self.fence is not None:
                self.fence(conn)
            fresh: list[IslandRecord | None] = [None] * len(items)
            for n in ordered:
                seen, change = items[n]
                fresh[n] = self._guarded_in(conn, seen, change, reread=reread)
            return fresh

        what = (
            f"apply island {items[0][0].id}" if len(items) == 1 else f"apply {len(items)} islands"
        )
        return self.db.run(write, what=what)

    def _guarded_in(
        self, conn: Connection, seen: IslandRecord, change: IslandChange, *, reread: bool
    ) -> IslandRecord | None:
        # Locked: a command may be changing the row right now; reading it unlocked would
        # let this write overwrite what the command just committed.
        current = conn.execute(
            select(
                Island.state,
                Island.restart_requested_at,
                Island.expires_at,
                Island.clock_offset_s,
                Island.owner_id,
            )
            .where(Island.id == seen.id)
            .with_for_update()
        ).first()
        if (
            current is None
            or current.state != seen.state.value
            or current.owner_id != seen.owner_id  # a pool island claimed meanwhile
            or (current.restart_requested_at is None) != (seen.restart_requested_at is None)
            or current.expires_at != seen.expires_at
            or current.clock_offset_s != seen.clock_offset_s
        ):
            return None
        write_change(conn, seen.id, change, at=self.clock())
        return read_island(conn, seen.id) if reread else seen

    def created_many(self, at: datetime, token_hashes: Mapping[int, str]) -> None:
        """The cluster answered these islands' pod creates (from then on a missing pod was
        deleted, not lost on the way), each with a pod carrying the token that hashes so
        (island id -> hash): one transaction."""
        if not token_hashes:
            return
        statement = (
            update(Island)
            .where(Island.id == bindparam("island"))
            .values(pod_created_at=at, registration_token_hash=bindparam("token_hash"))
        )
        rows = [{"island": i, "token_hash": h} for i, h in sorted(token_hashes.items())]
        self.db.run(
            lambda conn: conn.execute(statement, rows), what=f"record {len(rows)} pods created"
        )

    def set_token_hash(self, island_id: int, token_hash: str) -> None:
        """The island's pod carries another token than recorded (a create that found the pod
        an earlier attempt made): record the pod's, which is the one its seed will send."""
        self._set(island_id, registration_token_hash=token_hash)

    def note_create_error(self, island_id: int, error: str) -> None:
        self._set(island_id, create_error=error[:1000])

    def _set(self, island_id: int, **values: Any) -> None:
        self.db.run(
            lambda conn: conn.execute(update(Island).where(Island.id == island_id).values(values)),
            what=f"island {island_id}",
        )

    def stopped_holding_ports(self) -> list[int]:
        """Stopped islands whose block is still held (their release was interrupted)."""

        def read(conn: Connection) -> list[int]:
            query = (
                select(Island.id)
                .join(PortBlock, PortBlock.island_id == Island.id)
                .where(Island.state == IslandState.STOPPED.value)
            )
            return [int(i) for i in conn.execute(query).scalars()]

        return self.db.run(read, what="stopped islands holding ports", read_only=True)
