"""The board's live feed: Server-Sent Events at ``/board/events``.

One task renders the board's parts every ``every_s`` while anyone watches, in the server's
thread pool, and sends them only when they changed; every viewer gets the same bytes (one
render however many watch). A viewer's queue holds one message: a slow browser skips to the
latest board instead of piling up old ones. A comment every ``heartbeat_s`` keeps proxies from
closing an idle stream and finds viewers that left. The number of viewers is bounded; the
one too many gets 503 and its browser tries again (``retry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

CLOSE = b""  # put in a viewer's queue: the server is shutting down


class BoardFeed:
    def __init__(
        self,
        render: Callable[[], Mapping[str, str]],
        *,
        every_s: float = 1.0,
        heartbeat_s: float = 15.0,
        max_viewers: int = 200,
        retry_ms: int = 3000,
    ) -> None:
        self._render = render
        self.every_s = every_s
        self.heartbeat_s = heartbeat_s
        self.max_viewers = max_viewers
        self.retry_ms = retry_ms
        self._viewers: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task[None] | None = None
        self._last: bytes | None = None
        self._failing = False
        self.renders = 0  # how many times the parts were rendered (benchmarks, tests)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def full(self) -> bool:
        return len(self._viewers) >= self.max_viewers

    async def serve(self, request: web.Request, response: web.StreamResponse) -> None:
        """Stream the board to one viewer until they leave or the server stops
        (``response``: prepared by the caller with its headers)."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        self._viewers.add(queue)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            await response.write(f"retry: {self.retry_ms}\n\n".encode())
            if self._last is not None:
                await response.write(self._last)
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), timeout=self.heartbeat_s)
                except TimeoutError:
                    data = b": still here\n\n"
                if data == CLOSE:
                    return
                await response.write(data)
        except (ConnectionError, RuntimeError):  # the viewer left (RuntimeError: closed transport)
            return
        finally:
            self._viewers.discard(queue)

    async def close(self, _app: web.Application | None = None) -> None:
        """Let every viewer's stream end (the server is shutting down)."""
        for queue in list(self._viewers):
            _put_latest(queue, CLOSE)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._viewers:
                try:
                    parts = await loop.run_in_executor(None, self._render)
                except Exception as exc:  # said once; the viewers keep the last board
                    if not self._failing:
                        log.warning("board: the live feed cannot render the board: %s", exc)
                    self._failing = True
                else:
                    if self._failing:
                        log.info("board: the live feed renders the board again")
                    self._failing = False
                    self.renders += 1
                    data = b"event: board\ndata: " + orjson.dumps(parts) + b"\n\n"
                    if data != self._last:
                        self._last = data
                        for queue in list(self._viewers):
                            _put_latest(queue, data)
                await asyncio.sleep(self.every_s)
        finally:
            self._task = None
            self._last = None  # the next viewer gets a fresh render, not one from long ago


def _put_latest(queue: asyncio.Queue[bytes], data: bytes) -> None:
    """Replace what the viewer has not taken yet: only the latest board matters."""
    with contextlib.suppress(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(data)
