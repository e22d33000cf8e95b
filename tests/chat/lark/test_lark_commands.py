"""A team in Lark, end to end: Lark's callbacks (encrypted, signed) into the bot's HTTP server,
the bot's messages through ``lark-oapi`` into the fake Open API, islands in kubesim. What is
Lark's own is here (the card and its thread, which messages are commands, redeliveries); the
scenarios every chat shares (buttons, clock requests, refusals) run through the console and
Lark alike in ``tests/system/test_chat_scenarios.py``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.storage.database import Database
from tests.larkworld import GROUP, LarkWorld, lark_world


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[LarkWorld]:
    with lark_world(db, tmp_path) as w:
        yield w


def test_start_posts_a_card_and_the_ready_reply_in_its_thread(world: LarkWorld) -> None:
    world.say("ou_alice", 'start dev note="checkout flow"')
    (island,) = world.started()
    assert island.chat_channel == GROUP and island.owner_id == "ou_alice"
    root = world.fake.message(str(island.chat_thread))
    assert root["msg_type"] == "interactive" and root["chat_id"] == GROUP
    ready = world.until(lambda: [t for t in world.thread(island) if "is ready" in t])
    record = world.island(island.id)
    mention = '<at user_id="ou_alice"></at>'
    assert f"{mention} island #{island.id} is ready on {record.host_ip}" in ready[0]
    for port in record.ports:
        assert str(port) in ready[0]
    card = world.until(lambda: "ready" in world.texts(GROUP)[0] and world.texts(GROUP)[0])
    assert f"<at id=ou_alice></at>'s island #{island.id}" in card
    assert "checkout flow" in card and "[Stop]  [Extend 4h]  [Logs]" in card


def test_refusals_are_told_to_the_person_and_change_nothing(world: LarkWorld) -> None:
    world.say("ou_carol", "start qa")
    assert world.told("ou_carol", "There is no branch").startswith(
        "There is no branch 'qa'. Known branches: dev, weekly."
    )
    world.say("ou_carol", "start dev", mention=False)  # in a group, not for the bot
    world.say("ou_carol", "help", chat="ou_carol")  # the bot's chat with her: anything is
    world.told("ou_carol", "gives you your own game-server island")
    assert world.islands() == []
    assert len(world.texts("ou_carol")) == 2
    assert world.texts(GROUP) == []


def test_an_event_delivered_again_is_acted_on_once(world: LarkWorld) -> None:
    event = world.say("ou_alice", "start dev")
    assert world.deliver(event)[0] == 200  # Lark's retry: the same event, the same message
    (island,) = world.started()
    root = str(island.chat_thread)
    world.until(lambda: "[Extend" in world.texts(GROUP)[0])
    before = world.island(island.id).expires_at
    click = {"event_id": "ev-extend-once"}
    assert world.click("ou_alice", root, "Extend", **click)[0] == 200
    assert world.click("ou_alice", root, "Extend", **click)[0] == 200
    world.told("ou_alice", "now expires at")
    time.sleep(1.0)  # time for a second, wrong, extension to land
    assert len(world.islands()) == 1
    extended = world.island(island.id).expires_at - before
    assert extended == world.settings.extend_step
