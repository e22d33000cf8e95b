"""The whole bot served over Lark's long connection, end to end: built by ``chat_bot`` from
settings with no verification token (so ``islandbot run`` opens the long connection), its Open
API and the connection's discovery on one origin (as Lark serves them), events and card clicks
pushed over the SDK's own WebSocket by the fake long-connection server (tests/fakelark_ws.py),
the bot's messages landing in the fake Open API (tests/fakelark.py), islands in kubesim."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat.lark.long_connection import LongConnection
from bot.infra.storage.database import Database
from tests import fakelark_events
from tests.fakelark_ws import FakeLarkWS
from tests.larkworld import GROUP, LarkWorld, lark_world, ready_island

pytestmark = pytest.mark.timeout(60)

CONNECTION_THREAD = "lark-long-connection"
PORTS = "38600-38689"  # its own: islands of other worlds may listen on the shared ones meanwhile


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[LarkWorld]:
    env = {"ISLANDBOT_PORT_RANGE": PORTS}
    with lark_world(db, tmp_path, long_connection=True, env=env) as w:
        yield w


def socket(world: LarkWorld) -> FakeLarkWS:
    assert world.ws is not None
    return world.ws


def connection(world: LarkWorld) -> LongConnection:
    (conn,) = world.bot.connections
    assert isinstance(conn, LongConnection)
    return conn


def test_the_bot_takes_the_long_connection_on_the_open_apis_origin(world: LarkWorld) -> None:
    """Without a verification token the bot opens the long connection (discovered at the Open
    API's origin, with the app's credentials) and serves no HTTP callback route."""
    ws = socket(world)
    assert world.settings.lark_verification_token is None
    assert world.settings.lark_origin == ws.domain
    assert ws.discoveries == 1 and ws.connections == 1 and ws.open_sockets == 1
    world.until(lambda: connection(world).connected)  # the SDK keeps its socket a moment later
    headers, body = fakelark_events.callback_request({"schema": "2.0"}, encrypt_key=None)
    status, _ = fakelark_events.post_callback(world.url, headers, body)
    assert status == 404  # no /lark/events in long-connection mode
    world.until(lambda: world.fake.count("bot") >= 1)  # the bot's identity, at that origin
    assert ws.protocol_errors == []


def test_a_mention_over_the_socket_starts_an_island_announced_in_the_group(
    world: LarkWorld,
) -> None:
    """``@islandbot start dev`` in the group, pushed over the socket, is answered 200 and
    starts an island: its card in the group, its ready reply (with host and ports) in the
    card's thread, mentioning its owner."""
    n = ready_island(world, "ou_alice")
    island = world.island(n)
    assert island.chat_channel == GROUP and island.owner_id == "ou_alice"
    root = world.fake.message(str(island.chat_thread))
    assert root["msg_type"] == "interactive" and root["chat_id"] == GROUP
    ready = [t for t in world.thread(island) if "is ready on" in t]
    assert len(ready) == 1
    assert f'<at user_id="ou_alice"></at> island #{n} is ready on {island.host_ip}' in ready[0]
    for port in island.ports:
        assert str(port) in ready[0]
    card = world.until(lambda: "[Stop]" in world.texts(GROUP)[0] and world.texts(GROUP)[0])
    assert f"island #{n}" in card
    ws = socket(world)
    assert [r.payload["code"] for r in ws.replies] == [200]
    assert ws.protocol_errors == []


def test_a_click_over_the_socket_is_answered_at_once_and_acted_on_once(
    world: LarkWorld,
) -> None:
    """The owner's Extend click (``card.action.trigger`` in an event frame) is answered 200
    within Lark's 3 seconds and extends the island; the same click pushed again (Lark's
    retry: the same event_id) is answered too, and extends it no further."""
    n = ready_island(world)
    root = str(world.island(n).chat_thread)
    world.until(lambda: "[Extend" in world.texts(GROUP)[0])
    before = world.island(n).expires_at
    click = {"event_id": "ev-extend-over-the-socket"}

    began = time.monotonic()
    status, answer = world.click("ou_alice", root, "Extend", **click)
    assert time.monotonic() - began < 3.0
    assert (status, answer) == (200, {})
    assert world.click("ou_alice", root, "Extend", **click) == (200, {})

    world.told("ou_alice", "now expires at")
    world.until(lambda: world.island(n).expires_at > before)
    time.sleep(1.0)  # time for a second, wrong, extension to land
    assert world.island(n).expires_at - before == world.settings.extend_step
    assert sum("now expires at" in t for t in world.texts("ou_alice")) == 1
    assert socket(world).protocol_errors == []


def test_a_dropped_connection_comes_back_and_a_later_event_is_acted_on(
    world: LarkWorld,
) -> None:
    """Lark's server restarts (the socket closed, 1001): the SDK discovers again, reconnects,
    and a message sent after that starts an island as before."""
    ws = socket(world)
    ws.drop()
    ws.wait_connected(10, connections=2)
    assert ws.discoveries == 2  # a fresh address and ticket for the new socket
    world.until(lambda: connection(world).connected)

    world.say("ou_bob", "start dev")
    (island,) = world.started()
    assert island.owner_id == "ou_bob" and island.chat_channel == GROUP
    world.until(lambda: any("is ready on" in t for t in world.thread(island)))
    assert connection(world).error is None
    assert ws.protocol_errors == []


def test_stopping_the_bot_closes_the_socket_and_ends_the_connections_thread(
    world: LarkWorld,
) -> None:
    """``bot.stop()`` closes the WebSocket (Lark stops routing events to it) and ends the
    connection's thread, freeing the process's one long connection."""
    ws, conn = socket(world), connection(world)
    assert any(t.name == CONNECTION_THREAD for t in threading.enumerate())

    world.close()

    ws.wait_closed()
    assert not conn.connected
    assert [t for t in threading.enumerate() if t.name == CONNECTION_THREAD] == []
    assert LongConnection._running is None
    assert ws.connections == 1  # it did not reconnect on the way out
