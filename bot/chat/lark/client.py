"""Calling Lark's Open API through the official SDK (``lark-oapi``), as the rest of the Lark
adapter needs it: every failure a ``LarkError`` (a ``ChatError`` that says whether trying
again can help), retried in place when a short wait may pass, and a token Lark refused dropped.

- The SDK fetches the ``tenant_access_token`` and keeps it in a cache of the whole process;
  it never drops one Lark refused (rotated, revoked). ``TokenCache`` is that cache with a way
  to drop it: a call refused for its token fetches a new one and is made once more.
- The SDK does not retry. A call answered "too many requests" (HTTP 429, code 99991400, or
  230020 for one chat) waits what ``x-ogw-ratelimit-reset`` says while the waits add up to
  ``RETRY_AFTER_BUDGET_S``; a longer wait is handed back (``retry_after``) to the caller's
  durable backoff (the outbox). A 5xx, a dropped connection or an answer that is not JSON is
  tried again a few times. Each retry is made only while this process still holds what it
  held when the call was queued (``still_live``), as for Slack.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lark_oapi as lark
import requests
from lark_oapi.core.cache import ICache
from lark_oapi.core.exception import ObtainAccessTokenException

from bot.chat.output import ChatError
from bot.chat.pacing import NOT_LIVE, TierPacer, still_live
from bot.infra import metrics

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 15.0  # one HTTP request to Lark
HTTP_RETRIES = 4  # attempts of one call in place (429 within the budget, 5xx, resets)
RETRY_AFTER_BUDGET_S = 10.0  # rate-limit waits slept in place, in all; a longer one is handed back
# Lark's codes (https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code
# and the im/v1 message errors) that decide what to do next:
TOKEN_REFUSED = frozenset({99991661, 99991663, 99991664, 99991665, 99991668})
RATE_LIMITED = frozenset({99991400, 230020})
# the chat or person cannot take the bot's messages (another chat may)
UNREACHABLE = frozenset({230002, 230006, 230013, 230035})
# the message itself is refused (a plainer, shorter one may pass)
MALFORMED = frozenset({230001, 230025, 230099, 99992402})
# refused for good as asked (a withdrawn message, a message not the bot's, a scope the app
# was not granted, a person outside the app's visibility)
REFUSED = frozenset({230011, 230027, 99991672, 99991679, 41050, 40004})
# Lark's limits for the whole app, calls a minute (the bot keeps to 90 %): sending is limited
# to 1,000 a minute and 50 a second; a chat's own limit is kept by its queue. Two buckets: the
# minute's (a burst of its 900 calls allowed) and the second's (45 at once, 45 a second)
LARK_PER_MINUTE: Mapping[str, int] = {"im.message.create": 1000, "im.message.reply": 1000}
LARK_PER_SECOND: Mapping[str, int] = {m: 50 * 60 for m in LARK_PER_MINUTE}  # as a minute's


def lark_tiers() -> tuple[TierPacer, TierPacer]:
    return TierPacer(LARK_PER_MINUTE, burst_s=60.0), TierPacer(LARK_PER_SECOND, burst_s=1.0)


class LarkError(ChatError):
    """A Lark Open API call that failed; ``code`` (and ``error``, as text) is Lark's code
    when it gave one."""

    def __init__(self, message: str, *, code: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, error=str(code) if code is not None else None, **kwargs)
        self.code = code


class TokenCache(ICache):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's token cache (one for the process: the SDK keeps it in a class attribute),
    thread-safe, and able to ``drop`` an app's token that Lark refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str:
        with self._lock:
            value, expire = self._values.get(key, ("", 0.0))
            return value if expire > time.time() else ""

    def set(self, key: str, value: str, expire: int) -> None:
        with self._lock:
            self._values[key] = (value, float(expire))

    def drop(self, app_id: str) -> None:
        with self._lock:
            for key in [k for k in self._values if k.endswith(":" + app_id)]:
                del self._values[key]


TOKENS = TokenCache()


def build_client(
    app_id: str, app_secret: str, *, origin: str, timeout_s: float = HTTP_TIMEOUT_S
) -> lark.Client:
    """The SDK's client for the app, on ``origin`` (https://open.feishu.cn, a test double)."""
    return (
        lark.Client.builder()
        .app_id(app_id)
        .app_secret(app_secret)
        .domain(origin)
        .timeout(timeout_s)
        .cache(TOKENS)
        .log_level(lark.LogLevel.WARNING)
        .build()
    )


