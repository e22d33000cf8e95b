"""An island as the HTTP API shows it (``GET /api/v1/islands``; the shape is in openapi.yaml)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.domain.island_clock import island_time
from bot.domain.port_blocks import named_ports
from bot.domain.records import IslandRecord


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def island_json(
    island: IslandRecord, *, port_names: Sequence[str], now: datetime
) -> dict[str, Any]:
    return {
        "id": island.id,
        "branch": island.branch,
        "owner": {"id": island.owner_id, "name": island.owner_name},
        "state": island.state.value,
        "failure_reason": island.failure_reason,
        "node": island.node,
        "host": island.host_ip,
        "ports": named_ports(port_names, island.first_port),
        "clock": {
            "offset_s": island.clock_offset_s,
            "now": _iso(island_time(island.clock_offset_s, now)),
        },
        "note": island.note,
        "created_at": _iso(island.created_at),
        "ready_at": _iso(island.ready_at),
        "stopped_at": _iso(island.stopped_at),
        "expires_at": _iso(island.expires_at),
        "registered_at": _iso(island.registered_at),
        "registration": None if island.registration is None else dict(island.registration),
        "pooled": island.pooled,
        "claimed_at": _iso(island.claimed_at),
    }
