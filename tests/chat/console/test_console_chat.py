"""The console chat adapter: Block Kit rendered as text, message and button numbering,
threads, updates, JSON lines, and the same messages the Slack adapter is given."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.chat.console.chat import ConsoleChat
from bot.chat.console.render import plain, render
from bot.chat.output import ChatError
from bot.domain.buttons import ButtonAction, island_button_value, parse_island_button
from bot.domain.records import IslandRecord
from bot.domain.states import IslandState
from bot.words import layouts

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def record(state: IslandState = IslandState.READY, **changes: object) -> IslandRecord:
    island = IslandRecord(
        id=7,
        pod_name="island-alice-dev-7",
        owner_id="U0ALICE",
        owner_name="alice",
        branch="dev",
        state=state,
        first_port=30000,
        port_count=3,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=8),
        stopped_at=None,
        ports_released_at=None,
        failure_reason=None,
        node="dev-1",
        host_ip="127.0.0.2",
        note="try <b> & see",
        chat_channel="C1",
        chat_thread="1.000001",
        ready_at=NOW,
    )
    return replace(island, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mrkdwn", "text"),
    [
        ("<@U0ALICE> island", "@alice island"),
        ("in <#C1> and <#C2|general>", "in #islands and #general"),
        ("see <https://example.org|the docs> or <https://x.org>", "see the docs or https://x.org"),
        ("*bold* stays, a*b*c too, 2 * 3", "bold stays, a*b*c too, 2 * 3"),
        ("&lt;tag&gt; &amp; more", "<tag> & more"),
        ("<!here> look", "@here look"),
        ("```code```", "code"),
    ],
)
def test_mrkdwn_becomes_plain_text(mrkdwn: str, text: str) -> None:
    assert plain(mrkdwn, {"U0ALICE": "alice", "C1": "islands"}) == text


def test_the_root_message_renders_with_fields_and_buttons_in_place() -> None:
    text, blocks = layouts.root_message(
        record(),
        ports={"server-port": 30002},
        clock=None,
        extend_step=timedelta(hours=4),
        now=NOW,
        tz=UTC,
    )
    lines, buttons = render(text, blocks)
    assert lines[0] == "@U0ALICE's island #7 on dev: ready"
    assert "Host: 127.0.0.2 (node dev-1)" in lines
    assert "Note: try <b> & see" in lines
    assert [(b.action_id, b.label) for b in buttons] == [
        (ButtonAction.STOP, "Stop"),
        (ButtonAction.EXTEND, "Extend 4h"),
        (ButtonAction.LOGS, "Logs"),
    ]
    assert {b.row for b in buttons} == {len(lines)}  # after the last line
    assert parse_island_button(buttons[1].value) is not None


def test_messages_threads_updates_and_buttons_are_numbered() -> None:
    shown: list[str] = []
    chat = ConsoleChat(write=shown.append, names={"C1": "islands"})
    text, blocks = layouts.root_message(
        record(), ports={}, clock=None, extend_step=timedelta(hours=4), now=NOW, tz=UTC
    )
    root = chat.post("C1", text, blocks=blocks)
    reply = chat.post("C1", "Island #7 is ready", thread_ts=root, broadcast=True, key="k1")
    assert chat.post("C1", "again", thread_ts=root, key="k1", look_first=True) == reply
    chat.update("C1", root, text, blocks=blocks)  # nothing visible changed: not shown again
    stopped, blocks2 = layouts.root_message(
        record(IslandState.STOPPED),
        ports={},
        clock=None,
        extend_step=timedelta(hours=4),
        now=NOW,
        tz=UTC,
    )
    chat.update("C1", root, stopped, blocks=blocks2)
    kinds = [e.kind for e in chat.snapshot()]
    assert kinds == ["post", "reply", "update"]
    assert shown[0].splitlines()[0].endswith("[m1] #islands:")
    assert "[b1] Stop  [b2] Extend 4h  [b3] Logs" in shown[0]
    assert "[m1] ↳ [m2] (also sent to the channel) Island #7 is ready" in shown[1]
    assert "~ [m1] now: @U0ALICE's island #7 on dev: stopped" in shown[2]
    assert chat.button(1) is None  # a stopped island offers no buttons any more
    with pytest.raises(ChatError):
        chat.update("C1", "9.999999", "x")


def test_a_button_keeps_its_number_and_carries_the_latest_value() -> None:
    chat = ConsoleChat(write=None)
    text, blocks = layouts.root_message(
        record(), ports={}, clock=None, extend_step=timedelta(hours=4), now=NOW, tz=UTC
    )
    root = chat.post("C1", text, blocks=blocks)
    later = record(expires_at=NOW + timedelta(hours=12))
    text2, blocks2 = layouts.root_message(
        later, ports={}, clock=None, extend_step=timedelta(hours=4), now=NOW, tz=UTC
    )
    chat.update("C1", root, text2, blocks=blocks2)
    pressed = chat.button(2)
    assert pressed is not None
    assert pressed.action_id == ButtonAction.EXTEND and pressed.channel == "C1"
    assert pressed.value == island_button_value(later.id, later.expires_at)


def test_json_lines_carry_every_event() -> None:
    out: list[str] = []
    chat = ConsoleChat(write=out.append, json_lines=True)
    chat.typed("alice", "/island list", "C1")
    chat.ephemeral("C1", "alice", "*Live islands*")
    chat.upload("C1", filename="island-7.log", content="a\nb\n", title="log", thread_ts=None)
    chat.publish_home("alice", {"type": "home", "blocks": [{"type": "divider"}]})
    events = [json.loads(line) for line in out]
    assert [e["kind"] for e in events] == ["command", "ephemeral", "file", "home"]
    assert events[1] == {
        "kind": "ephemeral",
        "at": events[1]["at"],
        "text": "Live islands",
        "channel": "C1",
        "user": "alice",
    }
    assert events[2]["text"] == "island-7.log: log\na\nb"
