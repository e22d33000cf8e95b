"""The long connection, driven through lark-oapi's own ws client against a fake of Lark's
long-connection server (tests/fakelark_ws.py): events reach the dispatcher's handlers, a card
click's answer reaches Lark, a dropped connection comes back, stop() ends it all, and the
SDK's pitfalls (a module-global loop, no way to stop, giving up silently) stay worked around."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import lark_oapi as lark
import lark_oapi.ws.client as sdk_ws
import pytest
from lark_oapi.api.im.v1 import P2ImMessageReceiveV1
from lark_oapi.core import log as sdk_log
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)
from lark_oapi.ws.exception import ClientException

from bot.chat.lark.long_connection import SDK_LOGGER, WEBSOCKETS_LOGGER, LongConnection
from tests import fakelark_ws
from tests.fakelark_ws import FakeLarkWS, callback_data, card_click, message_event

pytestmark = pytest.mark.timeout(30)

TOAST = {"toast": {"type": "info", "content": "ok"}}


@dataclass
class Recorder:
    """What the dispatcher handed over, and on which thread."""

    messages: list[P2ImMessageReceiveV1] = field(default_factory=list)
    clicks: list[P2CardActionTrigger] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def on_message(self, data: P2ImMessageReceiveV1) -> None:
        self.threads.add(threading.current_thread().name)
        self.messages.append(data)

    def on_click(self, data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        self.clicks.append(data)
        return P2CardActionTriggerResponse(TOAST)

    def handler(self) -> Any:
        return (
            lark.EventDispatcherHandler.builder("", "")
            .register_p2_im_message_receive_v1(self.on_message)
            .register_p2_card_action_trigger(self.on_click)
            .build()
        )


@pytest.fixture
def fake() -> Iterator[FakeLarkWS]:
    with fakelark_ws.serving() as server:
        yield server


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def connection_to(fake: FakeLarkWS, recorder: Recorder, **kw: str) -> LongConnection:
    args = {"app_id": fake.app_id, "app_secret": fake.app_secret, "domain": fake.domain} | kw
    return LongConnection(handler=recorder.handler(), **args)


@pytest.fixture
def connected(fake: FakeLarkWS, recorder: Recorder) -> Iterator[LongConnection]:
    conn = connection_to(fake, recorder)
    conn.start()
    try:
        fake.wait_connected()
        yield conn
    finally:
        assert conn.stop(), "the long connection's thread did not end"


def until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_message_reaches_the_handler_and_is_answered_200(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    mention = {"key": "@_user_1", "id": {"open_id": "ou_bot"}, "name": "islandbot"}
    event = message_event(
        "@_user_1 start dev", open_id="ou_alice", chat_id="oc_team", mentions=[mention]
    )

    assert fake.push_event(event) == {"code": 200}

    (got,) = recorder.messages
    assert got.event.sender.sender_id.open_id == "ou_alice"
    assert got.event.message.chat_id == "oc_team"
    assert json.loads(got.event.message.content) == {"text": "@_user_1 start dev"}
    assert got.event.message.mentions[0].id.open_id == "ou_bot"
    assert recorder.threads == {"lark-long-connection"}  # the SDK's loop calls the handler
    assert connected.connected
    (reply,) = fake.replies  # the frame echoed, with how long the handler took
    assert reply.headers["type"] == "event"
    assert int(reply.headers["biz_rt"]) >= 0
    assert until(lambda: fake.pings >= 1)  # the SDK pings once connected (and gets a pong)
    assert fake.protocol_errors == []


def test_a_large_event_split_in_frames_is_put_together(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    text = "start dev " + "x" * 3000

    assert fake.push_event(message_event(text), parts=3) == {"code": 200}

    (got,) = recorder.messages
    assert json.loads(got.event.message.content)["text"] == text


def test_a_card_click_comes_as_an_event_frame_and_its_answer_reaches_lark(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    click = card_click({"action": "extend", "island": "dev-7"}, open_id="ou_bob", chat_id="oc_x")

    reply = fake.push_event(click, "event")

    assert reply["code"] == 200
    assert callback_data(reply) == TOAST  # the handler's response, base64 JSON in `data`
    (got,) = recorder.clicks
    assert got.event.operator.open_id == "ou_bob"
    assert got.event.action.value == {"action": "extend", "island": "dev-7"}
    assert got.event.action.tag == "button"
    assert got.event.context.open_chat_id == "oc_x"
    assert got.event.context.open_message_id == "om_card"


def test_a_card_frame_is_dropped_unanswered_by_this_sdk(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    """lark-oapi 1.7.5 returns on a ``type: card`` frame before calling anything: Lark would
    wait, then send it again. Clicks only arrive as ``event`` frames (above)."""
    with pytest.raises(TimeoutError, match="no answer to card frame"):
        fake.push_event(card_click({"action": "extend"}), "card", timeout=1.0)

    assert recorder.clicks == []
    assert fake.push_event(message_event("still here")) == {"code": 200}  # nothing broke


def test_an_event_without_a_handler_is_answered_500(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    """So Lark sends it again, four times: every subscribed event needs a handler."""
    event = message_event("hi")
    event["header"]["event_type"] = "im.chat.member.bot.added_v1"

    assert fake.push_event(event) == {"code": 500}


def test_a_dropped_connection_comes_back_and_still_delivers(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    fake.drop()

    fake.wait_connected(connections=2)
    assert fake.discoveries == 2  # a fresh address (and ticket) for each connection
    assert until(lambda: connected.connected)
    assert fake.push_event(message_event("after the restart")) == {"code": 200}
    assert [json.loads(m.event.message.content)["text"] for m in recorder.messages] == [
        "after the restart"
    ]
    assert connected.error is None
    assert fake.protocol_errors == []


def test_stop_closes_the_socket_and_ends_the_thread_within_its_timeout(
    fake: FakeLarkWS, recorder: Recorder
) -> None:
    conn = connection_to(fake, recorder)
    assert conn.stop()  # before start: nothing to do
    conn.start()
    fake.wait_connected()
    thread, loop = conn._thread, conn._loop
    assert thread is not None
    assert sdk_ws.loop is loop  # the SDK's global loop is the connection's own

    began = time.monotonic()
    assert conn.stop(timeout_s=3)

    assert time.monotonic() - began < 3
    assert not thread.is_alive()
    assert not conn.connected
    fake.wait_closed(2)  # a close frame, not a socket left to time out
    assert fake.connections == 1  # and no reconnecting on the way out
    assert conn.stop()  # twice: nothing more to do
    assert loop is not None
    assert loop.is_closed()
    assert sdk_ws.loop is not loop  # and given back


def test_stop_while_the_sdk_is_still_retrying_its_first_connection(
    fake: FakeLarkWS, recorder: Recorder
) -> None:
    """Its start() takes a stopped loop for a failed attempt and goes on: stop() insists."""
    fake.refuse_discovery(1, "system busy")  # the SDK retries this one
    conn = connection_to(fake, recorder)
    conn.start()
    assert until(lambda: fake.discoveries >= 1)

    assert conn.stop(timeout_s=3)
    assert conn.error is None


def test_only_one_long_connection_runs_in_a_process(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    second = connection_to(fake, recorder)

    with pytest.raises(RuntimeError, match="already runs in this process"):
        second.start()
    with pytest.raises(RuntimeError, match="already runs"):
        connected.start()

    assert connected.stop()
    second.start()  # free again once the first stopped
    try:
        fake.wait_connected(connections=2)
        assert fake.push_event(message_event("second")) == {"code": 200}
    finally:
        assert second.stop()


def test_it_starts_from_a_thread_that_runs_an_asyncio_loop(
    fake: FakeLarkWS, recorder: Recorder
) -> None:
    """The bot starts it from its aiohttp loop: a bare ``ws.Client().start()`` fails there
    (next test); the connection's own thread and loop do not care."""

    async def main() -> dict[str, Any]:
        conn = connection_to(fake, recorder)
        conn.start()
        try:
            await asyncio.to_thread(fake.wait_connected)
            return await asyncio.to_thread(fake.push_event, message_event("from a loop"))
        finally:
            assert await asyncio.to_thread(conn.stop)

    assert asyncio.run(main()) == {"code": 200}
    assert len(recorder.messages) == 1


