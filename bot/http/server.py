"""The bot's HTTP server (aiohttp, in a thread of its own): Slack's requests in HTTP mode
(``POST /slack/events``), ``/healthz``, and the API (``bot.api``: registration, registry,
``/readyz``, ``/metrics``).

The Slack route is a thin adapter, as bolt's own adapters are: it turns the aiohttp request
into a ``BoltRequest`` (the raw body, so the signature can be checked), runs ``App.dispatch``
in a thread, and turns the ``BoltResponse`` back. Signature checking is bolt's middleware:
unsigned, wrongly signed or stale requests get 401 and reach no listener.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web
from slack_bolt import App, BoltRequest

from bot.http.api import Api

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's payloads are a few KB


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class WebServer:
    def __init__(
        self, *, slack: App | None, address: Address, api: Api | None = None, threads: int = 32
    ) -> None:
        self.slack = slack
        self.api = api
        self.address = address
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="http")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.port = address.port  # the bound port (when asked for port 0)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        if self.slack is not None:
            app.router.add_post("/slack/events", self._slack)
        app.router.add_get("/healthz", self._healthz)
        if self.api is not None:
            app.router.add_routes(self.api.routes())
        return app

    async def _slack(self, request: web.Request) -> web.Response:
        assert self.slack is not None
        body = (await request.read()).decode("utf-8", errors="replace")
        headers: dict[str, str | Sequence[str]] = {}
        for key in set(request.headers.keys()):
            headers[key.lower()] = request.headers.getall(key)
        bolt_request = BoltRequest(body=body, query=request.query_string, headers=headers)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(self._executor, self.slack.dispatch, bolt_request)
        result = web.Response(status=response.status, body=response.body.encode("utf-8"))
        for name, values in response.headers.items():
            for value in values:
                result.headers.add(name, value)
        return result

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # ---- running in a thread ---------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> WebServer:
        self._thread = threading.Thread(target=self._serve, name="http-server", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise TimeoutError(f"the HTTP server did not start on {self.address}")
        if self._error is not None:
            raise self._error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
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
        loop.close()

    async def _open(self) -> None:
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address.host, self.address.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
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
        self._executor.shutdown(wait=False, cancel_futures=True)
