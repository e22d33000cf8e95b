"""Lark's long connection (its counterpart of Slack's Socket Mode): events and card clicks come
in over a WebSocket the bot opens itself, so the bot needs no public URL. Built on
``lark_oapi.ws.Client`` (lark-oapi 1.7.5), which does the protocol (discovery, protobuf frames,
pings, answering each event, reconnecting); this module only makes it safe to run inside the
bot. Pitfalls of that client worked around here:

- Its event loop is a module global (``lark_oapi.ws.client.loop``, taken when the SDK is first
  imported) and ``start()`` blocks forever in ``loop.run_until_complete``. Called from a thread
  that runs a loop (the bot's aiohttp server) it fails ("loop is already running", or "another
  loop is running"); two clients in one process would share, and fight over, one loop. So the
  client runs on a daemon thread of its own, with a new loop made that thread's loop and put in
  the module global *before* the client is built; and only one ``LongConnection`` may run in a
  process at a time (a second ``start()`` raises ``RuntimeError``).
  The client is also built on that thread: its constructor starts a task (a cache's cleaner)
  on the current thread's loop, which elsewhere would never run.
- It has no way to stop. Stopping its loop is not enough: while it connects, ``start()`` takes
  the loop's "stopped" error for a failed connection and goes on (disconnects, reconnects). So
  ``stop()`` stops the loop again at each step until ``start()`` gives up, then cancels the
  client's tasks and closes its WebSocket with a close frame, so Lark stops routing events to
  it at once (Lark gives each event to one of the app's connections: a half-dead one would
  swallow events until Lark noticed).
- Its logger ("Lark") writes to stdout through a handler of its own, past the bot's handlers
  and their secret masking, and at INFO logs the WebSocket address, whose query carries the
  connection's ``access_key`` and ``ticket``. The client is built at WARNING, the SDK's own
  handler is taken off (records still reach the root's handlers), and a filter cuts the query
  off every WebSocket address the SDK logs (and the ``websockets`` library's DEBUG handshake
  lines). The app secret is only ever sent in the discovery request's body, never logged. (At
  DEBUG the SDK logs every event's full payload.)
- It gives up for good on a discovery answer it takes for the caller's fault (any code but 0,
  1 and 1000040343: a wrong secret, but also codes Lark has sent for passing trouble, such as
  1000040345 "system busy"). At ``start()`` it raises; while reconnecting it says nothing and
  leaves the client idle, its ``start()`` still blocking. Both end the thread here, with
  ``error`` saying why (the reconnecting task is watched through the SDK's public
  ``on_reconnecting`` hook); the bot decides whether to start again.
- It calls the event handler on its own loop, synchronously, and answers the frame after: a
  handler must return at once (Lark waits 3 seconds, then sends the event again, up to four
  times) and hand slow work elsewhere. An event with no handler registered is answered 500, so
  Lark sends it again: register a handler for every event the app subscribes to.

Card clicks: Lark sends ``card.action.trigger`` over the long connection as an ordinary
``event`` frame; the dispatcher's ``register_p2_card_action_trigger`` handler answers it and
its result (toast, card) goes back in the answer's ``data``. Frames of type ``card`` (the old
card callback) are dropped by this SDK without an answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from contextlib import suppress
from typing import Any, ClassVar

import lark_oapi as lark
import lark_oapi.ws.client as sdk_ws
from lark_oapi.core import log as sdk_log

log = logging.getLogger(__name__)

SDK_LOGGER = "Lark"  # the logger every part of lark-oapi logs to
WEBSOCKETS_LOGGER = "websockets.client"  # at DEBUG, logs the request line of each handshake
_HALT_EVERY_S = 0.05  # how often stop() stops the SDK's loop again while start() goes on
_WIND_DOWN_S = 2.0  # for the client's tasks to end, and for its socket's closing handshake
_WS_QUERY = re.compile(r"(wss?://[^\s?#]+)\?[^\s]*")
_TICKET_PARAM = re.compile(r"((?:access_key|ticket)=)[^&\s]+")


class _HideConnectionTickets(logging.Filter):
    """Cuts the query (``access_key``, ``ticket``) off WebSocket addresses in the SDK's records
    and the handshake's request line: they let anyone who reads the log open the connection."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format: leave it to the handler
            return True
        hidden = _TICKET_PARAM.sub(r"\1<hidden>", _WS_QUERY.sub(r"\1?<hidden>", message))
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


