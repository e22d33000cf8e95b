"""A fake of Lark's long-connection server (the "长连接" event intake), over real HTTP and a real
WebSocket on 127.0.0.1, spoken exactly as ``lark-oapi``'s ``ws.Client`` (1.7.5) expects it, so
the SDK itself is what the tests drive, not a stand-in.

What it serves, as Lark does:

- ``POST /callback/ws/endpoint`` (discovery): ``{"AppID", "AppSecret"}`` in, and back
  ``{"code": 0, "data": {"URL": ..., "ClientConfig": {...}}}``: a one-use WebSocket address whose
  query carries ``device_id`` and ``service_id`` (which the SDK parses) and, as Lark's real
  addresses do, an ``access_key`` and a ``ticket`` (credentials a log must never show). A wrong
  AppID is answered ``1000040346 app_id is invalid`` (the code Lark answers, as seen in the
  wild); a wrong AppSecret ``514`` (the SDK's ``AUTH_FAILED``: Lark documents no code for it).
  Any code but 0, 1 and 1000040343 makes the SDK give up for good (``ClientException``); those
  two it retries. ``refuse_discovery`` makes every discovery answer a given code.
- ``GET /ws/v2`` (the WebSocket): binary protobuf ``pbbp2.Frame``s, built and read with the
  SDK's own generated class. The client's ``ping`` control frames are answered with a ``pong``
  whose payload is the ``ClientConfig`` (the SDK re-applies it: Lark can retune a live client).
- ``push_event``: a data frame (``type`` ``event`` or ``card``, ``message_id``, ``trace_id``,
  ``sum``, ``seq``, ``timestamp``; the event JSON as payload, split in ``parts`` frames if
  asked), then waits for the client's answer (the same frame echoed, ``biz_rt`` header added,
  payload ``{"code": 200}`` or with ``data``: base64 of a callback's JSON result).
- ``drop``: closes the socket (1001, going away) as a server restart does; the SDK rediscovers
  and reconnects.
- ``/open-apis/*``, when given an ``open_api`` (a ``tests.fakelark.FakeLark``): handed to it, as
  its own server would (bodies over its limits answered 413), because the SDK takes one
  ``domain`` for both the Open API and discovery, as Lark serves them on one origin. A bot
  pointed at ``domain`` then calls the Open API and opens its long connection there.

Everything the client sends that Lark would not accept (a text message, an answer echoing a
different frame, an answer to nothing) is kept in ``protocol_errors`` for the tests to check.
The ``ClientConfig`` defaults are short (no reconnect jitter, one second between attempts) so a
reconnect takes milliseconds; Lark sends ``ReconnectInterval`` 120 and ``ReconnectNonce`` 30.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from tests.fakelark_rules import BODY_LIMIT, FILE_LIMIT, KB

if TYPE_CHECKING:
    from tests.fakelark import FakeLark

APP_ID = "cli_fake_island"
APP_SECRET = "fake-app-secret-3f9a"  # a test credential
SERVICE_ID = 33554678  # a service id as Lark's addresses carry one
CONTROL, DATA = 0, 1  # Frame.method
APP_ID_INVALID = 1000040346  # Lark's answer to an unknown AppID
AUTH_FAILED = 514  # the SDK's AUTH_FAILED (lark_oapi.ws.const), for a wrong AppSecret

_ids = itertools.count(1)


@dataclass
class Reply:
    """The client's answer to one pushed data frame."""

    message_id: str
    headers: dict[str, str]
    payload: dict[str, Any]
    frame: Any  # the decoded pbbp2.Frame


@dataclass
class _Link:
    ws: web.WebSocketResponse
    device_id: str
    service_id: int


