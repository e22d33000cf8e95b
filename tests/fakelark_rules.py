"""What Lark (Feishu) accepts and how it answers, for the fake Open API (``tests.fakelark``).

Also the machinery under it: the sliding windows of Lark's rate limits, the faults a test
orders, and the HTTP server.

The error answers (HTTP 400 ``{"code", "msg", "error": {"log_id", "field_violations"?}}``, the
log id also in ``x-tt-logid``), the routes, the checks of a message's ``content`` against its
``msg_type`` (a text ``{"text"}``, a card: v1 ``elements`` with an optional ``header`` and
``config``, a JSON 2.0 ``body.elements``, or a template; a button's ``value`` a JSON object),
the size limits (150 KB a text request, 30 KB a card request), a message as the API answers it
(a card re-rendered, ``<at>`` tags turned into ``@_user_N`` keys with ``mentions``), the opaque
page tokens, and multipart form parsing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import secrets
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakelark_cards import card_problem, render_card
from tests.fakelark_events import TENANT_KEY, ids

KB = 1024
TEXT_LIMIT, CARD_LIMIT = 150 * KB, 30 * KB  # the whole request body, as Lark measures it
BODY_LIMIT, FILE_LIMIT = 10 * KB * KB, 30 * KB * KB
MSG_TYPES = frozenset({"text", "interactive", "file"})
FILE_TYPES = frozenset({"opus", "mp4", "pdf", "doc", "xls", "ppt", "stream"})
Answer = tuple[int, dict[str, str], bytes]

OUT_OF_CHAT = "Bot/User can NOT be out of the chat."
NO_MESSAGE = "The message was withdrawn or not exist"
BAD_CONTENT = "invalid message content"
TOO_LONG = "message content length exceeds limit"
NO_ACCESS = "Bot has NO availability to this user."
BAD_TOKEN = "Invalid access token for authorization. Please make a request with token attached."
NO_TOKEN = "Missing access token for authorization. Please make a request with token attached."
BAD_FILE = "Invalid request param."
AT = re.compile(r'<at user_id="([^"]*)">([^<]*)</at>')


class LarkError(Exception):
    """An error answer: HTTP ``status`` with ``{"code", "msg", "error": {"log_id"}}``."""

    def __init__(
        self,
        code: int,
        msg: str,
        status: int = 400,
        headers: Mapping[str, str] | None = None,
        field_name: str | None = None,
    ) -> None:
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status = code, msg, status
        self.headers = dict(headers or {})
        self.field_name = field_name

    def answer(self) -> Answer:
        log_id = secrets.token_hex(12).upper()
        body: dict[str, Any] = {"code": self.code, "msg": self.msg, "error": {"log_id": log_id}}
        if self.field_name is not None:  # as Lark's gateway details a failed field check
            violation = {"field": self.field_name, "description": self.msg}
            body["error"]["field_violations"] = [violation]
            body["msg"] = "field validation failed"
        return answer(body, self.status, {**self.headers, "x-tt-logid": log_id})


def invalid(field_name: str, why: str) -> LarkError:
    """Lark's gateway refusing a parameter: 99992402 "field validation failed"."""
    return LarkError(99992402, why, field_name=field_name)