def test_the_bare_sdk_client_cannot_start_inside_a_running_loop(
    fake: FakeLarkWS, recorder: Recorder
) -> None:
    """Why LongConnection has a thread and a loop of its own (the pitfall, pinned: if a later
    lark-oapi fixes it, this fails and the workaround can go)."""

    async def main() -> None:
        client = sdk_ws.Client(
            fake.app_id, fake.app_secret, event_handler=recorder.handler(), domain=fake.domain
        )
        client.start()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # its coroutines are never awaited
        with pytest.raises(RuntimeError, match="loop"):
            asyncio.run(main())
        gc.collect()
    assert fake.connections == 0


def test_credentials_lark_refuses_end_the_thread_with_the_reason(
    fake: FakeLarkWS, recorder: Recorder
) -> None:
    conn = connection_to(fake, recorder, app_secret="not-the-secret")
    conn.start()

    assert until(lambda: conn.error is not None)
    assert isinstance(conn.error, ClientException)
    assert conn.error.code == fakelark_ws.AUTH_FAILED
    assert not conn.connected
    assert conn.stop(timeout_s=2)
    assert fake.connections == 0

    right = connection_to(fake, recorder)  # the slot was given back
    right.start()
    try:
        fake.wait_connected()
    finally:
        assert right.stop()


def test_when_the_sdk_gives_up_reconnecting_the_thread_ends_and_says_why(
    fake: FakeLarkWS, recorder: Recorder, connected: LongConnection
) -> None:
    """Any discovery code but 0, 1 and 1000040343 makes the SDK stop reconnecting, silently,
    while its start() blocks on. Watching its reconnecting task turns that into ``error``."""
    fake.refuse_discovery(1000040345, "system busy")

    fake.drop()

    assert until(lambda: connected.error is not None)
    assert isinstance(connected.error, ClientException)
    assert connected.error.code == 1000040345
    assert until(lambda: not connected.connected)
    thread = connected._thread
    assert thread is not None
    thread.join(2)
    assert not thread.is_alive()


def test_sdk_logs_show_neither_the_connection_ticket_nor_the_secret(
    fake: FakeLarkWS,
    recorder: Recorder,
    connected: LongConnection,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger=SDK_LOGGER)  # the SDK's most talkative
    caplog.set_level(logging.DEBUG, logger=WEBSOCKETS_LOGGER)  # handshake request lines

    fake.drop()  # logs the old address and the new one
    fake.wait_connected(connections=2)
    assert until(lambda: "connected to" in caplog.text)
    fake.push_event(message_event("start dev"))

    sdk_text = "\n".join(r.getMessage() for r in caplog.records if r.name == SDK_LOGGER)
    assert "?<hidden>" in sdk_text
    assert "ticket=<hidden>" in caplog.text  # websockets' "> GET /ws/v2?..." line
    printed = capsys.readouterr().out
    for secret in [fake.app_secret, *fake.tickets_issued]:
        assert secret not in caplog.text
        assert secret not in printed
    assert sdk_log.handler not in logging.getLogger(SDK_LOGGER).handlers  # not its own stdout
    assert "not-the-secret" not in repr(connection_to(fake, recorder, app_secret="not-the-secret"))
