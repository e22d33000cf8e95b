"""The HTTP API (aiohttp routes on the bot's server): island registration, the island registry,
readiness, metrics and the OpenAPI description. ``openapi.yaml`` beside this file is the
contract; ``tests/test_api.py`` fuzzes the running API against it.

Every answer is JSON (``/metrics`` is Prometheus text). Bad input gets a 4xx with an
``error`` and, for a bad body, the list of ``problems``; nothing is written then. Blocking
work (database, Kubernetes) runs in the server's thread pool.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import aiohttp
import yaml
from aiohttp import web

from bot.app.pool_keeper import PoolKeeper
from bot.domain.errors import Conflict, IslandbotError, NotFound, Unauthorized
from bot.domain.registration import Registration, RegistrationInvalid, parse_registration
from bot.domain.states import IslandState
from bot.domain.time_source import utcnow
from bot.http.island_json import island_json
from bot.http.refusal_limit import RefusalLimit
from bot.infra import metrics
from bot.infra.kubernetes.client import Kube
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.registry import MAX_PAGE, Registry
from bot.words import api_text, refusals

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_REGISTRATION_BODY = 16 * 1024
MAX_ID = 2**53  # ids are JSON numbers: larger ones cannot name an island
READY_CACHE_S = 2.0


def _error(
    status: int, error: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response({"error": error, **extra}, status=status, headers=headers)


def _island_id(request: web.Request) -> int | None:
    text = request.match_info.get("island_id", "")
    if not text.isascii() or not text.isdigit() or len(text) > 16 or int(text) > MAX_ID:
        return None
    return int(text)


@dataclass
class ApiParts:
    """What the API needs from the running bot. ``read_token``: when set, the registry's
    GETs need it as a bearer token."""

    db: Database
    kube: Kube
    registry: Registry
    islands: IslandStore
    read_token: str | None = None
    pools: PoolKeeper | None = None  # its ready islands fill the pool gauge


class Api:
    """The API's routes over the bot's parts."""

    def __init__(self, parts: ApiParts) -> None:
        self.parts = parts
        self._ready: tuple[float, int, dict[str, Any]] | None = None
        # Refused registrations: 20 a minute, then 429 until the minute is over (a token is 192
        # random bits: guessing is hopeless anyway; this spares the database the work). Wrong
        # tokens count against the island presented, from the address presenting it: behind
        # the NodePort Service every island of a node may come from the node's address, and
        # one island's mistakes must not lock out its neighbours; and someone guessing from
        # elsewhere must not lock out the island's own seed. Ids of no island count against the
        # address (they name no island to hold them against), and only such ids are held up
        # by it (an address held up costs a read of whether the id is an island's, not the
        # body's). Both remember at most ``max_keys`` keys.
        self._island_refusals = RefusalLimit(limit=20, window_s=60)
        self._address_refusals = RefusalLimit(limit=20, window_s=60)
        self._spec: bytes | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/islands/{island_id}/register", self.register),
            web.get("/api/v1/islands", self.list_islands),
            web.get("/api/v1/islands/{island_id}", self.get_island),
            web.get("/api/v1/openapi.yaml", self.openapi),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    # ---- registration ---------------------------------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        response = await self._register(request)
        metrics.REGISTRATIONS.labels(status=str(response.status)).inc()
        return response

    async def _register(self, request: web.Request) -> web.Response:
        parts = self.parts
        island_id = _island_id(request)
        if island_id is None:
            return _error(404, api_text.said(api_text.API_BAD_ISLAND_ID))
        token = _bearer(request)
        held_up = await self._held_up(island_id, request.remote)
        if held_up is not None:
            return held_up
        registration = await _read_registration(request, parts.registry.port_names)
        if isinstance(registration, web.Response):
            return registration
        try:
            await self._run(lambda: parts.registry.register(island_id, token, registration))
        except IslandbotError as exc:
            if isinstance(exc, Unauthorized):
                self._island_refusals.refused((island_id, request.remote))
            elif isinstance(exc, NotFound):
                self._address_refusals.refused(request.remote)
            return _refused(island_id, exc)
        log.info("island %d registered from %s", island_id, registration.node)
        return web.json_response({"id": island_id, "registered": True})

    async def _held_up(self, island_id: int, remote: str | None) -> web.Response | None:
        """A 429 when the island presented (or, for an id of no island, the address) had too
        many registrations refused lately; None when the request may go on."""
        wait = self._island_refusals.retry_after((island_id, remote))
        if wait is not None:
            return _too_many(api_text.said(api_text.API_TOO_MANY_REFUSALS_FOR_ISLAND), wait)
        wait = self._address_refusals.retry_after(remote)
        if wait is None:
            return None
        try:
            known = await self._run(lambda: self.parts.registry.exists(island_id))
        except IslandbotError as exc:
            return _refused(island_id, exc)
        return None if known else _too_many(api_text.said(api_text.API_TOO_MANY_REFUSALS), wait)

    # ---- the registry ---------------------------------------------------------------------------

    async def list_islands(self, request: web.Request) -> web.Response:
        parts = self.parts
        if not _may_read(parts, request):
            return _unauthorized(api_text.said(api_text.API_READ_UNAUTHORIZED))
        query = request.query
        problems = [
            api_text.unknown_parameter(key)
            for key in query
            if key not in {"state", "branch", "owner", "after", "limit"}
        ]
        states: list[IslandState] | None = None
        if "state" in query:
            try:
                states = [IslandState(s) for s in query.getall("state")]
            except ValueError:
                known = ", ".join(s.value for s in IslandState)
                problems.append(api_text.expected_one_of("state", known))
        after = _int_param(query.get("after", "0"), 0, MAX_ID, "after", problems)
        limit = _int_param(query.get("limit", "100"), 1, MAX_PAGE, "limit", problems)
        for key in ("branch", "owner"):
            if key in query and not 0 < len(query[key]) <= 200:
                problems.append(api_text.expected_length(key, 200))
        if problems:
            return _error(400, api_text.said(api_text.API_BAD_QUERY), problems=problems)
        try:
            page = await self._run(
                lambda: parts.registry.page(
                    states=states,
                    branch=query.get("branch"),
                    owner_id=query.get("owner"),
                    after=after,
                    limit=limit,
                )
            )
        except IslandbotError:
            return _error(503, api_text.said(api_text.API_DATABASE_DOWN))
        now = utcnow()
        islands = [
            island_json(i, port_names=parts.registry.port_names, now=now) for i in page.islands
        ]
        return web.json_response({"islands": islands, "next_after": page.next_after})

    async def get_island(self, request: web.Request) -> web.Response:
        parts = self.parts
        island_id = _island_id(request)
        if island_id is None:
            return _error(404, api_text.said(api_text.API_BAD_ISLAND_ID))
        if not _may_read(parts, request):
            return _unauthorized(api_text.said(api_text.API_READ_UNAUTHORIZED))
        try:
            island = await self._run(lambda: parts.registry.get(island_id))
        except NotFound as exc:
            return _error(404, refusals.text(exc))
        except IslandbotError:
            return _error(503, api_text.said(api_text.API_DATABASE_DOWN))
        return web.json_response(
            island_json(island, port_names=parts.registry.port_names, now=utcnow())
        )

    async def openapi(self, _request: web.Request) -> web.Response:
        if self._spec is None:
            self._spec = openapi_text().encode()
        return web.Response(body=self._spec, content_type="application/yaml")

    # ---- health ---------------------------------------------------------------------------------

    async def readyz(self, _request: web.Request) -> web.Response:
        """Ready when the database and the Kubernetes API answer (cached for 2 s)."""
        cached = self._ready
        if cached is not None and time.monotonic() - cached[0] < READY_CACHE_S:
            return web.json_response(cached[2], status=cached[1])
        parts = self.parts
        checks = await asyncio.gather(
            self._run(lambda: _check(parts.db.ping)), self._run(lambda: _check(parts.kube.ping))
        )
        body = {"database": checks[0], "kubernetes": checks[1]}
        ok = all(c == "ok" for c in checks)
        status = 200 if ok else 503
        result = {"status": "ready" if ok else "not ready", "checks": body}
        self._ready = (time.monotonic(), status, result)
        return web.json_response(result, status=status)

    async def metrics(self, _request: web.Request) -> web.Response:
        try:
            counts = await self._run(self.parts.islands.counts)
            metrics.set_island_counts(counts)
            if self.parts.pools is not None:
                metrics.set_pool_ready(await self._run(self.parts.pools.ready_counts))
        except IslandbotError as exc:
            log.warning("metrics: island counts not read: %s", exc)
        body = await self._run(metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else None


def _may_read(parts: ApiParts, request: web.Request) -> bool:
    if parts.read_token is None:
        return True
    given = _bearer(request) or ""
    return hmac.compare_digest(given.encode(), parts.read_token.encode())


def _unauthorized(text: str) -> web.Response:
    return web.json_response({"error": text}, status=401, headers={"WWW-Authenticate": "Bearer"})


def _too_many(text: str, wait: float) -> web.Response:
    return _error(429, text, headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _refused(island_id: int, exc: IslandbotError) -> web.Response:
    if isinstance(exc, Unauthorized):
        log.warning("island %d: registration refused: bad or missing token", island_id)
        return _unauthorized(refusals.text(exc))
    if isinstance(exc, NotFound | Conflict):
        return _error(404 if isinstance(exc, NotFound) else 409, refusals.text(exc))
    log.warning("island %d: registration failed: %s", island_id, exc)
    return _error(503, api_text.said(api_text.API_DATABASE_DOWN))


async def _read_registration(
    request: web.Request, port_names: tuple[str, ...]
) -> Registration | web.Response:
    """The request's body as a registration, or the 4xx answer that says what is wrong."""
    too_big = _error(413, api_text.api_body_too_big(MAX_REGISTRATION_BODY))
    if request.content_length is not None and request.content_length > MAX_REGISTRATION_BODY:
        return too_big
    try:
        raw = await _read_capped(request, MAX_REGISTRATION_BODY + 1)
    except (ValueError, ConnectionError, aiohttp.ClientPayloadError):
        return _error(400, api_text.said(api_text.API_BODY_UNREADABLE))
    if len(raw) > MAX_REGISTRATION_BODY:
        return too_big
    try:
        data = json.loads(raw)
    except ValueError:
        return _error(
            422,
            api_text.said(api_text.API_NOT_JSON),
            problems=[api_text.said(api_text.API_NOT_JSON_PROBLEM)],
        )
    try:
        return parse_registration(data, port_names)
    except RegistrationInvalid as exc:
        return _error(
            422,
            api_text.said(api_text.API_INVALID_REGISTRATION),
            problems=[api_text.registration_problem(p) for p in exc.problems],
        )


async def _read_capped(request: web.Request, cap: int) -> bytes:
    """The whole body, however many pieces it arrives in (chunked, split by the network), but
    never more than ``cap`` bytes of it."""
    parts: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await request.content.read(cap - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _check(fn: Callable[[], None]) -> str:
    try:
        fn()
    except IslandbotError as exc:
        return f"failing: {exc}"
    return "ok"


def _int_param(text: str, low: int, high: int, name: str, problems: list[str]) -> int:
    if text.isascii() and text.isdigit() and len(text) <= 16 and low <= int(text) <= high:
        return int(text)
    problems.append(api_text.expected_whole_number(name, low, high))
    return low


def openapi_text() -> str:
    return resources.files("bot.http").joinpath("openapi.yaml").read_text(encoding="utf-8")


def openapi_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(openapi_text())
    return spec
