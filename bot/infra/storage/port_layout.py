"""The port blocks' layout and the ports used by something else: the half of the allocator
that keeps the ``port_blocks`` rows matching the configured range and block size, and reports
how many are free (``Allocator`` inherits it)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, and_, case, delete, func, insert, select, update

from bot.domain.port_blocks import BlockLayout, BlockRow, exclusion_reasons, plan_layout
from bot.domain.records import ExclusionConflict, PortUsage
from bot.domain.time_source import Clock
from bot.infra.storage.database import Database
from bot.infra.storage.tables import ExcludedPort, PortBlock, PortLayoutRow

log = logging.getLogger(__name__)

LAYOUT_ROW_ID = 1


class PortLayout:
    """Thread-safe; any number of processes may share a DB."""

    db: Database
    layout: BlockLayout
    clock: Clock

    # ---- layout and exclusions ----------------------------------------------------------------

    def sync_layout(self) -> list[int]:
        """Make the stored blocks match the configured layout; returns the blocks still waiting
        for a held block of an earlier layout to be released. Safe to run from every process."""
        return self.db.run(lambda conn: self._sync(conn, self.clock()), what="sync layout")

    def _lock_layout(self, conn: Connection) -> None:
        conn.execute(
            select(PortLayoutRow.id).where(PortLayoutRow.id == LAYOUT_ROW_ID).with_for_update()
        ).scalar_one()

    def _sync(self, conn: Connection, now: datetime) -> list[int]:
        self._lock_layout(conn)
        rows = conn.execute(
            select(PortBlock.first_port, PortBlock.size, PortBlock.island_id, PortBlock.retired)
        ).all()
        plan = plan_layout(
            (BlockRow(r.first_port, r.size, r.island_id is not None, r.retired) for r in rows),
            self.layout,
        )
        if plan.delete:
            conn.execute(delete(PortBlock).where(PortBlock.first_port.in_(plan.delete)))
        if plan.retire:
            conn.execute(
                update(PortBlock).where(PortBlock.first_port.in_(plan.retire)).values(retired=True)
            )
        if plan.unretire:
            conn.execute(
                update(PortBlock)
                .where(PortBlock.first_port.in_(plan.unretire))
                .values(retired=False)
            )
        if plan.create:
            excluded = self._excluded(conn)
            reasons = exclusion_reasons(((p, self.layout.size) for p in plan.create), excluded)
            conn.execute(
                insert(PortBlock),
                [
                    {
                        "first_port": p,
                        "size": self.layout.size,
                        "island_id": None,
                        "held_since": None,
                        "excluded_reason": reasons[p],
                        "retired": False,
                    }
                    for p in plan.create
                ],
            )
        conn.execute(
            update(PortLayoutRow)
            .where(PortLayoutRow.id == LAYOUT_ROW_ID)
            .values(
                range_first=self.layout.range.first,
                range_last=self.layout.range.last,
                block_size=self.layout.size,
                synced_at=now,
            )
        )
        if not plan.is_empty:
            log.info(
                "port layout %s/%d: +%d -%d blocks, %d retired, %d waiting",
                self.layout.range,
                self.layout.size,
                len(plan.create),
                len(plan.delete),
                len(plan.retire),
                len(plan.waiting),
            )
        return list(plan.waiting)

    @staticmethod
    def _excluded(conn: Connection) -> dict[int, str]:
        return {
            r.port: r.reason for r in conn.execute(select(ExcludedPort.port, ExcludedPort.reason))
        }

    def set_excluded_ports(self, excluded: Mapping[int, str]) -> list[ExclusionConflict]:
        """Replace the set of ports used by something else (``{port: what uses it}``).

        Free blocks containing such a port are no longer handed out; returns the live islands
        whose held block now contains one (they keep it; the caller should warn someone).
        """
        wanted = {int(p): str(r)[:200] for p, r in excluded.items()}
        return self.db.run(lambda conn: self._set_excluded(conn, wanted), what="exclusions")

    def _set_excluded(self, conn: Connection, wanted: dict[int, str]) -> list[ExclusionConflict]:
        self._lock_layout(conn)
        now = self.clock()
        current = self._excluded(conn)
        gone = [p for p in current if p not in wanted]
        if gone:
            conn.execute(delete(ExcludedPort).where(ExcludedPort.port.in_(gone)))
        for port, reason in wanted.items():
            if port not in current:
                conn.execute(insert(ExcludedPort).values(port=port, reason=reason, since=now))
            elif current[port] != reason:
                conn.execute(
                    update(ExcludedPort).where(ExcludedPort.port == port).values(reason=reason)
                )
        blocks = conn.execute(
            select(
                PortBlock.first_port, PortBlock.size, PortBlock.island_id, PortBlock.excluded_reason
            )
        ).all()
        reasons = exclusion_reasons(((b.first_port, b.size) for b in blocks), wanted)
        conflicts = []
        for b in blocks:
            new = reasons[b.first_port]
            if new != b.excluded_reason:
                conn.execute(
                    update(PortBlock)
                    .where(PortBlock.first_port == b.first_port)
                    .values(excluded_reason=new)
                )
            if new is not None and b.island_id is not None:
                conflicts.append(ExclusionConflict(b.island_id, b.first_port, new))
        return conflicts

    # ---- reading ----------------------------------------------------------------------------

    def usage(self) -> PortUsage:
        """How many blocks exist, are held, are excluded (and not held) and are free."""

        def read(conn: Connection) -> PortUsage:
            unheld_excluded = case(
                (and_(PortBlock.island_id.is_(None), PortBlock.excluded_reason.is_not(None)), 1),
                else_=0,
            )
            total, held, excluded = conn.execute(
                select(
                    func.count(),
                    func.count(PortBlock.island_id),
                    func.coalesce(func.sum(unheld_excluded), 0),
                ).select_from(PortBlock)
            ).one()
            return PortUsage(total, held, int(excluded), total - held - int(excluded))

        return self.db.run(read, what="usage", read_only=True)