def quiet_sdk_logging() -> None:
    """The SDK's logger without its own stdout handler (records go to the bot's handlers, which
    format and mask them); connection tickets hidden in it and in the WebSocket library's
    client logger. Idempotent."""
    sdk_logger = logging.getLogger(SDK_LOGGER)
    own: logging.Handler | None = getattr(sdk_log, "handler", None)
    if own is not None and own in sdk_logger.handlers:
        sdk_logger.removeHandler(own)
    for logger in (sdk_logger, logging.getLogger(WEBSOCKETS_LOGGER)):
        if not any(isinstance(f, _HideConnectionTickets) for f in logger.filters):
            logger.addFilter(_HideConnectionTickets())


class LongConnection:
    """One app's long connection, on a thread of its own (see the module docstring for why).

    ``handler`` is the SDK's ``EventDispatcherHandler``, the same one an HTTP callback route
    takes (events here skip its token and signature checks: the connection is authenticated).
    """

    _slot_lock: ClassVar[threading.Lock] = threading.Lock()
    _running: ClassVar[LongConnection | None] = None  # the one this process runs

    def __init__(
        self, *, app_id: str, app_secret: str, handler: lark.EventDispatcherHandler, domain: str
    ) -> None:
        self._app_id = app_id
        self._app_secret = app_secret
        self._handler = handler
        self._domain = domain
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._stop_requested = threading.Event()
        self._revive_lock = threading.Lock()  # revive's look and start, against a stop
        self._sdk_returned = False  # set on the connection's thread once its start() is over
        self._error: Exception | None = None
        self._watched: asyncio.Task[Any] | None = None  # the SDK's reconnecting task

    def __repr__(self) -> str:  # never the secret
        return f"LongConnection(app_id={self._app_id!r}, domain={self._domain!r})"

    @property
    def connected(self) -> bool:
        """Whether the WebSocket to Lark is open now. Read from the client's ``_conn`` (no
        public flag exists; the SDK's own ``FeishuChannel`` reads the same): False while it
        reconnects, after it gave up, and once stopped."""
        thread, client = self._thread, self._client
        alive = thread is not None and thread.is_alive()
        return alive and getattr(client, "_conn", None) is not None

    @property
    def error(self) -> Exception | None:
        """Why the SDK gave up on its own (e.g. Lark refused the app's credentials), else None."""
        return self._error

    def start(self) -> None:
        """Start the connection's thread and return; it connects (and reconnects) by itself."""
        with LongConnection._slot_lock:
            running = LongConnection._running
            if running is not None:
                raise RuntimeError(
                    f"a Lark long connection already runs in this process ({running!r}):"
                    " lark-oapi's ws client keeps its event loop in a module global, so only"
                    " one can run at a time; stop() it first"
                )
            LongConnection._running = self
        quiet_sdk_logging()
        self._stop_requested.clear()
        self._sdk_returned = False
        self._error = self._watched = None
        self._loop = self._client = None
        self._thread = threading.Thread(target=self._run, name="lark-long-connection", daemon=True)
        self._thread.start()

    def revive(self) -> None:
        """Start again a connection the SDK gave up on (its thread ended with no ``stop``:
        a refused reconnect, Lark busy). A job."""
        with self._revive_lock:  # a stop meanwhile is not undone by this start
            thread = self._thread
            if self._stop_requested.is_set() or thread is None or thread.is_alive():
                return
            log.warning("Lark long connection had ended (%s); connecting again", self._error)
            self.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Close the connection and end its thread; True once it ended within ``timeout_s``.
        Safe to call twice, or before ``start()``. False only when the SDK is stuck in a
        blocking call (its discovery request has no timeout): the daemon thread is left."""
        with self._revive_lock:
            thread = self._thread
            if thread is None:
                return True
            self._stop_requested.set()
        deadline = time.monotonic() + timeout_s
        while thread.is_alive():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            loop = self._loop
            if loop is not None:
                with suppress(RuntimeError):  # closed meanwhile: the thread is ending
                    loop.call_soon_threadsafe(self._halt, loop)
            thread.join(min(_HALT_EVERY_S, remaining))
        if thread.is_alive():
            log.warning("Lark long connection did not stop within %.1f s", timeout_s)
            return False
        self._thread = None
        return True

    # ---- on the connection's thread ------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        previous = sdk_ws.loop
        sdk_ws.loop = loop  # before the client is built: every call of it reads the global
        try:
            if not self._stop_requested.is_set():
                self._serve(loop)
        except Exception as exc:  # the client could not even be built
            self._error = exc
            log.exception("Lark long connection could not start")
        finally:
            sdk_ws.loop = previous
            with suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            asyncio.set_event_loop(None)
            with LongConnection._slot_lock:
                if LongConnection._running is self:
                    LongConnection._running = None

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        client = sdk_ws.Client(
            self._app_id,
            self._app_secret,
            log_level=lark.LogLevel.WARNING,
            event_handler=self._handler,
            domain=self._domain,
            auto_reconnect=True,
        )
        client.on_reconnecting = self._on_reconnecting
        client.on_reconnected = self._on_reconnected
        self._client = client
        gave_up: Exception | None = None
        try:
            client.start()  # returns only by raising: our stop, or the SDK giving up
        except Exception as exc:
            if not self._stop_requested.is_set() and self._error is None:
                gave_up = self._error = exc
        finally:
            self._sdk_returned = True
            loop.run_until_complete(_wind_down(client))
        if gave_up is not None:
            log.error("Lark long connection gave up: %s", gave_up)

    def _halt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop the loop under the SDK's ``start()`` (not under our own wind-down), and again in
        the first step of whatever it runs next: given a few milliseconds, it would reconnect
        on the way out."""
        if not self._sdk_returned:
            loop.stop()
            loop.call_soon(self._halt, loop)

    def _on_reconnecting(self) -> None:
        """Called by the SDK inside the task that reconnects (public hook): watching that task
        is how we learn the SDK gave up reconnecting, which it otherwise keeps to itself."""
        log.warning("Lark long connection lost; reconnecting")
        task = asyncio.current_task()
        if task is not None and task is not self._watched:
            self._watched = task
            task.add_done_callback(self._reconnect_ended)

    def _reconnect_ended(self, task: asyncio.Task[Any]) -> None:
        """Ending with an error, the reconnecting task leaves the client idle for good: record
        why and stop the loop, so the thread ends and ``error`` tells."""
        if task.cancelled() or self._sdk_returned:
            return
        exc = task.exception()
        if exc is None or not isinstance(exc, Exception):
            return
        if self._error is None:
            self._error = exc
            log.error("Lark long connection gave up reconnecting: %s", exc)
        task.get_loop().stop()

    def _on_reconnected(self) -> None:
        log.info("Lark long connection re-established")


async def _wind_down(client: Any) -> None:
    """Cancel what the client left running (receive and ping loops, handlers, a reconnect),
    then close its socket: cancelled first, or its receive loop would see the close and
    reconnect. One step first, so a handshake that just finished stores its socket; and the
    socket is taken before cancelling, as a cancelled ``_disconnect`` forgets it without
    closing it. Cancelled more than once, as its ping loop sleeps again in a ``finally``."""
    await asyncio.sleep(0)
    sockets = [getattr(client, "_conn", None)]
    me = asyncio.current_task()
    for _round in range(3):
        pending = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if not pending:
            break
        for task in pending:
            task.cancel()
        done, _ = await asyncio.wait(pending, timeout=_WIND_DOWN_S / 2)
        for task in done:  # retrieved, so asyncio does not log them as never retrieved
            if not task.cancelled():
                task.exception()
        sockets.append(getattr(client, "_conn", None))
    for conn in {id(c): c for c in sockets if c is not None}.values():
        with suppress(Exception):
            await asyncio.wait_for(conn.close(), _WIND_DOWN_S)