@dataclass
class FakeLarkWS:
    """Lark's long-connection server for one app (see the module docstring)."""

    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    ping_interval: int = 120  # seconds, as Lark sends it
    reconnect_interval: int = 1
    reconnect_nonce: int = 0
    reconnect_count: int = -1  # -1: without end
    service_id: int = SERVICE_ID
    connections: int = 0  # WebSockets accepted, in all
    discoveries: int = 0  # discovery requests, in all (refused ones too)
    pings: int = 0
    replies: list[Reply] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)
    tickets_issued: list[str] = field(default_factory=list)  # for tests that check logs
    open_api: FakeLark | None = None  # the Open API fake served on this origin too, if any
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._changed = threading.Condition()
        self._links: list[_Link] = []
        self._tickets: dict[str, str] = {}  # ticket -> device_id, one use each
        self._sent: dict[str, Any] = {}  # message_id -> the last frame sent for it
        self._waiting: dict[str, concurrent.futures.Future[Reply]] = {}
        self._refusal: tuple[int, str] | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name="fakelark-ws", daemon=True)

    # ---- the test's side ---------------------------------------------------------------------

    @property
    def domain(self) -> str:
        """What the SDK takes as ``domain`` (discovery is ``{domain}/callback/ws/endpoint``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_sockets(self) -> int:
        with self._changed:
            return len(self._links)

    def client_config(self) -> dict[str, int]:
        return {
            "ReconnectCount": self.reconnect_count,
            "ReconnectInterval": self.reconnect_interval,
            "ReconnectNonce": self.reconnect_nonce,
            "PingInterval": self.ping_interval,
        }

    def wait_connected(self, timeout: float = 5.0, *, connections: int = 1) -> None:
        """Until a socket is open and at least ``connections`` were accepted in all."""
        self._wait(
            lambda: bool(self._links) and self.connections >= connections,
            timeout,
            f"no open long connection (#{connections}) within {timeout} s"
            f" ({self.connections} accepted, {self.discoveries} discoveries)",
        )

    def wait_closed(self, timeout: float = 5.0) -> None:
        """Until no socket is open (the client went away)."""
        self._wait(lambda: not self._links, timeout, f"a socket still open after {timeout} s")

    def push_event(
        self,
        payload: dict[str, Any],
        frame_type: str = "event",
        *,
        timeout: float = 5.0,
        parts: int = 1,
    ) -> dict[str, Any]:
        """Send ``payload`` as one data frame (``parts`` > 1: split in that many, as Lark splits
        a large one) and return the client's answer payload, e.g. ``{"code": 200}``. Raises
        ``TimeoutError`` when no answer comes (the SDK does not answer ``card`` frames)."""
        link = self._current()
        message_id = f"msg_{next(_ids)}_{secrets.token_hex(4)}"
        waiter: concurrent.futures.Future[Reply] = concurrent.futures.Future()
        self._waiting[message_id] = waiter
        frames = self._data_frames(
            link, json.dumps(payload).encode(), frame_type, message_id, parts
        )
        self._sent[message_id] = frames[-1]

        async def send() -> None:
            for frame in frames:
                await link.ws.send_bytes(frame.SerializeToString())

        try:
            asyncio.run_coroutine_threadsafe(send(), self._loop).result(timeout)
            reply = waiter.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"no answer to {frame_type} frame {message_id} within {timeout} s"
            ) from None
        finally:
            self._waiting.pop(message_id, None)
        return reply.payload

    def drop(self) -> None:
        """Close every open socket (1001, going away), as a restarting server does."""

        async def close() -> None:
            for link in list(self._links):
                await link.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restart")

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self.wait_closed()

    def refuse_discovery(self, code: int, msg: str) -> None:
        """Answer every discovery from now on with ``code`` (``allow_discovery`` ends it)."""
        self._refusal = (code, msg)

    def allow_discovery(self) -> None:
        self._refusal = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeLarkWS:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def shut() -> None:
            for link in list(self._links):
                await link.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
            if self._runner is not None:
                await self._runner.cleanup()

        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # ---- the server --------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=FILE_LIMIT + KB * KB)
        app.router.add_post("/callback/ws/endpoint", self._endpoint)
        app.router.add_get("/ws/v2", self._socket)
        if self.open_api is not None:
            app.router.add_route("*", "/open-apis/{path:.*}", self._open_api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _endpoint(self, request: web.Request) -> web.Response:
        with self._changed:
            self.discoveries += 1
            self._changed.notify_all()
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"code": 1, "msg": "bad request body"}, status=400)
        if self._refusal is not None:
            code, msg = self._refusal
            return web.json_response({"code": code, "msg": msg, "data": {}})
        if body.get("AppID") != self.app_id:
            return web.json_response({"code": APP_ID_INVALID, "msg": "app_id is invalid"})
        if body.get("AppSecret") != self.app_secret:
            return web.json_response({"code": AUTH_FAILED, "msg": "app_secret is invalid"})
        ticket, access_key = secrets.token_hex(16), secrets.token_hex(16)
        device_id = str(7_000_000_000 + next(_ids))
        self._tickets[ticket] = device_id
        self.tickets_issued += [ticket, access_key]
        url = (
            f"ws://127.0.0.1:{self.port}/ws/v2?fpid=493&aid=552564&device_id={device_id}"
            f"&access_key={access_key}&service_id={self.service_id}&ticket={ticket}"
        )
        data = {"URL": url, "ClientConfig": self.client_config()}
        return web.json_response({"code": 0, "msg": "ok", "data": data})

    async def _open_api(self, request: web.Request) -> web.Response:
        """One Open API request, handed to ``open_api`` as its own server hands it (off this
        loop: the fake's lock must not hold up the socket)."""
        assert self.open_api is not None
        upload = request.path.startswith("/open-apis/im/v1/files")
        if (request.content_length or 0) > (FILE_LIMIT + KB * KB if upload else BODY_LIMIT):
            self.open_api.too_large(request.method, request.raw_path)
            return web.Response(status=413, text="Too Large")
        body = await request.read()
        heard = {name.lower(): value for name, value in request.headers.items()}
        status, headers, payload = await asyncio.to_thread(
            self.open_api.handle, request.method, request.raw_path, heard, body
        )
        return web.Response(status=status, headers=headers, body=payload)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        device_id = self._tickets.pop(ticket, None)  # one use: the SDK rediscovers each time
        if device_id is None or request.query.get("device_id") != device_id:
            self.protocol_errors.append("WebSocket opened without a fresh discovery ticket")
            return web.Response(status=401, text="ticket invalid")
        ws = web.WebSocketResponse(autoping=True)  # websockets' own keepalive pings answered
        await ws.prepare(request)
        link = _Link(ws, device_id, self.service_id)
        with self._changed:
            self.connections += 1
            self._links.append(link)
            self._changed.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    await self._frame(link, msg.data)
                elif msg.type == WSMsgType.TEXT:
                    self.protocol_errors.append(f"text message: {msg.data[:80]!r}")
        finally:
            with self._changed:
                self._links.remove(link)
                self._changed.notify_all()
        return ws

    async def _frame(self, link: _Link, raw: bytes) -> None:
        frame = Frame()
        frame.ParseFromString(raw)
        headers = {h.key: h.value for h in frame.headers}
        if frame.service != link.service_id:
            self.protocol_errors.append(f"frame for service {frame.service}")
        if frame.method == CONTROL:
            if headers.get("type") == "ping":
                with self._changed:
                    self.pings += 1
                pong = Frame(SeqID=0, LogID=0, service=link.service_id, method=CONTROL)
                pong.headers.add(key="type", value="pong")
                pong.payload = json.dumps(self.client_config()).encode()
                with suppress(ConnectionResetError):  # the socket is closing (drop)
                    await link.ws.send_bytes(pong.SerializeToString())
            else:
                self.protocol_errors.append(f"control frame of type {headers.get('type')!r}")
            return
        self._answer(frame, headers)

    def _answer(self, frame: Any, headers: dict[str, str]) -> None:
        message_id = headers.get("message_id", "")
        sent = self._sent.get(message_id)
        if sent is None:
            self.protocol_errors.append(f"answer to no frame ({message_id!r})")
            return
        if (frame.SeqID, frame.LogID, frame.method) != (sent.SeqID, sent.LogID, sent.method):
            self.protocol_errors.append(f"answer to {message_id} does not echo its frame")
        if "biz_rt" not in headers:
            self.protocol_errors.append(f"answer to {message_id} without biz_rt")
        reply = Reply(message_id, headers, json.loads(frame.payload), frame)
        self.replies.append(reply)
        waiter = self._waiting.get(message_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def _data_frames(
        self, link: _Link, body: bytes, frame_type: str, message_id: str, parts: int
    ) -> list[Any]:
        size = -(-len(body) // parts)  # ceiling: every part but the last is full
        chunks = [body[i * size : (i + 1) * size] for i in range(parts)]
        trace_id = secrets.token_hex(8)
        frames = []
        for seq, chunk in enumerate(chunks):
            frame = Frame(SeqID=next(_ids), LogID=next(_ids), service=link.service_id, method=DATA)
            for key, value in (
                ("type", frame_type),
                ("message_id", message_id),
                ("trace_id", trace_id),
                ("sum", str(parts)),
                ("seq", str(seq)),
                ("timestamp", str(int(time.time() * 1000))),
            ):
                frame.headers.add(key=key, value=value)
            frame.payload = chunk
            frames.append(frame)
        return frames

    def _current(self) -> _Link:
        with self._changed:
            if not self._links:
                raise RuntimeError("no client is connected to the fake long-connection server")
            return self._links[-1]

    def _wait(self, check: Any, timeout: float, failure: str) -> None:
        with self._changed:
            if not self._changed.wait_for(check, timeout):
                raise TimeoutError(failure)


def callback_data(reply: dict[str, Any]) -> Any:
    """The JSON a callback's handler returned, out of the client's answer (``data`` is its
    base64), or None when the answer carries none."""
    data = reply.get("data")
    return None if data is None else json.loads(base64.b64decode(data))


@contextmanager
def serving(fake: FakeLarkWS | None = None) -> Iterator[FakeLarkWS]:
    fake = (fake or FakeLarkWS()).start()
    try:
        yield fake
    finally:
        fake.stop()


# ---- events as Lark sends them (schema 2.0, as an HTTP callback's plaintext) ------------------


def _header(event_type: str, app_id: str) -> dict[str, Any]:
    return {
        "event_id": f"ev_{secrets.token_hex(8)}",
        "token": "",  # the long connection carries no verification token worth checking
        "create_time": str(int(time.time() * 1000)),
        "event_type": event_type,
        "tenant_key": "tenant_fake",
        "app_id": app_id,
    }


def message_event(
    text: str,
    *,
    open_id: str = "ou_alice",
    chat_id: str = "oc_team",
    chat_type: str = "group",
    mentions: list[dict[str, Any]] | None = None,
    app_id: str = APP_ID,
) -> dict[str, Any]:
    """``im.message.receive_v1``: someone's text message (``@_user_1`` keys the mentions)."""
    return {
        "schema": "2.0",
        "header": _header("im.message.receive_v1", app_id),
        "event": {
            "sender": {
                "sender_id": {"open_id": open_id, "union_id": "on_alice", "user_id": None},
                "sender_type": "user",
                "tenant_key": "tenant_fake",
            },
            "message": {
                "message_id": f"om_{secrets.token_hex(8)}",
                "create_time": str(int(time.time() * 1000)),
                "chat_id": chat_id,
                "chat_type": chat_type,
                "message_type": "text",
                "content": json.dumps({"text": text}),
                "mentions": mentions or [],
            },
        },
    }


def card_click(
    value: dict[str, Any],
    *,
    open_id: str = "ou_alice",
    chat_id: str = "oc_team",
    message_id: str = "om_card",
    app_id: str = APP_ID,
) -> dict[str, Any]:
    """``card.action.trigger``: a click on a button of one of the bot's cards."""
    return {
        "schema": "2.0",
        "header": _header("card.action.trigger", app_id),
        "event": {
            "operator": {"open_id": open_id, "tenant_key": "tenant_fake"},
            "token": f"c-{secrets.token_hex(8)}",
            "action": {"value": value, "tag": "button"},
            "host": "im_message",
            "context": {"open_message_id": message_id, "open_chat_id": chat_id},
        },
    }
