"""A fake Slack Web API served over real HTTP, as bolt-python's own tests do it.

Reached with ``WebClient(base_url=fake.api_url)``; it records every call, keeps the messages it
was sent (per channel, with threads and metadata), answers ``conversations.replies``, takes file
uploads and ``response_url`` posts, and can be told to fail: HTTP 429 with ``Retry-After``, 5xx,
or ``ok: false`` with an error code, for the next N calls of a method, or all of them for a
while (``outage``: Slack down, 503s, then 429s), or refuse for good (``refuse``: a channel
gone or archived, a message too long or its blocks invalid), answering as Slack does.

It enforces Slack's published rate limits, by default in every test (``LIMITS``): posts
(``chat.postMessage``, ``files.completeUploadExternal``) about one per second per channel
after a short burst (``channel_rate``, ``channel_burst``: Slack publishes no burst size, so it
is modelled small), every other method its tier per workspace (Tier 2 20, Tier 3 50, Tier 4
100 a minute, with ten seconds' worth as its burst). A call over the limit is answered 429
with ``Retry-After`` (whole seconds until it would be allowed), as Slack answers, and counted
(``rate_limited``, ``rate_limited_by``).

Also here: ``sign`` and the request builders that make signed slash commands, button clicks and
events exactly as Slack sends them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import WSMsgType, web

from tests import blockkit

BOT_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float


@dataclass
class Fault:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    count: int = 1
    delay: float = 0.0  # handled normally, but answered this late (a client may time out)
    match: str | None = None  # only calls whose text contains this


@dataclass
class Refusal:
    """Slack refusing for good (``FakeSlack.refuse``)."""

    error: str
    channel: str | None = None  # every call naming this channel
    match: str | None = None  # posts whose text contains this
    key: str | None = None  # posts whose metadata carries this key
    with_blocks: bool = False  # only while the post carries blocks

    def refuses(self, method: str, params: dict[str, Any]) -> bool:
        if self.channel is not None:
            return self.channel in (params.get("channel"), params.get("channel_id"))
        if method != "chat.postMessage":
            return False
        if self.with_blocks and not params.get("blocks"):
            return False
        if self.match is not None and self.match not in str(params.get("text") or ""):
            return False
        return self.key is None or _key(params) == self.key


def _key(params: dict[str, Any]) -> str | None:
    metadata = params.get("metadata")
    if isinstance(metadata, str):
        with suppress(ValueError):
            metadata = json.loads(metadata)
    payload = (metadata or {}).get("event_payload") if isinstance(metadata, dict) else None
    return (payload or {}).get("key")


# Slack's tiers (requests a minute, per method per workspace), as its method pages give them;
# conversations.history/replies as for internal apps (Tier 3)
TIER_2, TIER_3, TIER_4 = 20, 50, 100
LIMITS: dict[str, int] = {
    "auth.test": TIER_4,
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    "conversations.open": TIER_3,
    "users.info": TIER_4,
    "users.list": TIER_2,
    "conversations.replies": TIER_3,
    "conversations.history": TIER_3,
    "views.publish": TIER_4,
    "files.getUploadURLExternal": TIER_4,
}
POSTS = frozenset({"chat.postMessage", "files.completeUploadExternal"})  # paced per channel
TIER_BURST_S = 10.0  # a tier's burst: this many seconds' worth of its rate


@dataclass
class FakeSlack:
    channel_rate: float | None = 1.0  # posts per second per channel; None: no limit
    channel_burst: int = 3
    tiers: dict[str, int] | None = field(default_factory=lambda: dict(LIMITS))  # None: none
    tier_burst_s: float = TIER_BURST_S
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)  # response_url posts
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    rate_limited: int = 0  # 429s answered because a client called too fast
    rate_limited_by: Counter[str] = field(default_factory=Counter)  # method -> such 429s
    # every message posted or rewritten, as it was then: (wall-clock time, method, message)
    written: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    _faults: dict[str, list[Fault]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    _outages: list[tuple[float, float, int, int | None]] = field(default_factory=list)
    outage_answers: Counter[int] = field(default_factory=Counter)  # status -> calls so answered
    _refusals: list[Refusal] = field(default_factory=list)
    refused: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (method,
    # error, params) of each call refused by a ``refuse`` rule
    # the workspace's people and their locales (Slack's language setting); any other U.../W...
    # id is a person too, in Slack's default en-US, but ``users.list`` lists only these
    people: dict[str, str] = field(default_factory=dict)
    url: str = ""
    socket_url: str = ""  # set by ``socket_mode``

    # ---- what tests use ----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r") -> str:
        return f"{self.url}/respond/{name}"

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
        delay: float = 0.0,
        match: str | None = None,
    ) -> None:
        with self._lock:
            self._faults.setdefault(method, []).append(
                Fault(status, error, retry_after, count, delay, match)
            )

    def refuse(
        self,
        error: str,
        *,
        channel: str | None = None,
        match: str | None = None,
        key: str | None = None,
        with_blocks: bool = False,
    ) -> None:
        """Slack refuses for good from now on, as it answers such calls (HTTP 200, ``ok:
        false``, ``error``): every call naming ``channel`` (``channel_not_found``,
        ``is_archived``, ``not_in_channel``: the channel gone, archived, the bot removed), or
        each post whose text contains ``match`` and whose metadata carries ``key`` (those
        given; ``msg_too_long``, ``invalid_blocks``: the message refused as it is);
        ``with_blocks``: only while the post carries blocks (its plain text passes, as with
        Slack's ``invalid_blocks``)."""
        with self._lock:
            self._refusals.append(Refusal(error, channel, match, key, with_blocks))

    def stop_refusing(self) -> None:
        """Slack takes what it refused (``refuse``) again: the bot let back into a channel, a
        message that is now short enough."""
        with self._lock:
            self._refusals.clear()

    def outage(
        self, seconds: float, *, status: int = 503, retry_after: int | None = None, after: float = 0
    ) -> None:
        """Slack is down: from ``after`` seconds from now, for ``seconds``, every Web API call
        is answered ``status`` (with ``Retry-After`` when given, as Slack's 429 carries it)."""
        begins = time.monotonic() + after
        with self._lock:
            self._outages.append((begins, begins + seconds, status, retry_after))

    def down(self) -> tuple[int, int | None] | None:
        """(status, Retry-After) of the outage going on now, if any."""
        now = time.monotonic()
        with self._lock:
            for begins, ends, status, retry_after in self._outages:
                if begins <= now < ends:
                    return status, retry_after
        return None

    def count(self, method: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.method == method)

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if channel is not None:
                return list(self.messages.get(channel, []))
            return [m for ms in self.messages.values() for m in ms]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.posts(channel) if m.get("thread_ts") == ts]

    def wait_for(self, check: Any, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"fake Slack never saw what was expected within {timeout}s")

    # ---- serving -----------------------------------------------------------------------------

    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/respond/"):
            answer = json.loads(body or b"{}")
            if blockkit.problems(answer.get("blocks")):
                return 400, {"content-type": "text/plain"}, b"invalid_blocks"
            with self._lock:
                self.responses.append({"path": path, **answer})
            return 200, {"content-type": "text/plain"}, b"ok"
        if path.startswith("/upload/"):
            with self._lock:
                self._uploads.setdefault(path.rsplit("/", 1)[1], {})["content"] = body
            return 200, {"content-type": "text/plain"}, b"OK - 1"
        method = path.removeprefix("/api/")
        params = _params(headers, body)
        outage = self.down()
        with self._lock:
            self.calls.append(Call(method, params, time.monotonic()))
            fault = (
                Fault(outage[0], retry_after=outage[1])
                if outage is not None
                else self._take_fault(method, str(params.get("text", "")))
            )
            if outage is not None:
                self.outage_answers[outage[0]] += 1
            refusal = next((r for r in self._refusals if r.refuses(method, params)), None)
            if fault is None and outage is None and refusal is not None:
                self.refused.append((method, refusal.error, params))
        if fault is None and outage is None and refusal is not None:
            return _json({"ok": False, "error": refusal.error})
        if fault is not None and fault.delay:
            result = self._answer(method, headers, params)
            time.sleep(fault.delay)
            return result
        if fault is not None and fault.status != 200:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            return fault.status, {"content-type": "application/json", **extra}, b'{"ok":false}'
        if fault is not None:
            return _json({"ok": False, "error": fault.error or "fatal_error"})
        wait = self._over_limit(method, params)
        if wait is not None:
            headers_429 = {"content-type": "application/json", "Retry-After": str(wait)}
            return 429, headers_429, b'{"ok":false,"error":"ratelimited"}'
        return self._answer(method, headers, params)

    def _answer(
        self, method: str, headers: Any, params: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        auth = headers.get("Authorization", "")
        if method == "apps.connections.open":
            if not auth.startswith("Bearer xapp-") or not self.socket_url:
                return _json({"ok": False, "error": "invalid_auth"})
            return _json({"ok": True, "url": self.socket_url})
        if not auth.startswith("Bearer xoxb-"):
            return _json({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _json({"ok": False, "error": "unknown_method"})
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            if len(str(params.get("text") or "")) > blockkit.MESSAGE_TEXT:
                return _json({"ok": False, "error": "msg_too_long"})
            wrong = blockkit.problems(params.get("blocks"))
            if wrong:  # as Slack answers a message its Block Kit reference does not allow
                return _json({"ok": False, "error": "invalid_blocks", "errors": wrong})
        result: tuple[int, dict[str, str], bytes] = handler(params)
        return result

    def _take_fault(self, method: str, text: str) -> Fault | None:
        queue = self._faults.get(method) or []
        for fault in queue:
            if fault.match is not None and fault.match not in text:
                continue
            fault.count -= 1
            if fault.count <= 0:
                queue.remove(fault)
            return fault
        return None

    def _over_limit(self, method: str, params: dict[str, Any]) -> int | None:
        """None if the call is within Slack's limits (it then takes its token), else the
        whole seconds until it would be (the 429's Retry-After)."""
        if method in POSTS:
            if self.channel_rate is None:
                return None
            channel = _im(str(params.get("channel") or params.get("channel_id") or ""))
            return self._take(
                f"post:{channel}", self.channel_rate, float(self.channel_burst), method
            )
        per_minute = (self.tiers or {}).get(method)
        if per_minute is None:
            return None
        rate = per_minute / 60.0
        return self._take(f"tier:{method}", rate, max(1.0, rate * self.tier_burst_s), method)

    def _take(self, bucket: str, rate: float, burst: float, method: str) -> int | None:
        with self._lock:
            now = time.monotonic()
            tokens, at = self._buckets.get(bucket, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens < 0.999:
                self._buckets[bucket] = (tokens, now)
                self.rate_limited += 1
                self.rate_limited_by[method] += 1
                return max(1, math.ceil((1 - tokens) / rate))
            self._buckets[bucket] = (tokens - 1, now)
            return None

    def _next_ts(self) -> str:
        return f"1800000000.{next(self._ts):06d}"

    def _m_auth_test(self, _p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return _json(
            {
                "ok": True,
                "url": "https://studio.slack.com/",
                "team": "Studio",
                "user": "islandbot",
                "team_id": "T0STUDIO",
                "user_id": "U0BOT",
                "bot_id": "B0BOT",
            }
        )

    def _m_conversations_open(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        users = str(p.get("users") or "")
        if not users.startswith(("U", "W")) or "," in users:
            return _json({"ok": False, "error": "user_not_found"})
        return _json({"ok": True, "channel": {"id": _im(users)}})

    def _user(self, user: str, *, locale: bool) -> dict[str, Any]:
        found: dict[str, Any] = {"id": user, "team_id": "T0STUDIO", "name": user.lower()}
        if locale:  # Slack adds it only when asked (include_locale=true)
            found["locale"] = self.people.get(user, "en-US")
        return found

    def _m_users_info(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        user = str(p.get("user") or "")
        if not user.startswith(("U", "W")) or "," in user:
            return _json({"ok": False, "error": "user_not_found"})
        locale = str(p.get("include_locale")).lower() in ("true", "1")
        return _json({"ok": True, "user": self._user(user, locale=locale)})

    def _m_users_list(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        try:
            limit = int(p.get("limit") or 0) or 1000
            start = _uncursor(p.get("cursor"))
        except ValueError:
            return _json({"ok": False, "error": "invalid_cursor"})
        limit = min(limit, 1000)
        locale = str(p.get("include_locale")).lower() in ("true", "1")
        ids = sorted(self.people)
        page = [self._user(u, locale=locale) for u in ids[start : start + limit]]
        more = start + limit < len(ids)
        cursor = _cursor(start + limit) if more else ""
        return _json({"ok": True, "members": page, "response_metadata": {"next_cursor": cursor}})

    def _m_chat_postMessage(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        channel = str(p.get("channel"))
        if channel.startswith("C0GONE"):
            return _json({"ok": False, "error": "channel_not_found"})
        channel = _im(channel)  # a user id posts in the bot's direct conversation with them
        message = {
            "ts": self._next_ts(),
            "text": p.get("text"),
            "blocks": p.get("blocks"),
            "thread_ts": p.get("thread_ts"),
            "reply_broadcast": bool(p.get("reply_broadcast")),
            "metadata": p.get("metadata"),
            "edits": 0,
        }
        with self._lock:
            self.messages.setdefault(channel, []).append(message)
            self.written.append((time.time(), "chat.postMessage", {"channel": channel, **message}))
        return _json({"ok": True, "channel": channel, "ts": message["ts"], "message": message})

    def _m_chat_update(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        channel, ts = str(p.get("channel")), str(p.get("ts"))
        if channel.startswith(("U", "W")):
            return _json({"ok": False, "error": "channel_not_found"})
        with self._lock:
            for message in self.messages.get(channel, []):
                if message["ts"] == ts:
                    message.update(text=p.get("text"), blocks=p.get("blocks"))
                    if p.get("metadata") is not None:
                        message["metadata"] = p.get("metadata")
                    message["edits"] += 1
                    self.written.append(
                        (time.time(), "chat.update", {"channel": channel, **message})
                    )
                    return _json({"ok": True, "channel": channel, "ts": ts})
        return _json({"ok": False, "error": "message_not_found"})

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.ephemeral.append(p)
        return _json({"ok": True, "message_ts": self._next_ts()})

    def _m_conversations_replies(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        channel, ts = str(p.get("channel")), str(p.get("ts"))
        if channel.startswith(("U", "W")):
            return _json({"ok": False, "error": "channel_not_found"})
        with self._lock:
            found = [
                m
                for m in self.messages.get(channel, [])
                if m["ts"] == ts or m.get("thread_ts") == ts
            ]
        keep_metadata = str(p.get("include_all_metadata")).lower() in ("1", "true")
        shown = [{k: v for k, v in m.items() if k != "metadata" or keep_metadata} for m in found]
        return _json({"ok": True, "messages": shown, "has_more": False})

    def _m_conversations_history(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """The channel's messages, newest first (thread replies only when broadcast), paged
        with ``limit`` and ``cursor`` as Slack pages them."""
        channel = str(p.get("channel"))
        if channel.startswith(("U", "W")):
            return _json({"ok": False, "error": "channel_not_found"})
        limit = max(1, min(int(p.get("limit") or 100), 999))
        start = int(str(p.get("cursor") or "0") or 0)
        with self._lock:
            top = [
                m
                for m in reversed(self.messages.get(channel, []))
                if m.get("thread_ts") in (None, m["ts"]) or m.get("reply_broadcast")
            ]
        page = top[start : start + limit]
        keep_metadata = str(p.get("include_all_metadata")).lower() in ("1", "true")
        shown = [{k: v for k, v in m.items() if k != "metadata" or keep_metadata} for m in page]
        more = start + limit < len(top)
        return _json(
            {
                "ok": True,
                "messages": shown,
                "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""},
            }
        )

    def _m_views_publish(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        view = p.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if blockkit.problems((view or {}).get("blocks", []), view=True):
            return _json({"ok": False, "error": "invalid_arguments"})
        with self._lock:
            self.homes[str(p.get("user_id"))] = view or {}
        return _json({"ok": True, "view": {"id": "V1"}})

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        file_id = f"F{next(self._ts):08d}"
        with self._lock:
            self._uploads[file_id] = {"filename": p.get("filename")}
        return _json({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})

    def _m_files_completeUploadExternal(
        self, p: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        files = p.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        with self._lock:
            for f in files or []:
                upload = self._uploads.get(f["id"], {})
                self.files.append(
                    {
                        "id": f["id"],
                        "title": f.get("title"),
                        "channel": p.get("channel_id"),
                        "thread_ts": p.get("thread_ts"),
                        "content": (upload.get("content") or b"").decode(),
                        "filename": upload.get("filename"),
                    }
                )
        return _json({"ok": True, "files": [{"id": f["id"]} for f in files or []]})


def mixed_team(size: int) -> dict[str, str]:
    """A workspace of ``size`` people ``U0B0000``... (as the tests and benchmarks name them),
    every other one reading Chinese."""
    return {f"U0B{n:04d}": "zh-CN" if n % 2 else "en-US" for n in range(size)}


def _cursor(index: int) -> str:
    return base64.b64encode(f"user:{index}".encode()).decode()


def _uncursor(cursor: Any) -> int:
    """A cursor this fake gave (Slack's are opaque base64); ``ValueError`` for any other."""
    if not cursor:
        return 0
    try:
        text = base64.b64decode(str(cursor), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None
    if not text.startswith("user:") or not text[5:].isdigit():
        raise ValueError("invalid cursor")
    return int(text[5:])


def _im(channel: str) -> str:
    """A user id names their direct conversation with the bot (``D...``) when posting; it is
    no channel to chat.update or the history methods."""
    return "D" + channel[1:] if channel.startswith(("U", "W")) else channel


def _json(payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"content-type": "application/json"}, json.dumps(payload).encode()


def _params(headers: Any, body: bytes) -> dict[str, Any]:
    kind = headers.get("Content-Type", "")
    if "json" in kind:
        return dict(json.loads(body or b"{}"))
    out: dict[str, Any] = {}
    for key, values in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items():
        value: Any = values[0]
        if isinstance(value, str) and value[:1] in "[{":
            with suppress(ValueError):
                value = json.loads(value)
        out[key] = value
    return out


@contextmanager
def serving(fake: FakeSlack | None = None) -> Iterator[FakeSlack]:
    fake = fake or FakeSlack()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status, headers, payload = fake.handle(self.path.split("?")[0], self.headers, body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


# ---- requests as Slack sends them --------------------------------------------------------------


def sign(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


_trigger = itertools.count(1)


def slash_command(
    text: str,
    *,
    user: str = "U0ALICE",
    user_name: str = "alice",
    channel: str = "C0TEAM",
    response_url: str = "http://127.0.0.1:9/none",
    trigger_id: str | None = None,
) -> str:
    return urllib.parse.urlencode(
        {
            "token": "legacy-unused",
            "team_id": "T0STUDIO",
            "team_domain": "studio",
            "channel_id": channel,
            "channel_name": "team",
            "user_id": user,
            "user_name": user_name,
            "command": "/island",
            "text": text,
            "api_app_id": "A0ISLAND",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{next(_trigger)}.{time.time_ns()}.abc",
        }
    )


def button_click(
    action_id: str,
    value: str,
    *,
    user: str = "U0ALICE",
    channel: str | None = "C0TEAM",
    message_ts: str = "1800000000.000001",
    response_url: str | None = "http://127.0.0.1:9/none",
    action_ts: str | None = None,
) -> str:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0STUDIO", "domain": "studio"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0STUDIO"},
        "api_app_id": "A0ISLAND",
        "token": "legacy-unused",
        "trigger_id": f"{next(_trigger)}.{time.time_ns()}.def",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "island",
                "value": value,
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
    if channel is not None:
        payload["channel"] = {"id": channel, "name": "team"}
        payload["container"] = {"type": "message", "message_ts": message_ts, "channel_id": channel}
        payload["message"] = {"ts": message_ts, "type": "message"}
    else:
        payload["container"] = {"type": "view", "view_id": "V1"}
        payload["view"] = {"id": "V1", "type": "home"}
    if response_url is not None:
        payload["response_url"] = response_url
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def home_opened(user: str = "U0ALICE", *, event_id: str | None = None) -> str:
    return json.dumps(
        {
            "token": "legacy-unused",
            "team_id": "T0STUDIO",
            "api_app_id": "A0ISLAND",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_trigger):08d}",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"},
        }
    )


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class SocketModeFake:
    """Slack's side of Socket Mode over a real WebSocket (aiohttp): says hello to the bot,
    sends it envelopes and collects its acks (with the payload the ack carried)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.acks: dict[str, dict[str, Any]] = {}
        self.connections = 0
        self._sockets: list[Any] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        async def link(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(autoping=True)
            await ws.prepare(request)
            self.connections += 1
            self._sockets.append(ws)
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": self.connections,
                    "connection_info": {"app_id": "A0ISLAND"},
                    "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                }
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if "envelope_id" in data:
                        self.acks[data["envelope_id"]] = data
            return ws

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/link", link)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"ws://127.0.0.1:{self.port}/link"

    def send(self, envelope_type: str, payload: dict[str, Any]) -> str:
        envelope_id = f"env-{next(_trigger)}"
        body = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
        }

        async def push() -> None:
            await self._sockets[-1].send_json(body)

        asyncio.run_coroutine_threadsafe(push(), self.loop).result(10)
        return envelope_id

    def stop(self) -> None:
        async def close() -> None:
            for ws in self._sockets:
                await ws.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def command_payload(text: str, **kw: Any) -> dict[str, Any]:
    """A slash command as a Socket Mode envelope carries it (the form's fields, as JSON)."""
    return dict(urllib.parse.parse_qsl(slash_command(text, **kw)))
