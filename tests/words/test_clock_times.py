"""Every clock time shown to people names its zone, the team's (issue 21, defect 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.records import ClockRecord, ClockView, IslandRecord
from bot.domain.states import IslandState
from bot.words import clock_text, formatting, island_text, layouts

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SEED = datetime(2021, 9, 18, 15, 30, 7, tzinfo=UTC)  # 23:30:07 in Shanghai


def island() -> IslandRecord:
    return IslandRecord(
        id=7,
        pod_name="island-alice-dev-7",
        owner_id="U0ALICE",
        owner_name="alice",
        branch="dev",
        state=IslandState.READY,
        first_port=30000,
        port_count=3,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=8),
        stopped_at=None,
        ports_released_at=None,
        failure_reason=None,
        node="dev-1",
        host_ip="127.0.0.2",
        note=None,
        chat_channel="C1",
        chat_thread="1.000001",
        ready_at=NOW,
    )


def request(**changes: object) -> ClockRecord:
    values: dict[str, object] = {
        "id": 3,
        "island_id": 7,
        "requested_by": "U0BOB",
        "requested_at": NOW,
        "from_offset_s": 0,
        "to_offset_s": int((SEED - NOW).total_seconds()),
        "kind": "absolute",
        "target_at": SEED,
        "state": "pending",
        "decided_by": None,
        "decided_at": None,
        "applied_at": None,
        "failure_reason": None,
        "expires_at": NOW + timedelta(hours=1),
        "chat_channel": "C1",
        "chat_ts": "2.000001",
    }
    values.update(changes)
    return ClockRecord(**values)  # type: ignore[arg-type]


def test_a_clock_time_names_the_zone_it_is_in() -> None:
    assert formatting.clock_time(SEED, SHANGHAI) == "2021-09-18 23:30:07 Asia/Shanghai"
    assert formatting.clock_time(SEED, UTC) == "2021-09-18 15:30:07 UTC"


def test_the_islands_card_shows_its_clock_in_the_teams_zone() -> None:
    fields = island_text.root_fields(island(), ports={}, clock=SEED, now=NOW, tz=SHANGHAI)
    assert "*Clock*\n2021-09-18 23:30:07 Asia/Shanghai" in fields
    assert "*Clock*\nreal time" in island_text.root_fields(
        island(), ports={}, clock=None, now=NOW, tz=SHANGHAI
    )
    _, blocks = layouts.status_blocks(
        island(), ports={}, clock=SEED, extend_step=timedelta(hours=4), now=NOW, tz=UTC
    )
    assert "2021-09-18 15:30:07 UTC" in str(blocks)


def test_clock_views_and_requests_name_the_zone() -> None:
    offset = int((SEED - NOW).total_seconds())
    view = ClockView(7, "U0ALICE", offset, SEED, None)
    assert "clock reads 2021-09-18 23:30:07 Asia/Shanghai," in clock_text.clock_view(
        view, SHANGHAI, NOW
    )
    asked = clock_text.clock_request(request(), "U0ALICE", SHANGHAI, NOW)
    assert "clock to 2021-09-18 23:30:07 Asia/Shanghai (now 2026-11-29 20:00:00 Asia/Shanghai)" in (
        asked
    )
    assert "The request expires at 2026-11-29 21:00:00 Asia/Shanghai." in asked
