"""``POST /slack/events``: Slack's requests in HTTP mode, as a route for the bot's HTTP server.

A thin adapter, as bolt's own adapters are: the aiohttp request becomes a ``BoltRequest`` (the
raw body, so that bolt's middleware can check the signature), ``App.dispatch`` runs in the
server's thread pool, and the ``BoltResponse`` becomes the aiohttp response. Unsigned, wrongly
signed or stale requests get 401 from bolt and reach no listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web
from slack_bolt import App, BoltRequest

PATH = "/slack/events"


def events_route(app: App) -> web.RouteDef:
    async def handle(request: web.Request) -> web.Response:
        body = (await request.read()).decode("utf-8", errors="replace")
        headers: dict[str, str | Sequence[str]] = {}
        for key in set(request.headers.keys()):
            headers[key.lower()] = request.headers.getall(key)
        bolt_request = BoltRequest(body=body, query=request.query_string, headers=headers)
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(None, app.dispatch, bolt_request)
        result = web.Response(status=response.status, body=response.body.encode("utf-8"))
        for name, values in response.headers.items():
            for value in values:
                result.headers.add(name, value)
        return result

    return web.post(PATH, handle)
