"""The board's live feed: Server-Sent Events at ``/board/events``.

One task renders the board every ``every_s`` while anyone watches, in the server's thread
pool, and sends what changed since the last render: the parts that changed, the rows that
changed, and the rows' order when islands came or went (one render per language watched,
however many watch, all from one read of the board; the same bytes to every viewer of a
language). Each viewer is sent the board in its page's language: what was last sent, and the
changes worked out from it, are kept per language. A viewer joining gets the whole board
first. A viewer whose queue fills up (a slow browser) is given the whole board again instead
of the changes it missed.

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
from collections.abc import Callable, Mapping
from datetime import datetime

import orjson
from aiohttp import web

from bot.domain.time_source import Clock, utcnow
from bot.http.board_pages import LiveParts
from bot.words.catalogue import deployment_language

log = logging.getLogger(__name__)

CLOSE = b""  # put in a viewer's queue: the server is shutting down
QUEUE = 16  # changes a viewer may be behind before it is sent the whole board instead


def event(name: str, data: object) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


class BoardFeed:
    """``render``: the board's live parts in each of the languages given (called in the
    thread pool; it reads the board once and words it in each)."""

    def __init__(
        self,
        render: Callable[[tuple[str, ...]], Mapping[str, LiveParts]],
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
        self._viewers: dict[asyncio.Queue[bytes], str] = {}  # each viewer's queue: its language
        self._reserved = 0
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, LiveParts] = {}  # by language
        self._whole: dict[str, bytes] = {}  # the whole board as last rendered, by language
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

    async def serve(
        self, response: web.StreamResponse, *, until: datetime, language: str | None = None
    ) -> None:
        """Stream the board to one viewer (reserved, ``response`` prepared) in ``language``
        (None: the deployment's) until they leave, their pass expires at ``until``, or the
        server stops."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE)
        try:
            if self._closed:
                return
            language = language or deployment_language()
            self._viewers[queue] = language
            whole = self._whole.get(language)  # taken with the queue: every change after it
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
            self._viewers.pop(queue, None)
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
                languages = tuple(sorted(set(self._viewers.values())))
                for gone in set(self._last) - set(languages):  # no viewer of it left
                    self._last.pop(gone, None)
                    self._whole.pop(gone, None)
                try:
                    boards = await loop.run_in_executor(None, self._render, languages)
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
                    for language, board in boards.items():
                        self._changed(board, language)
                await asyncio.sleep(self.every_s)
        finally:
            self._task = None
            self._last, self._whole = {}, {}  # the next viewer gets a fresh render

    def _changed(self, board: LiveParts, language: str) -> None:
        """Send the viewers of ``language`` what changed since its last render (nothing when
        nothing did)."""
        ids = [i for i, _ in board.rows]
        whole = event("board", _payload(board.parts, board.rows, order=ids))
        last = self._last.get(language)
        self._last[language], self._whole[language] = board, whole
        if last is None:
            self._send(whole, language)
            return
        parts = {k: v for k, v in board.parts.items() if last.parts.get(k) != v}
        before = dict(last.rows)
        rows = [(i, html) for i, html in board.rows if before.get(i) != html]
        moved = ids != [i for i, _ in last.rows]
        if parts or rows or moved:
            data = event("board", _payload(parts, rows, order=ids if moved else None))
            self._send(data, language)

    def _send(self, data: bytes, language: str | None = None) -> None:
        """Queue ``data`` for the viewers of ``language`` (None: for every viewer)."""
        for queue, spoken in list(self._viewers.items()):
            if language is not None and spoken != language:
                continue
            if queue.full():  # too far behind: the whole board instead of what it missed
                _replace(queue, self._whole.get(spoken) or data)
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