def answer(
    payload: dict[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Answer:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return status, {"content-type": "application/json; charset=utf-8", **(headers or {})}, body


def ok(data: dict[str, Any]) -> Answer:
    return answer({"code": 0, "msg": "success", "data": data})


def route(method: str, path: str) -> tuple[str | None, str | None]:
    """(kind, message_id or open_id) of an endpoint the fake serves, (None, None) for any other
    path or method (Lark's gateway answers those 404)."""
    routes = {
        ("POST", "/open-apis/auth/v3/tenant_access_token/internal"): "token",
        ("POST", "/open-apis/im/v1/messages"): "create",
        ("GET", "/open-apis/im/v1/messages"): "list",
        ("POST", "/open-apis/im/v1/files"): "file",
        ("GET", "/open-apis/bot/v3/info"): "bot",
    }
    if (method, path) in routes:
        return routes[(method, path)], None
    person = re.fullmatch(r"/open-apis/contact/v3/users/([^/]+)", path)
    if person and method == "GET":
        return "user", urllib.parse.unquote(person[1])
    found = re.fullmatch(r"/open-apis/im/v1/messages/([^/]+)(/reply)?", path)
    if found and (method, bool(found[2])) in (("POST", True), ("PATCH", False)):
        return ("reply" if found[2] else "patch"), urllib.parse.unquote(found[1])
    return None, None


def json_body(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Lark's JSON endpoints want ``Content-Type: application/json`` and a JSON object."""
    if not (headers.get("content-type") or "").startswith("application/json"):
        raise invalid("Content-Type", "Content-Type must be application/json; charset=utf-8")
    try:
        parsed = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise invalid("body", "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise invalid("body", "the body is not a JSON object")
    return parsed


def content(request: dict[str, Any], size: int, files: Mapping[str, Any]) -> tuple[str, str]:
    """(msg_type, content) of a send or update of ``size`` request bytes, its content (a JSON
    string) checked against its type (230001) and the size limits (230025)."""
    msg_type, raw = request.get("msg_type"), request.get("content")
    if msg_type not in MSG_TYPES:
        raise invalid("msg_type", f"msg_type must be one of {sorted(MSG_TYPES)} (in this fake)")
    if not isinstance(raw, str) or not raw:
        raise invalid("content", "content is required, a JSON string")
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise LarkError(230001, f"{BAD_CONTENT}: content is not JSON") from None
    if not isinstance(parsed, dict):
        raise LarkError(230001, f"{BAD_CONTENT}: content is not a JSON object")
    problem = None
    if msg_type == "text" and (not isinstance(parsed.get("text"), str) or not parsed["text"]):
        problem = 'a text is {"text": "..."}, not empty'
    elif msg_type == "file" and parsed.get("file_key") not in files:
        problem = "file_key is no file uploaded by this app"
    elif msg_type == "interactive":
        problem = card_problem(parsed)
    if problem is not None:
        raise LarkError(230001, f"{BAD_CONTENT}: {problem}")
    if size > (TEXT_LIMIT if msg_type == "text" else CARD_LIMIT):
        raise LarkError(230025, TOO_LONG)
    return str(msg_type), raw


def view(m: dict[str, Any], app_id: str) -> dict[str, Any]:
    """A kept message as Lark's API answers it: times as ms strings, ``root_id``,
    ``parent_id`` and ``thread_id`` only when set, the sender the app or a person."""
    by_bot = m["sender"] == app_id
    sender = {
        "id": m["sender"],
        "id_type": "app_id" if by_bot else "open_id",
        "sender_type": "app" if by_bot else "user",
        "tenant_key": TENANT_KEY,
    }
    said, mentions = m["raw"], list[dict[str, Any]]()
    if m["msg_type"] == "interactive":
        said = json.dumps(render_card(m["content"]), ensure_ascii=False)
    elif m["msg_type"] == "text":
        text, mentions = _mentions(str(m["content"]["text"]))
        said = json.dumps({"text": text}, ensure_ascii=False)
    shown = {
        "message_id": m["message_id"],
        "msg_type": m["msg_type"],
        "create_time": str(m["create_time"]),
        "update_time": str(m["update_time"]),
        "deleted": False,
        "updated": m["updated"],
        "chat_id": m["chat_id"],
        "sender": sender,
        "body": {"content": said},
    }
    shown.update({k: m[k] for k in ("root_id", "parent_id", "thread_id") if m[k]})
    if mentions:
        shown["mentions"] = mentions
    return shown


def _mentions(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Lark answers ``<at user_id="ou_...">Name</at>`` as keys ``@_user_N`` and ``mentions``."""
    mentions: list[dict[str, Any]] = []

    def key(found: re.Match[str]) -> str:
        if found[1] == "all":
            return "@_all"
        key = f"@_user_{len(mentions) + 1}"
        open_id = ids(found[1])["open_id"]
        mentions.append(
            {
                "key": key,
                "id": open_id,
                "id_type": "open_id",
                "name": found[2],
                "tenant_key": TENANT_KEY,
            }
        )
        return key

    return AT.sub(key, text), mentions


def peek(headers: Mapping[str, str], body: bytes) -> Any:
    """A call's body as recorded: its JSON, a form's fields (the file as its size), or None."""
    kind = headers.get("content-type") or ""
    if kind.startswith("multipart/form-data"):
        try:
            form = multipart(kind, body)
        except LarkError:
            return None
        return {k: len(v) if k == "file" else v.decode(errors="replace") for k, v in form.items()}
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None


def multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (name -> bytes); 234001 if it is none."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or found is None:
        raise LarkError(234001, BAD_FILE)
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + found[1].encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is not None:
            fields[name[1].decode()] = value.removesuffix(b"\r\n")
    return fields


def list_query(query: Mapping[str, str]) -> tuple[str, str, int, bool, int]:
    """(container_id_type, container_id, page_size, newest first, offset) of a list call."""
    kind, container = query.get("container_id_type"), query.get("container_id") or ""
    if kind not in ("chat", "thread"):
        raise invalid("container_id_type", "container_id_type must be chat or thread")
    size = integer(query.get("page_size", "20"), "page_size")
    if not 1 <= size <= 50:
        raise invalid("page_size", "page_size is 1 to 50")
    sort = query.get("sort_type", "ByCreateTimeAsc")
    if sort not in ("ByCreateTimeAsc", "ByCreateTimeDesc"):
        raise invalid("sort_type", "sort_type is ByCreateTimeAsc or ByCreateTimeDesc")
    return (
        kind,
        container,
        size,
        sort != "ByCreateTimeAsc",
        page_offset(query.get("page_token"), container),
    )


def record(raw: str, at: int, **fields: Any) -> dict[str, Any]:
    """A message as the fake keeps it (what ``FakeLark.messages`` shows)."""
    content = json.loads(raw)
    kept = dict.fromkeys(("root_id", "parent_id", "thread_id", "uuid", "receive_id"))
    kept.update(content=content, raw=raw, updates=0, updated=False, versions=[content])
    return {**kept, "create_time": at, "update_time": at, **fields}


def integer(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise invalid(name, f"{name} is an integer") from None


def page_token(container: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{container}:{offset}".encode()).decode()


def page_offset(token: str | None, container: str) -> int:
    """The offset a page_token (as this fake gave it for this container) stands for."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid("page_token", "invalid page_token") from None
    owner, _, offset = text.rpartition(":")
    if owner != container or not offset.isdigit():
        raise invalid("page_token", "invalid page_token")
    return int(offset)


class Windows:
    """Sliding windows of Lark's rate limits, by key."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}

    def admit(self, now: float, *windows: tuple[str, int, float]) -> None:
        """Take a place in each (key, limit, seconds) window, or raise Lark's 429 (HTTP 429,
        99991400, ``x-ogw-ratelimit-limit`` and ``-reset``: whole seconds, at least 1); a call
        refused takes no place."""
        for key, limit, span in windows:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - span:
                seen.popleft()
            if len(seen) >= limit:
                wait = str(max(1, math.ceil(seen[0] + span - now)))
                headers = {"x-ogw-ratelimit-limit": str(limit), "x-ogw-ratelimit-reset": wait}
                raise LarkError(99991400, "request trigger frequency limit", 429, headers)
        for key, _limit, _span in windows:
            self._seen[key].append(now)


@dataclass
class Fault:
    """An answer a test ordered for the next ``times`` calls of a kind."""

    status: int
    code: int | None
    msg: str | None
    headers: dict[str, str]
    times: int
    raw: bytes | None = None

    def answer(self) -> Answer:
        if self.raw is not None:
            return self.status, {"content-type": "text/plain", **self.headers}, self.raw
        said = {"code": 1 if self.code is None else self.code, "msg": self.msg or "failed"}
        return answer(said, self.status, self.headers)


Handle = Callable[[str, str, dict[str, str], bytes], Answer]


@contextmanager
def serve(handle: Handle, too_large: Callable[[str, str], None]) -> Iterator[str]:
    """Serve ``handle(method, path, headers with lower-case names, body)`` on 127.0.0.1 for the
    block; its URL. A body over 10 MB (uploads: 31 MB) is read, dropped and answered HTTP 413
    (``too_large`` told), as Lark's gateway refuses it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            upload = self.path.startswith("/open-apis/im/v1/files")
            if length > (FILE_LIMIT + KB * KB if upload else BODY_LIMIT):
                _drain(self.rfile, length)
                too_large(self.command, self.path)
                status, headers, payload = 413, {"content-type": "text/plain"}, b"Too Large"
            else:
                body = self.rfile.read(length)
                heard = {name.lower(): value for name, value in self.headers.items()}
                status, headers, payload = handle(self.command, self.path, heard, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _drain(stream: io.BufferedIOBase, length: int) -> None:
    """Read and drop a body too large to keep, so the client gets the answer, not a reset."""
    while length > 0:
        chunk = stream.read(min(length, 1 << 20))
        if not chunk:
            return
        length -= len(chunk)
