"""Fast JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def json_response(
    obj: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(text=dumps(obj), status=status, headers=headers, content_type=content_type)