def reset_s(headers: Mapping[str, Any] | None) -> float | None:
    """Lark's ``x-ogw-ratelimit-reset`` (seconds until the limit lets a call through)."""
    for name, value in (headers or {}).items():
        if name.lower() in {"x-ogw-ratelimit-reset", "retry-after"}:
            with contextlib.suppress(TypeError, ValueError):
                return max(0.0, float(value))
    return None


class LarkCalls:
    """Makes the SDK's calls for the adapter (``call``), paced by the app's limits."""

    def __init__(
        self,
        client: lark.Client,
        *,
        app_id: str,
        tiers: Sequence[TierPacer] | None = None,
        retries: int = HTTP_RETRIES,
        budget_s: float = RETRY_AFTER_BUDGET_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.app_id = app_id
        self.tiers = tiers or lark_tiers()
        self.retries = retries
        self.budget_s = budget_s
        self.sleep = sleep

    def call(self, what: str, fn: Callable[[Any], Any], request: Any) -> Any:
        """``fn(request)`` (an SDK method), its answer's ``data`` (or the answer itself when
        it has none); ``LarkError`` when it failed. ``request`` may be a function that makes
        the request, for one the SDK consumes (a file upload's body): made anew each attempt."""
        waited = 0.0
        fresh_token = False
        error = LarkError(f"{what}: not tried")
        for attempt in range(1, self.retries + 1):
            for tier in self.tiers:
                tier.wait(what)
            made = request() if callable(request) else request
            error = self._once(what, fn, made)
            if not isinstance(error, LarkError):
                return error
            last = attempt == self.retries
            if error.code in TOKEN_REFUSED:
                if fresh_token or last:  # refused again (the app's credentials), or no more
                    raise error
                TOKENS.drop(self.app_id)  # rotated or revoked: fetch a new one, once
                fresh_token = True
                metrics.LARK_RETRIES.labels(reason="token").inc()
                log.info("Lark refused the app's token (%s); fetching a new one", error.code)
            elif error.retry_after is not None:
                if last or waited + error.retry_after > self.budget_s:
                    raise error
                waited += error.retry_after
                metrics.LARK_RETRIES.labels(reason="rate_limited").inc()
                self.sleep(error.retry_after)
            elif error.permanent or last:
                raise error
            else:
                metrics.LARK_RETRIES.labels(reason="server_error").inc()
                self.sleep(0.5 * 2 ** (attempt - 1))
            if not still_live():
                raise LarkError(f"{what}: retry {NOT_LIVE}")
        raise error

    def _once(self, what: str, fn: Callable[[Any], Any], request: Any) -> Any:
        """The call's data, or the ``LarkError`` it failed with (returned, to decide on)."""
        try:
            response = fn(request)
        except ObtainAccessTokenException as exc:
            return self._error(what, f"no access token: {exc}", code=None)
        except (requests.RequestException, OSError) as exc:
            return self._error(what, f"connection: {type(exc).__name__}", code=None)
        except ValueError as exc:  # json: Lark (or a proxy before it) answered something else
            return self._error(what, f"an answer that is not JSON ({exc})", code=None)
        except (AttributeError, TypeError, KeyError) as exc:  # JSON, but not Lark's object
            return self._error(what, f"an answer not of Lark's shape ({exc!r})", code=None)
        raw = getattr(response, "raw", None)
        status = int(getattr(raw, "status_code", 0) or 0)
        code, msg = response.code, response.msg
        if code is None and raw is not None:
            # the SDK's generic ``request`` reads the body only under the exact header name
            # ``Content-Type``: an answer with ``content-type`` (as valid) comes back unread
            body = parse_json(bytes(getattr(raw, "content", b"") or b"").decode("utf-8", "replace"))
            code, msg = body.get("code"), body.get("msg")
        code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        if code == 0:
            data = getattr(response, "data", None)
            return response if data is None else data
        retry_after = None
        if status == 429 or code in RATE_LIMITED:
            retry_after = reset_s(getattr(raw, "headers", None)) or 1.0
        return self._error(
            what, f"{code} {msg} (HTTP {status})", code=code, retry_after=retry_after
        )

    @staticmethod
    def _error(
        what: str, why: str, *, code: int | None, retry_after: float | None = None
    ) -> LarkError:
        metrics.LARK_ERRORS.labels(method=what, error=str(code or "http")).inc()
        return LarkError(
            f"{what}: {why}",
            code=code,
            unreachable=code in UNREACHABLE,
            malformed=code in MALFORMED,
            permanent=code in REFUSED,
            retry_after=retry_after,
        )


def parse_json(text: str | None) -> dict[str, Any]:
    """A JSON object Lark sent as a string (a message's content), or {} when it is not one."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
