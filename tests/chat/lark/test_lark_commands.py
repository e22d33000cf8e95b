"""A team in Lark, end to end: Lark's callbacks (encrypted, signed) into the bot's HTTP server,
the bot's messages through ``lark-oapi`` into the fake Open API, islands in kubesim."""

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


def ready_island(world: LarkWorld, user: str = "ou_alice") -> int:
    world.say(user, "start dev")
    island = world.started()[-1]
    world.until(lambda: any("is ready" in t for t in world.thread(island)))
    world.until(lambda: world.island(island.id).state == "ready")
    return island.id


def test_card_buttons_are_for_the_owner_and_update_the_card_in_place(world: LarkWorld) -> None:
    n = ready_island(world)
    root = str(world.island(n).chat_thread)
    world.until(lambda: "[Stop]" in world.texts(GROUP)[0])
    status, answer = world.click("ou_bob", root, "Stop")  # not bob's island
    assert status == 200 and answer == {}
    told = world.told("ou_bob", "may stop")
    assert told == (
        f"Only its owner or an admin may stop island #{n}: "
        '<at user_id="ou_alice"></at>, <at user_id="ou_admin"></at>.'
    )
    assert world.island(n).state == "ready"

    before = world.island(n).expires_at
    world.click("ou_alice", root, "Extend")
    assert f"Island #{n} now expires at" in world.told("ou_alice", "now expires at")
    assert world.island(n).expires_at > before
    world.until(lambda: world.fake.message(root)["updates"] >= 1)

    world.click("ou_admin", root, "Stop")  # an admin may
    world.until(lambda: world.island(n).state == "stopped", timeout=30)
    card = world.until(lambda: ": **stopped**" in world.texts(GROUP)[0] and world.texts(GROUP)[0])
    assert "[Stop]" not in card  # a stopped island offers no buttons
    assert any(f"is stopping island #{n}" in t for t in world.thread(world.island(n)))


def test_a_clock_request_is_approved_by_the_owner_alone(world: LarkWorld) -> None:
    n = ready_island(world)
    world.say("ou_bob", f"time {n} +2d")
    assert "is in the channel" in world.told("ou_bob", "request")
    request = world.until(
        lambda: next(
            (m for m in world.fake.messages(GROUP) if "asks to move" in str(m["content"])), None
        )
    )
    world.click("ou_bob", request["message_id"], "Approve")  # the asker may not decide
    assert "may decide" in world.told("ou_bob", "may decide")
    world.click("ou_alice", request["message_id"], "Approve")
    world.until(lambda: "Approved by" in str(world.fake.message(request["message_id"])["content"]))
    world.until(lambda: world.island(n).clock_offset_s == 2 * 86400)
    world.until(lambda: any("moved island" in t for t in world.thread(world.island(n))))


def test_refusals_are_told_to_the_person_and_change_nothing(world: LarkWorld) -> None:
    world.say("ou_carol", "start qa")
    assert world.told("ou_carol", "There is no branch").startswith(
        "There is no branch 'qa'. Known branches: dev, weekly."
    )
    world.say("ou_carol", "start dev", mention=False)  # in a group, not for the bot
    world.say("ou_carol", "help", chat="ou_carol")  # the bot's chat with her: anything is
    world.told("ou_carol", "/island start")
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
