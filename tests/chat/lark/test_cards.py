"""The Lark adapter's pure parts: Block Kit and mrkdwn as Lark shows them, and which messages
are commands for the bot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.chat.lark import cards
from bot.chat.lark.listeners import command_text
from bot.domain.records import IslandRecord
from bot.domain.states import IslandState
from bot.words import layouts

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mrkdwn", "md", "text"),
    [
        ("*bold* and plain", "**bold** and plain", "<b>bold</b> and plain"),
        (
            "<@ou_alice> is ready",
            "<at id=ou_alice></at> is ready",
            '<at user_id="ou_alice"></at> is ready',
        ),
        ("<!here> look", "<at id=all></at> look", '<at user_id="all"></at> look'),
        (
            "<https://x.test/b|the board>",
            "[the board](https://x.test/b)",
            "[the board](https://x.test/b)",
        ),
        ("2 &lt; 3 -&gt; ok &amp; on", "2 &lt; 3 -&gt; ok &amp; on", "2 \uff1c 3 -\uff1e ok & on"),
        # a person's text stays inert: no mention of everyone, however it is written
        (
            '&lt;at user_id="all"&gt;&lt;/at&gt;',
            '&lt;at user_id="all"&gt;&lt;/at&gt;',
            '\uff1cat user_id="all"\uff1e\uff1c/at\uff1e',
        ),
        ("~gone~ now", "~~gone~~ now", "~gone~ now"),
        ("a*b*c stays", "a*b*c stays", "a*b*c stays"),
    ],
)
def test_mrkdwn_becomes_lark_markdown_and_text(mrkdwn: str, md: str, text: str) -> None:
    assert cards.markdown(mrkdwn) == md
    assert cards.plain_text(mrkdwn) == text


def _island(**changes: object) -> IslandRecord:
    base = {
        "id": 7,
        "branch": "dev",
        "owner_id": "ou_alice",
        "owner_name": "ou_alice",
        "state": IslandState.READY,
        "first_port": 30000,
        "port_count": 3,
        "host_ip": "127.0.0.2",
        "node": "dev-1",
        "pod_name": "island-7",
        "chat_channel": "oc_islands",
        "chat_thread": "om_root",
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=8),
        "note": "checkout flow",
    }
    base.update(changes)
    return IslandRecord(**base)  # type: ignore[arg-type]


def test_the_root_message_is_a_shared_card_with_its_fields_note_and_buttons() -> None:
    text, blocks = layouts.root_message(
        _island(),
        ports={"app-common-port": 30000, "remote-msg-port": 30001, "server-port": 30002},
        clock=None,
        extend_step=timedelta(hours=4),
        now=NOW,
        tz=UTC,
    )
    msg_type, content = cards.content(text, blocks)
    card = json.loads(content)
    assert msg_type == "interactive"
    assert card["config"] == {"wide_screen_mode": True, "update_multi": True}
    tags = [e["tag"] for e in card["elements"]]
    assert tags == ["div", "div", "note", "action"]
    assert "<at id=ou_alice></at>" in card["elements"][0]["text"]["content"]
    fields = [f["text"]["content"] for f in card["elements"][1]["fields"]]
    assert any(f.startswith("**Host**") and "127.0.0.2" in f for f in fields)
    stop, extend, logs = card["elements"][3]["actions"]
    assert stop["type"] == "danger" and stop["confirm"]["title"]["content"] == "Stop"
    assert stop["value"]["action_id"] == "island_stop" and "dm" not in stop["value"]
    assert extend["text"]["content"] == "Extend 4h" and logs["text"]["content"] == "Logs"
    assert len(content.encode()) < cards.CARD_LIMIT


def test_a_card_sent_to_a_person_marks_its_buttons_as_theirs() -> None:
    text, blocks = layouts.root_message(
        _island(), ports={}, clock=None, extend_step=timedelta(hours=4), now=NOW, tz=UTC
    )
    card = cards.card(text, blocks, direct="ou_alice")
    actions = next(e for e in card["elements"] if e["tag"] == "action")["actions"]
    assert all(a["value"]["dm"] == "ou_alice" for a in actions)  # hers alone: not forwarded


def test_text_without_blocks_is_a_text_message_and_an_update_is_always_a_card() -> None:
    msg_type, content = cards.content("<@ou_bob> *hi*", None)
    assert msg_type == "text"
    assert json.loads(content) == {"text": '<at user_id="ou_bob"></at> <b>hi</b>'}
    card = json.loads(cards.card_content("plain words", None))
    assert card["elements"] == [
        {"tag": "div", "text": {"tag": "lark_md", "content": "plain words"}}
    ]


def test_a_table_is_a_markdown_element_that_shows_its_code_block() -> None:
    blocks = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*List*\n```  id  owner\n   1  <@ou_a>```"},
        }
    ]
    (element,) = cards.card("List", blocks)["elements"]
    assert element == {
        "tag": "markdown",
        "content": "**List**\n```  id  owner\n   1  <at id=ou_a></at>```",
    }


BOT = "ou_islandbot"


@pytest.mark.parametrize(
    ("text", "mentions", "group", "bot", "command"),
    [
        ("@_user_1 start dev", [("@_user_1", BOT)], True, BOT, "start dev"),
        ("@_user_1   status 3 ", [("@_user_1", BOT)], True, BOT, "status 3"),
        ("/island start dev", [], True, BOT, "start dev"),
        ("/ISLAND help", [], True, BOT, "help"),
        ("/island", [], True, BOT, ""),
        ("start dev", [], True, BOT, None),  # a group message not for the bot
        ("@_user_1 start dev", [("@_user_1", "ou_bob")], True, BOT, None),  # someone else
        (
            "@_user_1 status 4 @_user_2",
            [("@_user_1", BOT), ("@_user_2", "ou_bob")],
            True,
            BOT,
            "status 4",
        ),
        ("start dev", [], False, BOT, "start dev"),  # the bot's chat with one person: anything
        ("/island list", [], False, BOT, "list"),
        ("@_user_1 list", [("@_user_1", "ou_x")], True, None, "list"),  # own id unknown yet
    ],
)
def test_which_messages_are_commands(
    text: str,
    mentions: list[tuple[str, str | None]],
    group: bool,
    bot: str | None,
    command: str | None,
) -> None:
    assert command_text(text, mentions, group=group, bot=bot) == command
