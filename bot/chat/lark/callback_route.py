"""``POST /lark/events``: Lark's events and card callbacks in HTTP mode, as a route for the
bot's HTTP server.

The SDK's dispatcher does Lark's checks (decrypts an encrypted body, checks the verification
token, answers the URL-verification challenge, checks the signature) but answers every
failure with a 500 and a traceback in its log, and takes a signed request however old. This
route checks first what it can without the dispatcher: a signed request older or newer than
``FRESH_S`` (a replay) or whose signature does not verify is refused with 401 and one warning
line; a request the dispatcher refuses for its token or signature also gets 401. The rest is
the dispatcher's, in the server's thread pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import lark_oapi as lark
from aiohttp import web

log = logging.getLogger(__name__)

PATH = "/lark/events"
FRESH_S = 300  # how far a signed request's timestamp may be from now (Lark: 5 minutes)
TIMESTAMP, NONCE, SIGNATURE = (
    "X-Lark-Request-Timestamp",
    "X-Lark-Request-Nonce",
    "X-Lark-Signature",
)
# what the SDK's dispatcher says when it refuses a request for who sent it
_REFUSED = ("invalid verification_token", "signature verification failed", "encrypt_key")


class _QuietDispatcher(logging.Filter):
    """The SDK logs a traceback for every request its dispatcher refuses; this route logs
    one warning line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "handle event failed" not in record.getMessage()


logging.getLogger("Lark").addFilter(_QuietDispatcher())


def signature_problem(
    headers: dict[str, str], body: bytes, encrypt_key: str, *, now: float
) -> str | None:
    """Why a request that carries Lark's signature headers is not Lark's, or None."""
    timestamp, nonce, signature = (headers.get(h) for h in (TIMESTAMP, NONCE, SIGNATURE))
    if timestamp is None or nonce is None or signature is None:
        return None if signature is None and timestamp is None else "incomplete signature"
    try:
        age = abs(now - float(timestamp))
    except ValueError:
        return "a timestamp that is not a number"
    if age > FRESH_S:
        return f"a timestamp {age:.0f} s away from now (a replay?)"
    expected = hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body)
    if not hmac.compare_digest(expected.hexdigest(), signature):
        return "a signature that does not verify"
    return None


def events_route(
    handler: lark.EventDispatcherHandler,
    *,
    encrypt_key: str | None,
    clock: Callable[[], float] = time.time,
) -> web.RouteDef:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        # the SDK reads these three by their exact names
        headers = {
            name: request.headers[name]
            for name in (TIMESTAMP, NONCE, SIGNATURE)
            if name in request.headers
        }
        if encrypt_key:
            problem = signature_problem(headers, body, encrypt_key, now=clock())
            if problem is not None:
                log.warning("Lark event refused from %s: %s", request.remote, problem)
                return web.json_response({"msg": "unauthorized"}, status=401)
        raw = lark.RawRequest()
        raw.uri = request.path
        raw.body = body
        raw.headers = headers
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, handler.do, raw)
        status = int(answer.status_code or 500)
        content = bytes(answer.content or b"")
        if status == 500:
            why = _message(content)
            # unsigned in encrypted mode: only a URL verification passes without a signature
            unsigned = bool(encrypt_key) and SIGNATURE not in headers
            if unsigned or any(refused in why for refused in _REFUSED):
                log.warning("Lark event refused from %s: %s", request.remote, why)
                return web.json_response({"msg": "unauthorized"}, status=401)
            log.warning("Lark event not handled: %s", why)
        return web.Response(status=status, body=content, content_type="application/json")

    return web.post(PATH, handle)


def _message(content: bytes) -> str:
    try:
        return str(json.loads(content).get("msg", ""))
    except (ValueError, AttributeError):
        return content[:200].decode("utf-8", "replace")
