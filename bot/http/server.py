"""The bot's HTTP server: aiohttp in a thread of its own, serving the routes it is given (the
API of ``bot.http.api``, ``/healthz``, and in Slack's HTTP mode ``POST /slack/events`` from the
Slack adapter).

Blocking work in a handler goes to ``loop.run_in_executor(None, ...)``: the server makes its
own thread pool the loop's default, so no handler waits for a free thread of someone else's.
The socket is bound by ``bind`` (before ``start`` if the address's port must be known early:
the islands' registration URL names it); connections that arrive before ``start`` wait in the
listen backlog.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from bot.words.catalogue import current, negotiate, speaking

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # the largest request body any route accepts (Slack's are a few KB)


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """``host:port`` (as the settings hold it)."""
        host, _, port = text.rpartition(":")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class WebServer:
    def __init__(
        self, *, address: Address, routes: Iterable[web.RouteDef] = (), threads: int = 32
    ) -> None:
        self.address = address
        self._routes: list[web.RouteDef] = [web.get("/healthz", _healthz), *routes]
        self._on_shutdown: list[Callable[[web.Application], Awaitable[None]]] = []
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="http")
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.port = address.port  # the bound port (when asked for port 0)

    def add_routes(self, routes: Iterable[web.RouteDef]) -> None:
        """More routes (before ``start``)."""
        if self._thread is not None:
            raise RuntimeError("routes are fixed once the server has started")
        self._routes.extend(routes)

    def on_shutdown(self, callback: Callable[[web.Application], Awaitable[None]]) -> None:
        """Called when the server stops, before it waits for the requests in flight (a
        stream that would otherwise run on ends there)."""
        if self._thread is not None:
            raise RuntimeError("shutdown callbacks are fixed once the server has started")
        self._on_shutdown.append(callback)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[_readers_language])
        app.router.add_routes(self._routes)
        app.on_shutdown.extend(self._on_shutdown)
        return app

    # ---- running in a thread ---------------------------------------------------------------

    def bind(self) -> WebServer:
        """Take the address now (its port is then known), serve later."""
        if self._socket is None:
            info = socket.getaddrinfo(
                self.address.host, self.address.port, type=socket.SOCK_STREAM
            )[0]
            sock = socket.socket(info[0], socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(info[4])
                sock.listen(128)
            except OSError:
                sock.close()
                raise
            self._socket = sock
            self.port = int(sock.getsockname()[1])
        return self

    def start(self, timeout_s: float = 10.0) -> WebServer:
        self.bind()
        self._thread = threading.Thread(target=self._serve, name="http-server", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise TimeoutError(f"the HTTP server did not start on {self.address}")
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(self._executor)
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._close())
        # what is still running (a stream whose viewer never read its end) is cancelled and
        # let finish, not left pending in a closed loop
        leftover = asyncio.all_tasks(loop)
        for task in leftover:
            task.cancel()
        if leftover:  # (gather of nothing would look for a loop this thread has not set)
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
        loop.close()

    async def _open(self) -> None:
        assert self._socket is not None
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()
        log.info("HTTP server listening on %s:%d", self.address.host, self.port)

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{self.address.host}:{self.port}"

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        elif self._socket is not None:  # bound, never served
            self._socket.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def _readers_language(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer in the language the reader's ``Accept-Language`` asks for, when the bot
    speaks it, else in the deployment's (text made in an executor thread is not: a
    ContextVar does not cross into it)."""
    with speaking(negotiate(request.headers.get("Accept-Language"))):
        response = await handler(request)
        if not response.prepared:  # (a stream has sent its headers already)
            response.headers.setdefault("Content-Language", current())
            vary = response.headers.get("Vary", "")
            if "accept-language" not in vary.lower():
                response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
        return response
