"""Fast JSON (orjson): a LIST of thousands of pods is mostly serialisation."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def dumps_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj)


def json_response(
    obj: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(
        body=orjson.dumps(obj), status=status, headers=headers, content_type=content_type
    )
