"""Request faults: make the next N API requests matching a path fail in a chosen way; and what
was served: every request counted by (method, path), and an audit log of the requests that
change something (as the API server's audit log has them: verb, path, user agent, status)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubesim import status

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDIT_KEPT = 100_000


@dataclass
class FaultRule:
    """``action``: ``error`` (answer ``status``; 429 carries ``Retry-After``), ``drop`` (close
    the connection without an answer) or ``delay`` (wait ``seconds``, then answer normally)."""

    path: str  # a regular expression searched in the request path
    action: str = "error"
    status: int = 500
    count: int = 1
    seconds: float = 1.0  # delay, or Retry-After for 429
    method: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("error", "drop", "delay"):
            raise ValueError(f"unknown fault action {self.action!r}")
        self._pattern = re.compile(self.path)

    def matches(self, request: web.Request) -> bool:
        return (
            self.count > 0
            and self._pattern.search(request.path) is not None
            and (self.method is None or self.method.upper() == request.method)
        )


class Faults:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.injected = 0
        # every API request served, as (method, path): tests count calls per tick with it
        self.seen: Counter[tuple[str, str]] = Counter()
        # requests that change something, oldest first (the last AUDIT_KEPT)
        self.audit: deque[dict[str, Any]] = deque(maxlen=AUDIT_KEPT)

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def clear(self) -> None:
        self.rules.clear()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/kubesim/"):
            return await handler(request)
        self.seen[(request.method, request.path)] += 1
        if request.method in MUTATING:
            entry = {
                "time": time.time(),
                "verb": request.method,
                "path": request.path,
                "userAgent": request.headers.get("User-Agent", ""),
                "code": 0,
            }
            self.audit.append(entry)
            response = await self._serve(request, handler)
            entry["code"] = response.status
            return response
        return await self._serve(request, handler)

    async def _serve(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = next((r for r in self.rules if r.matches(request)), None)
        if rule is None:
            return await handler(request)
        rule.count -= 1
        if rule.count <= 0:
            self.rules.remove(rule)
        self.injected += 1
        if rule.action == "delay":
            await asyncio.sleep(rule.seconds)
            return await handler(request)
        if rule.action == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is answered on a dropped connection
        if rule.status == 429:
            return status.error(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
                {"retryAfterSeconds": int(rule.seconds)},
                headers={"Retry-After": str(int(rule.seconds))},
            )
        reasons = {
            500: "InternalError",
            502: "BadGateway",
            503: "ServiceUnavailable",
            504: "Timeout",
        }
        return status.error(
            rule.status,
            reasons.get(rule.status, "InternalError"),
            'an error on the server ("injected by kubesim") has prevented '
            "the request from succeeding",
        )
