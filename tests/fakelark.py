"""A fake Lark (Feishu) Open API served over real HTTP on 127.0.0.1, as strict as the platform.

Reached with ``lark.Client.builder()...domain(fake.api_url)``: every call goes to ``api_url +
/open-apis/...``. What real Lark does that the fake enforces:

- ``tenant_access_token/internal`` issues a token for the right app id and secret (else HTTP
  400, 10014) and, as Lark does, hands out the *same* token again while more than 30 minutes of
  its two hours remain; every other call needs ``Authorization: Bearer`` with a live token
  (else HTTP 400, 99991661 missing / 99991663 invalid). ``revoke_tokens`` kills them all.
- ``im/v1/messages``: create (``receive_id_type`` chat_id or open_id: a person's p2p chat with
  the bot, ``oc_p2p_<open_id>``), ``.../reply`` (a quote reply, or with ``reply_in_thread`` a
  reply in the message's thread, made once as ``omt_...``; a reply to a message in a thread
  stays in it), ``PATCH`` (cards sent by this bot only, and shared ones: ``config.update_multi``
  true before and after, as Lark requires), ``GET`` (a chat's messages, a thread's replies only
  as their root, or a thread's; at most 50 a page); ``im/v1/files`` (30 MB); ``bot/v3/info``;
  ``contact/v3/users/:open_id`` (a name: ``names``; ``None``, the app without the scope).
- ``content`` is a JSON *string* of the right shape for its ``msg_type`` (230001); a text
  request at most 150 KB, a card request 30 KB (230025); the chat exists and has the bot
  (230002); an open_id is someone of the tenant (230013); ``uuid`` at most 50 characters, and a
  create or reply with a ``uuid`` seen within the hour posts nothing and answers the first
  message. Request bodies over 10 MB (uploads: over 31 MB) are refused with HTTP 413; unknown
  paths answer 404. Errors are HTTP 400 with Lark's codes (``tests.fakelark_rules``); cards
  are checked as Lark checks them (``tests.fakelark_cards``).
- Rate limits (on unless ``rate_limits=False``): 5 sends a second per chat (create and reply
  together), 5 updates a second per message, 50 a second and 1000 a minute per API for the app;
  over them HTTP 429 ``{"code": 99991400, "msg": "request trigger frequency limit"}`` with
  ``x-ogw-ratelimit-limit`` and ``x-ogw-ratelimit-reset`` (whole seconds, at least 1), counted
  in ``rate_limited``. A call refused for its rate takes no place in any window.
- A card is answered (create, reply, list) re-rendered as Lark does, not as sent.

Faults a test orders: ``fail`` (the next N calls of a kind answered as told), ``outage``
(everything, the token endpoint too, HTTP 503 with a non-JSON body), ``refuse`` (every send
into a chat refused until ``stop_refusing``), ``leave`` (the bot removed from a group).
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests import fakelark_rules as rules
from tests.fakelark_cards import shared_card
from tests.fakelark_events import (
    APP_ID,
    APP_SECRET,
    BOT_OPEN_ID,
    DEFAULT_PEOPLE,
    ENCRYPT_KEY,
    TENANT_KEY,
    VERIFICATION_TOKEN,
    ids,
    new_message_id,
)
from tests.fakelark_rules import Answer, Fault, LarkError, invalid

__all__ = [  # the app's credentials and ids re-exported, with the fake
    "APP_ID", "APP_SECRET", "BOT_OPEN_ID", "DEFAULT_PEOPLE", "ENCRYPT_KEY", "TENANT_KEY",
    "VERIFICATION_TOKEN", "Call", "FakeLark", "p2p_chat", "serving",
]  # fmt: skip

TOKEN_TTL, TOKEN_RENEW = 7200, 1800  # a token lives 2 h; a new one only under 30 min left
UUID_TTL = 3600.0
CHAT_RATE, PATCH_RATE, APP_RATE, APP_RATE_MINUTE = 5, 5, 50, 1000
KINDS = ("token", "create", "reply", "patch", "list", "file", "bot", "user")
T = TypeVar("T")


@dataclass
class Call:
    """One request as the fake received it (``kind`` None: no endpoint of the fake's)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    at: float  # time.monotonic()
    kind: str | None


@dataclass
class FakeLark:
    """The fake platform: a tenant's people, its group chats (the bot in each), the messages."""

    people: Iterable[str] = DEFAULT_PEOPLE
    # the names contact/v3/users answers (default: the open_id's tail, titled: ou_alice, Alice);
    # ``None``: the app was not granted contact:user.base:readonly (every lookup refused)
    names: dict[str, str] | None = field(default_factory=dict)
    chats: dict[str, set[str]] | None = None  # group chat_id -> member open_ids
    rate_limits: bool = True
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    url: str = ""
    calls: list[Call] = field(default_factory=list)
    token_requests: int = 0  # calls of the token endpoint, however answered
    rate_limited: int = 0  # 429s answered because a client called too fast
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> its end (monotonic)
    _messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    _uuids: dict[str, tuple[str, float]] = field(default_factory=dict)
    _roots: dict[str, str] = field(default_factory=dict)  # thread_id -> root message_id
    _files: dict[str, dict[str, Any]] = field(default_factory=dict)
    _away: set[str] = field(default_factory=set)  # groups the bot was removed from
    _refusals: dict[str, tuple[int, str]] = field(default_factory=dict)
    _faults: dict[str, list[Fault]] = field(default_factory=dict)
    _down_until: float = 0.0
    _windows: rules.Windows = field(default_factory=rules.Windows)
    _last_ms: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.people = list(self.people)
        if self.chats is None:
            self.chats = {"oc_islands": set(self.people)}

    # ---- what tests use ----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The SDK's ``domain``: ``http://127.0.0.1:PORT``, no trailing slash."""
        return self.url

    def fail(
        self,
        kind: str,
        times: int = 1,
        status: int = 500,
        code: int | None = None,
        msg: str | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        """The next ``times`` calls of ``kind`` (one of ``KINDS``, or ``"any"``: every call but
        the token endpoint's) are answered ``status`` with ``{"code", "msg"}`` (a 429 defaults
        to 99991400 and the rate-limit headers), or with ``raw``, a non-JSON body, when given.
        They are answered after the token check, before any other."""
        if kind not in (*KINDS, "any"):
            raise ValueError(f"unknown kind {kind!r}")
        if status == 429:
            code = 99991400 if code is None else code
            msg = msg or "request trigger frequency limit"
            limits = {"x-ogw-ratelimit-limit": "5", "x-ogw-ratelimit-reset": "1"}
            headers = {**limits, **(headers or {})}
        with self._lock:
            fault = Fault(status, code, msg, dict(headers or {}), times, raw)
            self._faults.setdefault(kind, []).append(fault)

    def outage(self, seconds: float) -> None:
        """Lark down for ``seconds`` (0: up again): every /open-apis call, the token endpoint
        included, is answered HTTP 503 with the non-JSON body ``upstream unavailable``."""
        with self._lock:
            self._down_until = time.monotonic() + seconds

    def refuse(self, chat_id: str, code: int = 230002, msg: str = rules.OUT_OF_CHAT) -> None:
        """Every create or reply into ``chat_id`` (a group, or ``oc_p2p_<open_id>``) is refused
        with ``code`` (HTTP 400) until ``stop_refusing``."""
        with self._lock:
            self._refusals[chat_id] = (code, msg)

    def stop_refusing(self) -> None:
        with self._lock:
            self._refusals.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far is dead (expired, or the secret rotated): a call with one
        is answered 99991663, and the client has to fetch a new token."""
        with self._lock:
            self._tokens.clear()

    def leave(self, chat_id: str) -> None:
        """The bot is removed from the group: sends, updates and lists there answer 230002."""
        with self._lock:
            self._away.add(chat_id)

    def add_chat(self, chat_id: str, members: Iterable[str] = ()) -> None:
        """A group (``oc_...``) with these members, the bot (back) in it."""
        with self._lock:
            assert self.chats is not None
            self.chats.setdefault(chat_id, set()).update(members)
            self._away.discard(chat_id)

    def record_event(self, event: dict[str, Any]) -> str:
        """Keep the message of an ``im.message.receive_v1`` event (``fakelark_events``) as its
        sender wrote it, so the bot can reply to it (not update it); its message_id."""
        m, sender = event["event"]["message"], event["event"]["sender"]["sender_id"]["open_id"]
        kept = {k: m.get(k) for k in ("chat_id", "chat_type", "message_id", "root_id")}
        kept.update(parent_id=m.get("parent_id"), thread_id=m.get("thread_id"), sender=sender)
        with self._lock:
            return str(self._store(m["content"], msg_type=m["message_type"], **kept)["message_id"])

    def count(self, kind: str) -> int:
        """Calls of a kind (``KINDS``; ``"any"``: all)."""
        with self._lock:
            return sum(1 for c in self.calls if kind in ("any", c.kind))

    def messages(self, chat_id: str | None = None) -> list[dict[str, Any]]:
        """The messages kept (copies), in order, those of one chat when given: message_id,
        chat_id, chat_type, msg_type, content (parsed), raw, root_id, parent_id, thread_id,
        uuid, updates, versions (each content, the first one sent), receive_id, sender."""
        with self._lock:
            found = [m for m in self._messages.values() if chat_id in (None, m["chat_id"])]
            return copy.deepcopy(found)

    def message(self, message_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._messages[message_id])

    def thread(self, message_id: str) -> list[dict[str, Any]]:
        """The replies in the thread of ``message_id`` (its root or a reply in it), in order."""
        with self._lock:
            thread_id = self._messages[message_id]["thread_id"]
            root = self._roots.get(thread_id or "")
            return [
                m
                for m in self.messages()
                if thread_id and m["thread_id"] == thread_id and m["message_id"] != root
            ]

    def direct(self, open_id: str) -> list[dict[str, Any]]:
        """The messages in that person's p2p chat with the bot."""
        return self.messages(p2p_chat(open_id))

    def file(self, file_key: str) -> dict[str, Any]:
        """An upload: ``file_key``, ``file_type``, ``file_name``, ``content`` (bytes)."""
        with self._lock:
            return dict(self._files[file_key])

    def wait_for(self, check: Callable[[], T], timeout: float = 20.0) -> T:
        """Poll ``check`` until it answers something truthy, which is returned."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"fake Lark never saw what was expected within {timeout}s")

    # ---- serving -----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one request (``headers`` with lower-case names)."""
        parts = urllib.parse.urlsplit(target)
        path, query = parts.path, dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        kind, message_id = rules.route(method, path)
        with self._lock:
            seen = Call(method, path, query, rules.peek(headers, body), time.monotonic(), kind)
            self.calls.append(seen)
            self.token_requests += kind == "token"
            if path.startswith("/open-apis/") and time.monotonic() < self._down_until:
                return 503, {"content-type": "text/plain"}, b"upstream unavailable"
            if kind is None:
                return rules.answer({"code": 404, "msg": "404 page not found"}, 404)
            try:
                if kind == "token":
                    return self._fault("token") or self._token(body)
                self._authorize(headers.get("authorization"))
                faulted = self._fault(kind) or self._fault("any")
                if faulted is not None:
                    return faulted
                handler: Callable[..., Answer] = getattr(self, "_" + kind)
                return handler(query=query, headers=headers, body=body, message_id=message_id)
            except LarkError as error:
                return error.answer()

    def _fault(self, kind: str) -> Answer | None:
        queue = self._faults.get(kind) or []
        if not queue:
            return None
        queue[0].times -= 1
        return (queue.pop(0) if queue[0].times <= 0 else queue[0]).answer()

    def too_large(self, method: str, target: str) -> None:
        """Keep a call refused for its size (HTTP 413) with the others."""
        path = urllib.parse.urlsplit(target).path
        with self._lock:
            self.calls.append(
                Call(method, path, {}, None, time.monotonic(), rules.route(method, path)[0])
            )

    def _token(self, body: bytes) -> Answer:
        """Lark answers the token at top level (no ``data``), ``expire`` in seconds."""
        try:
            asked = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            asked = None
        given = (asked.get("app_id"), asked.get("app_secret")) if isinstance(asked, dict) else ()
        if given != (self.app_id, self.app_secret):
            return rules.answer({"code": 10014, "msg": "app secret invalid"}, 400)
        now = time.monotonic()
        alive = [(ends, token) for token, ends in self._tokens.items() if ends - now > TOKEN_RENEW]
        if alive:
            ends, token = max(alive)
        else:
            token, ends = "t-" + secrets.token_hex(20), now + TOKEN_TTL
            self._tokens[token] = ends
        said = {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": int(ends - now)}
        return rules.answer(said)

    def _authorize(self, header: str | None) -> None:
        token = (header or "").removeprefix("Bearer ").strip()
        if not header or not header.startswith("Bearer ") or not token:
            raise LarkError(99991661, rules.NO_TOKEN)
        if self._tokens.get(token, 0.0) <= time.monotonic():
            raise LarkError(99991663, rules.BAD_TOKEN)

    def _admit(self, *windows: tuple[str, int, float]) -> None:
        """Take a place in each (key, limit, seconds) sliding window, or raise the 429."""
        if self.rate_limits:
            try:
                self._windows.admit(time.monotonic(), *windows)
            except LarkError:
                self.rate_limited += 1
                raise

    def _app(self, kind: str) -> list[tuple[str, int, float]]:
        return [(f"app:{kind}", APP_RATE, 1.0), (f"app-minute:{kind}", APP_RATE_MINUTE, 60.0)]

    def _chat_type(self, chat_id: str) -> str:
        """``p2p`` or ``group`` for a chat the bot is in, else 230002 (a chat unknown too)."""
        assert self.chats is not None
        if chat_id.startswith("oc_p2p_") and chat_id[7:] in self.people:
            return "p2p"
        if chat_id in self.chats and chat_id not in self._away:
            return "group"
        raise LarkError(230002, rules.OUT_OF_CHAT)

    def _sendable(self, chat_id: str) -> str:
        chat_type = self._chat_type(chat_id)
        if chat_id in self._refusals:
            raise LarkError(*self._refusals[chat_id])
        return chat_type

    def _uuid(self, request: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        """(uuid, the message already sent with it within the hour, if any)."""
        uuid = request.get("uuid")
        if uuid is None or uuid == "":
            return None, None
        if not isinstance(uuid, str) or len(uuid) > 50:
            raise invalid("uuid", "uuid is a string of at most 50 characters")
        seen = self._uuids.get(uuid)
        if seen is None or time.monotonic() - seen[1] > UUID_TTL:
            return uuid, None
        return uuid, self._messages.get(seen[0])

    def _create(
        self, query: dict[str, str], headers: Mapping[str, str], body: bytes, **_: Any
    ) -> Answer:
        id_type = query.get("receive_id_type")
        if id_type not in ("chat_id", "open_id"):
            raise invalid("receive_id_type", "receive_id_type must be chat_id or open_id here")
        request = rules.json_body(headers, body)
        receive_id = request.get("receive_id")
        if not isinstance(receive_id, str) or not receive_id:
            raise invalid("receive_id", "receive_id is required")
        chat_id = receive_id if id_type == "chat_id" else p2p_chat(receive_id)
        self._admit((f"chat:{chat_id}", CHAT_RATE, 1.0), *self._app("create"))
        uuid, sent = self._uuid(request)
        if sent is not None:
            return rules.ok(rules.view(sent, self.app_id))
        if id_type == "open_id" and receive_id not in self.people:
            raise LarkError(230013, rules.NO_ACCESS)
        chat_type = self._sendable(chat_id)
        msg_type, raw = rules.content(request, len(body), self._files)
        kept = dict(chat_id=chat_id, chat_type=chat_type, uuid=uuid, receive_id=receive_id)
        message = self._store(raw, msg_type=msg_type, **kept)
        return rules.ok(rules.view(message, self.app_id))

    def _reply(
        self, headers: Mapping[str, str], body: bytes, message_id: str | None, **_: Any
    ) -> Answer:
        target = self._messages.get(message_id or "")
        if target is None:
            raise LarkError(230011, rules.NO_MESSAGE)
        self._admit((f"chat:{target['chat_id']}", CHAT_RATE, 1.0), *self._app("reply"))
        request = rules.json_body(headers, body)
        in_thread = request.get("reply_in_thread", False)
        if not isinstance(in_thread, bool):
            raise invalid("reply_in_thread", "reply_in_thread is a boolean")
        uuid, sent = self._uuid(request)
        if sent is not None:
            return rules.ok(rules.view(sent, self.app_id))
        chat_type = self._sendable(target["chat_id"])
        msg_type, raw = rules.content(request, len(body), self._files)
        thread_id = target["thread_id"]
        if thread_id is None and in_thread:
            thread_id = "omt_" + secrets.token_hex(8)
            target["thread_id"] = thread_id
            self._roots[thread_id] = target["message_id"]
        root = self._roots[thread_id] if thread_id else target["root_id"] or target["message_id"]
        kept = dict(chat_id=target["chat_id"], chat_type=chat_type, msg_type=msg_type, uuid=uuid)
        message = self._store(
            raw, root_id=root, parent_id=target["message_id"], thread_id=thread_id, **kept
        )
        return rules.ok(rules.view(message, self.app_id))

    def _patch(
        self, headers: Mapping[str, str], body: bytes, message_id: str | None, **_: Any
    ) -> Answer:
        target = self._messages.get(message_id or "")
        if target is None:
            raise LarkError(230011, rules.NO_MESSAGE)
        self._admit((f"message:{target['message_id']}", PATCH_RATE, 1.0), *self._app("patch"))
        raw = rules.json_body(headers, body).get("content")
        if target["msg_type"] != "interactive":
            raise LarkError(230001, f"{rules.BAD_CONTENT}: only a card (interactive) is updated")
        if target["sender"] != self.app_id:
            raise LarkError(230027, "lack of necessary permissions")
        self._chat_type(target["chat_id"])
        rules.content({"msg_type": "interactive", "content": raw}, len(body), self._files)
        card = json.loads(str(raw))
        if not (shared_card(target["content"]) and shared_card(card)):
            raise LarkError(230001, f"{rules.BAD_CONTENT}: config.update_multi must be true")
        target.update(content=card, raw=raw, updates=target["updates"] + 1, updated=True)
        target["versions"].append(card)
        target["update_time"] = self._now_ms()
        return rules.ok({})

    def _list(self, query: dict[str, str], **_: Any) -> Answer:
        kind, container, size, newest_first, start = rules.list_query(query)
        self._admit(*self._app("list"))
        if kind == "thread":
            if container not in self._roots:
                raise LarkError(230001, "invalid container_id")
            self._chat_type(self._messages[self._roots[container]]["chat_id"])
            found = [m for m in self._messages.values() if m["thread_id"] == container]
        else:
            self._chat_type(container)
            lo = rules.integer(query.get("start_time", "0"), "start_time") * 1000
            hi = rules.integer(query.get("end_time", str(2**40)), "end_time") * 1000
            found = [
                m
                for m in self._messages.values()
                if m["chat_id"] == container
                and m["message_id"] == self._roots.get(m["thread_id"], m["message_id"])
                and lo <= m["create_time"] <= hi
            ]
        found.sort(key=lambda m: int(m["create_time"]), reverse=newest_first)
        page = [rules.view(m, self.app_id) for m in found[start : start + size]]
        data: dict[str, Any] = {"has_more": start + size < len(found), "items": page}
        if data["has_more"]:
            data["page_token"] = rules.page_token(container, start + size)
        return rules.ok(data)

    def _file(self, headers: Mapping[str, str], body: bytes, **_: Any) -> Answer:
        form = rules.multipart(headers.get("content-type") or "", body)
        self._admit(*self._app("file"))
        file_type, file_name = form.get("file_type", b"").decode(), form.get("file_name", b"")
        if file_type not in rules.FILE_TYPES or not file_name or "file" not in form:
            raise LarkError(234001, rules.BAD_FILE)
        if not form["file"]:
            raise LarkError(234010, "File's size can't be 0.")
        if len(form["file"]) > rules.FILE_LIMIT:
            raise LarkError(234006, "The file size exceeds the limit.")
        key = "file_v3_" + secrets.token_hex(16)
        upload = dict(file_type=file_type, file_name=file_name.decode(), content=form["file"])
        self._files[key] = {"file_key": key, **upload}
        return rules.ok({"file_key": key})

    def _user(self, *, query: dict[str, str], message_id: str | None, **_: Any) -> Answer:
        """``contact/v3/users/:user_id``: a person of the tenant by ``user_id_type`` (open_id
        here); the app needs the contact scope, and sees only people in its visibility."""
        if self.names is None:
            raise LarkError(
                99991672,
                "Access denied. One of the following scopes is required: "
                "[contact:user.base:readonly]",
            )
        person = message_id or ""
        if query.get("user_id_type", "open_id") != "open_id" or person not in list(self.people):
            raise LarkError(41050, "no user authority error")
        name = self.names.get(person) or person.removeprefix("ou_").title()
        return rules.ok({"user": {**ids(person), "name": name, "en_name": name}})

    def _bot(self, **_: Any) -> Answer:
        """``bot/v3/info`` answers ``bot`` at top level, not under ``data``."""
        bot = dict(activate_status=2, app_name="islandbot", avatar_url="", ip_white_list=[])
        return rules.answer({"code": 0, "msg": "ok", "bot": {**bot, "open_id": BOT_OPEN_ID}})

    def _now_ms(self) -> int:
        """Unix milliseconds, strictly increasing (Lark's message times)."""
        self._last_ms = max(time.time_ns() // 1_000_000, self._last_ms + 1)
        return self._last_ms

    def _store(self, raw: str, **fields: Any) -> dict[str, Any]:
        """Keep a message (``fields``: chat_id, chat_type, msg_type and, when set, message_id,
        root_id, parent_id, thread_id, uuid, receive_id, sender: the app by default)."""
        message = rules.record(raw, self._now_ms(), **fields)
        message["message_id"] = message.get("message_id") or new_message_id()
        message["sender"] = message.get("sender") or self.app_id
        if message["thread_id"] is not None and message["root_id"] is None:
            self._roots.setdefault(message["thread_id"], message["message_id"])
        self._messages[message["message_id"]] = message
        if message["uuid"] is not None:
            self._uuids[message["uuid"]] = (message["message_id"], time.monotonic())
        return message


def p2p_chat(open_id: str) -> str:
    """The fake's stable id of a person's p2p chat with the bot."""
    return f"oc_p2p_{open_id}"


@contextmanager
def serving(fake: FakeLark | None = None) -> Iterator[FakeLark]:
    """Serve ``fake`` (a new one by default) on 127.0.0.1 for the block."""
    lark = fake or FakeLark()
    with rules.serve(lark.handle, lark.too_large) as url:
        lark.url = url
        yield lark
