"""How memory readings and the warning before an OOM kill read."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from bot.domain.lifecycle_rules import Notice
from bot.domain.states import IslandState
from bot.words import layouts
from bot.words.formatting import memory_size, memory_use
from bot.words.notices import notice_text
from tests.words.test_digest_layout import NOW, island

GI, MI = 2**30, 2**20


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (2 * GI, "2Gi"),
        (int(1.95 * GI), "1.9Gi"),  # rounded down: never more than was read
        (GI + 1, "1Gi"),
        (612 * MI + 5, "612Mi"),
        (96 * 1024, "96Ki"),
        (0, "0Ki"),
    ],
)
def test_sizes_read_as_people_write_them(size: int, shown: str) -> None:
    assert memory_size(size) == shown


def test_a_reading_against_its_limit_and_without_one() -> None:
    assert memory_use(int(1.6 * GI) + 1, 2 * GI) == "memory 1.6Gi of 2Gi (80 %)"
    assert memory_use(612 * MI, None) == "memory 612Mi"


def test_the_warning_says_what_it_uses_when_it_will_be_killed_and_what_to_do() -> None:
    text = notice_text(
        Notice.MEMORY_HIGH,
        {"used": int(1.95 * GI), "limit": 2 * GI, "more": 3 * GI},
        island_id=269,
        owner_id="U0ANN",
        branch="dev",
        ports={},
        clock=None,
        tz=UTC,
    )
    assert text == (
        "<@U0ANN> island #269 is using 1.9Gi of its 2Gi memory limit; at 2Gi it will be killed "
        "(OOMKilled). Restart it to start afresh (`/island restart 269`), or start a new one "
        "with more memory (`/island start dev set memory=3Gi`)."
    )


def test_status_root_message_and_home_show_a_running_islands_last_reading() -> None:
    ready = island(1, IslandState.READY)
    reading = (int(1.6 * GI) + 1, 2 * GI)
    _text, blocks = layouts.status_blocks(
        ready, ports={}, clock=None, extend_step=timedelta(hours=4), now=NOW, tz=UTC, memory=reading
    )
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*Memory*\n1.6Gi of 2Gi (80 %)" in fields
    view = layouts.home_view(
        mine=[ready],
        team=[ready, island(2, IslandState.STOPPED)],
        ports={},
        memory={1001: reading, 1002: reading},
        extend_step=timedelta(hours=4),
        now=NOW,
    )
    lines = [b["text"]["text"] for b in view["blocks"] if b.get("type") == "section"]
    assert "memory 1.6Gi of 2Gi (80 %)" in lines[0]
    assert all("memory" not in line for line in lines[1:])  # stopped: its reading is history


def test_a_branch_that_allows_no_more_memory_is_not_suggested_to_have_more() -> None:
    text = notice_text(
        Notice.MEMORY_HIGH,
        {"used": int(2.9 * GI), "limit": 3 * GI, "more": None},
        island_id=7,
        owner_id="U0ANN",
        branch="weekly",
        ports={},
        clock=None,
        tz=UTC,
    )
    assert text.endswith(
        "Restart it to start afresh (`/island restart 7`); weekly islands cannot have more memory."
    )
    assert "set memory" not in text
