"""The board's words: an island's history in sentences, expiry to the minute, room, the link's
answer, and that every action the audit log records for an island has its own sentence."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.words import board_text

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("action", "detail", "line"),
    [
        ("start", {"branch": "dev"}, "requested by alice on dev"),
        ("state:scheduled", {}, "scheduled on its node"),
        ("state:ready", {}, "ready: its server answers"),
        ("state:stopped", {}, "stopped, its pod deleted"),
        ("island.registered", {"node": "dev-1"}, "registered from inside the pod on dev-1"),
        ("clock:request", {"to": 172800}, "alice asked to move the clock to +2d"),
        ("clock:shift", {"to": -5400}, "alice moved the clock to -1h30m"),
        ("clock:approve", {"request": 3}, "alice approved clock request 3"),
        ("clock:reject", {"request": 3}, "alice rejected clock request 3"),
        ("clock:applied", {"to": 0}, "clock moved to real time"),
        (
            "extend",
            {"to": "2026-12-03T20:00:00+00:00"},
            "extended by alice until 2026-12-03 20:00:00 UTC",
        ),
        ("stop", {"from": "ready"}, "stop asked by alice"),
        ("release_ports", {"first_port": 30000}, "ports from 30000 given back"),
    ],
)
def test_each_history_entry_reads_as_a_sentence(
    action: str, detail: dict[str, object], line: str
) -> None:
    assert board_text.history(action, detail, "alice", None) == line


def test_a_failure_in_the_history_says_why() -> None:
    why = "its server did not answer within 5m"
    assert board_text.history("state:failed", {}, "system", why) == f"failed: {why}"
    assert board_text.history("state:failed", {}, "system", None) == "failed"


def test_every_audited_island_action_in_the_code_has_its_own_sentence() -> None:
    """A new audited action gets a sentence here, not the fallback ``<action> by <actor>``."""
    source = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    actions = set(re.findall(r'"((?:clock:|island\.)[a-z_]+)"', source))
    actions -= {"island.html"}  # a template's name
    actions |= {"start", "stop", "restart", "extend", "release_ports"}
    looks = {"clock:decide"}  # a refusal's name only: never an ok entry
    for action in sorted(actions - looks):
        line = board_text.history(action, {"to": 0, "request": 1}, "alice", None)
        assert line != f"{action} by alice", action


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=7, minutes=59, seconds=59), "in about 8h"),
        (timedelta(hours=7, minutes=29), "in about 7h"),
        (timedelta(minutes=59, seconds=59), "in 59m"),
        (timedelta(seconds=30), "in under a minute"),
        (timedelta(seconds=-30), "just now"),
        (timedelta(minutes=-45), "45m ago"),
        (timedelta(minutes=-90), "about 2h ago"),
    ],
)
def test_expiry_is_shown_to_the_minute(delta: timedelta, text: str) -> None:
    assert board_text.expires(NOW + delta, NOW) == text


def test_room_and_node_load_read_well() -> None:
    assert board_text.room("dev", 1) == "room for 1 more dev island"
    assert board_text.room("dev", 0) == "room for 0 more dev islands"
    assert board_text.room("dev", 3, 2) == "room for 5 more dev islands, 2 of them warm"
    assert board_text.room("dev", 0, 1, 1) == (
        "room for 1 more dev island, 1 of them warm, 1 more warming up"
    )
    assert (
        board_text.node_load(2 * 2**30, 16 * 2**30, 1) == "2Gi of 16Gi requested (12 %), 1 island"
    )


def test_the_link_answer_names_its_expiry_and_that_it_is_personal() -> None:
    text = board_text.board_link("http://b/board/login?pass=x", NOW, UTC)
    assert "http://b/board/login?pass=x" in text and "yours alone" in text
    assert "2026-12-03 12:00:00 UTC" in text
