"""The digest: the one root message of islands started at once, within Slack's limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.records import IslandRecord
from bot.domain.states import IslandState
from bot.words import layouts

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def island(n: int, state: IslandState) -> IslandRecord:
    return IslandRecord(
        id=1000 + n,
        pod_name=f"island-u{n}-dev-{1000 + n}",
        owner_id=f"U0B{n:04d}",
        owner_name=f"user{n}",
        branch="dev",
        state=state,
        first_port=30000 + 3 * n,
        port_count=3,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=8),
        host_ip="127.0.0.2" if state == IslandState.READY else None,
        chat_channel="C0TEAM",
        chat_thread="1.000001",
        chat_digest=True,
    )


def test_a_full_digest_fits_in_one_slack_message() -> None:
    islands = [island(n, IslandState.READY if n % 3 else IslandState.CREATING) for n in range(20)]
    text, blocks = layouts.digest_message(islands)
    assert len(blocks) <= 50  # Slack's limit of blocks in a message
    for block in blocks:
        body = block.get("text") or (block.get("elements") or [{}])[0]
        assert len(body["text"]) <= 3000  # a section's text limit
    shown = "\n".join(str(b.get("text", {}).get("text", "")) for b in blocks)
    for i in islands:
        assert f"<@{i.owner_id}>" in shown
    assert text.startswith("Islands started here at once: 13 ready, 7 starting")


def test_each_island_shows_its_state_and_where_it_runs_once_ready() -> None:
    _, blocks = layouts.digest_message(
        [island(1, IslandState.READY), island(2, IslandState.FAILED)]
    )
    lines = blocks[1]["text"]["text"].splitlines()
    assert "*ready* on 127.0.0.2" in lines[0] and "U0B0001" in lines[0]
    assert "*failed*" in lines[1] and " on " not in lines[1].split("·")[-1]
