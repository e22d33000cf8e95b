"""The warm pools over HTTP: ``GET /api/v1/pools`` (each branch's pool, for dashboards; the
registry's read token when one is set) and ``POST /api/v1/pools/{branch}/refresh``, which CI
calls after it updated a branch's server code (its bearer token is ``ISLANDBOT_API_CI_TOKEN``):
the branch's warm islands started before then are renewed, never handed out."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from bot.app.pool_keeper import PoolKeeper
from bot.domain.errors import IslandbotError, UnknownBranch
from bot.domain.pool import PoolStatus
from bot.words import api_text, refusals

log = logging.getLogger(__name__)
T = TypeVar("T")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def pool_json(s: PoolStatus) -> dict[str, Any]:
    return {
        "branch": s.branch,
        "size": s.size,
        "size_from": s.size_source,
        "max_age_s": int(s.max_age.total_seconds()),
        "ready": s.ready,
        "starting": s.starting,
        "stopping": s.stopping,
        "failed": s.failed,
        "claims_today": s.claims_today,
        "misses_today": s.misses_today,
        "code_version": s.code_version,
        "refreshed_at": _iso(s.refreshed_at),
    }


def _bearer(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def _matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


class PoolRoutes:
    def __init__(self, keeper: PoolKeeper, *, ci_token: str | None, read_token: str | None) -> None:
        self.keeper = keeper
        self.ci_token = ci_token
        self.read_token = read_token

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/pools", self.list_pools),
            web.post("/api/v1/pools/{branch}/refresh", self.refresh),
        ]

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def list_pools(self, request: web.Request) -> web.Response:
        if self.read_token is not None and not _matches(_bearer(request), self.read_token):
            return _unauthorized(api_text.said(api_text.API_READ_UNAUTHORIZED))
        try:
            pools = await self._run(self.keeper.status)
        except IslandbotError as exc:
            log.warning("pools not read: %s", exc)
            return web.json_response(
                {"error": api_text.said(api_text.API_DATABASE_DOWN)}, status=503
            )
        return web.json_response({"pools": [pool_json(p) for p in pools]})

    async def refresh(self, request: web.Request) -> web.Response:
        if self.ci_token is None:
            return web.json_response({"error": api_text.said(api_text.API_CI_OFF)}, status=403)
        if not _matches(_bearer(request), self.ci_token):
            return _unauthorized(api_text.said(api_text.API_CI_UNAUTHORIZED))
        branch = request.match_info.get("branch", "")
        try:
            stale = await self._run(lambda: self.keeper.refresh(None, branch))
        except UnknownBranch as exc:
            return web.json_response({"error": refusals.text(exc)}, status=404)
        except IslandbotError as exc:
            log.warning("pool refresh of %s failed: %s", branch[:63], exc)
            return web.json_response(
                {"error": api_text.said(api_text.API_DATABASE_DOWN)}, status=503
            )
        log.info("pool of %s refreshed through the API: %d warm islands renewed", branch, stale)
        return web.json_response({"branch": branch, "renewed": stale})


def _unauthorized(text: str) -> web.Response:
    return web.json_response({"error": text}, status=401, headers={"WWW-Authenticate": "Bearer"})
