"""The board's live feed: Server-Sent Events at ``/board/events``.

One task renders the board every ``every_s`` while anyone watches, in the server's thread
pool, and sends what changed since the last render: the parts that changed, the rows that
changed, and the rows' order when islands came or went (one render however many watch; the
same bytes to every viewer). A viewer joining gets the whole board first. A viewer whose queue
fills up (a slow browser) is given the whole board again instead of the changes it missed.

A stream ends when its viewer's pass expires (``event: expired``), when the server stops, or
when a write stalls for ``write_timeout_s``. A comment every ``heartbeat_s`` keeps proxies from
closing an idle stream and finds viewers that left. The viewers are counted from the moment
their request is accepted (``reserve``); the one too many is told to come back later (``event:
busy`` and a ``retry`` of a minute: a browser's EventSource does not retry a refused request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import orjson
from aiohttp import web

from bot.domain.time_source import Clock, utcnow
from bot.http.board_pages import LiveParts

log = logging.getLogger(__name__)

CLOSE = b""  # put in a viewer's queue: the server is shutting down
QUEUE = 16  # changes a viewer may be behind before it is sent the whole board instead


def event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


class BoardFeed:
    def __init__(
        self,
        render: Callable[[], LiveParts],
        *,
        every_s: float = 1.0,
        heartbeat_s: float = 15.0,
        write_timeout_s: float = 10.0,
        max_viewers: int = 200,
        retry_ms: int = 3000,
        clock: Clock = utcnow,
    ) -> None:
        self._render = render
        self.every_s = every_s
        self.heartbeat_s = heartbeat_s
        self.write_timeout_s = write_timeout_s
        self.max_viewers = max_viewers
        self.retry_ms = retry_ms
        self.clock = clock
        self._viewers: set[asyncio.Queue[bytes]] = set()
        self._reserved = 0
        self._task: asyncio.Task[None] | None = None
        self._last: LiveParts | None = None
        self._whole: bytes | None = None  # the whole board as last rendered
        self._failing = False
        self._closed = False
        self.renders = 0  # how many times the board was rendered (benchmarks, tests)

    @property
    def viewers(self) -> int:
        return self._reserved

    def reserve(self) -> bool:
        """Count a viewer in before its answer starts; False when there are enough (then it
        is not counted). ``serve`` gives the place back."""
        if self._closed or self._reserved >= self.max_viewers:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        """Give back a place ``reserve`` took when its stream never started."""
        self._reserved -= 1

    async def busy(self, response: web.StreamResponse) -> None:
        """Tell a viewer turned away to come back in a minute."""
        await response.write(b"retry: 60000\n\n" + event("busy", {}))

    async def serve(self, response: web.StreamResponse, *, until: datetime) -> None:
        """Stream the board to one viewer (reserved, ``response`` prepared) until they leave,
        their pass expires at ``until``, or the server stops."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE)
        try:
            if self._closed:
                return
            self._viewers.add(queue)
            whole = self._whole  # taken with the queue: every change after it is queued
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._run())
            await self._write(response, f"retry: {self.retry_ms}\n\n".encode())
            if whole is not None:
                await self._write(response, whole)
            while True:
                left = (until - self.clock()).total_seconds()
                if left <= 0:
                    await self._write(response, event("expired", {}))
                    return
                try:
                    data = await asyncio.wait_for(queue.get(), timeout=min(self.heartbeat_s, left))
                except TimeoutError:
                    if (until - self.clock()).total_seconds() <= 0:
                        continue  # its pass expired: said at the top of the loop
                    data = b": still here\n\n"
                if data == CLOSE:
                    return
                await self._write(response, data)
        except (ConnectionError, RuntimeError, TimeoutError):  # the viewer left, or stalled
            return
        finally:
            self._viewers.discard(queue)
            self._reserved -= 1

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        await asyncio.wait_for(response.write(data), timeout=self.write_timeout_s)

    async def close(self, _app: web.Application | None = None) -> None:
        """Let every viewer's stream end (the server is shutting down)."""
        self._closed = True
        for queue in list(self._viewers):
            _replace(queue, CLOSE)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._viewers:
                try:
                    board = await loop.run_in_executor(None, self._render)
                except Exception:  # said once; the viewers are told the board is not live
                    if not self._failing:
                        log.exception("board: the live feed cannot render the board")
                        self._send(event("stale", {}))
                    self._failing = True
                else:
                    if self._failing:
                        log.info("board: the live feed renders the board again")
                    self._failing = False
                    self.renders += 1
                    self._changed(board)
                await asyncio.sleep(self.every_s)
        finally:
            self._task = None
            self._last = self._whole = None  # the next viewer gets a fresh render

    def _changed(self, board: LiveParts) -> None:
        """Send what changed since the last render (nothing when nothing did)."""
        ids = [i for i, _ in board.rows]
        whole = event("board", _payload(board.parts, board.rows, order=ids))
        last, self._last, self._whole = self._last, board, whole
        if last is None:
            self._send(whole)
            return
        parts = {k: v for k, v in board.parts.items() if last.parts.get(k) != v}
        before = dict(last.rows)
        rows = [(i, html) for i, html in board.rows if before.get(i) != html]
        moved = ids != [i for i, _ in last.rows]
        if parts or rows or moved:
            self._send(event("board", _payload(parts, rows, order=ids if moved else None)))

    def _send(self, data: bytes) -> None:
        for queue in list(self._viewers):
            if queue.full():  # too far behind: the whole board instead of what it missed
                _replace(queue, self._whole or data)
            else:
                queue.put_nowait(data)


def _payload(
    parts: object, rows: list[tuple[int, str]], *, order: list[int] | None
) -> dict[str, object]:
    """``order``: every island's id in the table's order, when it changed (the rows of ids
    not in it are gone); None: the same rows as before."""
    return {"parts": parts, "rows": [[i, html] for i, html in rows], "order": order}


def _replace(queue: asyncio.Queue[bytes], data: bytes) -> None:
    """Empty the viewer's queue and put ``data`` in it."""
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            break
    queue.put_nowait(data)
