"""What Lark (Feishu) POSTs to a bot's HTTP callback URL, built exactly as Lark sends it.

Event schema 2.0 (``header`` + ``event``): ``im.message.receive_v1`` (a person wrote to the bot or
mentioned it in a group) and ``card.action.trigger`` (a person clicked a card button), and the
``url_verification`` challenge Lark sends when the callback URL is saved.

``callback_request`` wraps a payload as Lark delivers it: with an Encrypt Key configured, the body
is ``{"encrypt": base64(iv + AES-256-CBC(pkcs7(json)))}`` with the key ``sha256(encrypt_key)`` and
a random 16-byte iv, and ``X-Lark-Signature`` is ``sha256(timestamp + nonce + encrypt_key + body)``
in hex; without one the body is the plain JSON and unsigned. It uses ``cryptography``, not the
SDK, so it checks the SDK's (and the adapter's) decryption independently.

Also here: the app's credentials and ids, shared with the fake Open API (``tests.fakelark``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Literal

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

APP_ID = "cli_islandbot_test"
APP_SECRET = "islandbot-test-app-secret"
VERIFICATION_TOKEN = "islandbot-test-verification-token"
ENCRYPT_KEY = "islandbot-test-encrypt-key"
BOT_OPEN_ID = "ou_islandbot"
TENANT_KEY = "tenant_islandbot_test"
DEFAULT_PEOPLE = ("ou_alice", "ou_bob", "ou_carol", "ou_admin")


def ids(open_id: str) -> dict[str, str]:
    """A person's three ids, as Lark gives them side by side (``open_id`` per app, ``union_id``
    per developer, ``user_id`` per tenant); the fake derives the other two from the open_id."""
    name = open_id.removeprefix("ou_")
    return {"open_id": open_id, "union_id": f"on_{name}", "user_id": name}


def new_message_id() -> str:
    """A message id as Lark makes them (``om_`` and 32 hex digits)."""
    return "om_" + secrets.token_hex(16)


def _ms() -> str:
    """Lark's event times: unix milliseconds, as a string."""
    return str(time.time_ns() // 1_000_000)


def _header(event_type: str, event_id: str | None, token: str) -> dict[str, str]:
    return {
        "event_id": event_id or secrets.token_hex(16),
        "token": token,
        "create_time": _ms(),
        "event_type": event_type,
        "tenant_key": TENANT_KEY,
        "app_id": APP_ID,
    }


def message_event(
    *,
    sender: str,
    chat_id: str,
    chat_type: Literal["group", "p2p"],
    text: str,
    mentions: Sequence[tuple[str, str]] = (),
    event_id: str | None = None,
    message_id: str | None = None,
    root_id: str | None = None,
    parent_id: str | None = None,
    thread_id: str | None = None,
    verification_token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """``im.message.receive_v1``: ``sender`` (an open_id) wrote ``text`` in ``chat_id``.

    A mention is written into the text as its key: the ``mentions`` pairs (open_id, name) get
    the keys ``@_user_1``, ``@_user_2``... in order, so the caller writes e.g. ``"@_user_1 start
    dev"`` with ``mentions=[(BOT_OPEN_ID, "islandbot")]``. As Lark does, ``mentions``,
    ``root_id``, ``parent_id`` and ``thread_id`` are left out when there are none (a reply in a
    thread carries all three)."""
    now = _ms()
    message: dict[str, Any] = {
        "message_id": message_id or new_message_id(),
        "create_time": now,
        "update_time": now,
        "chat_id": chat_id,
        "chat_type": chat_type,
        "message_type": "text",
        "content": json.dumps({"text": text}, ensure_ascii=False),
    }
    for key, value in (("root_id", root_id), ("parent_id", parent_id), ("thread_id", thread_id)):
        if value is not None:
            message[key] = value
    if mentions:
        message["mentions"] = [
            {
                "key": f"@_user_{n}",
                "id": ids(open_id),
                "name": name,
                "tenant_key": TENANT_KEY,
                "mentioned_type": "bot" if open_id == BOT_OPEN_ID else "user",
            }
            for n, (open_id, name) in enumerate(mentions, start=1)
        ]
    return {
        "schema": "2.0",
        "header": _header("im.message.receive_v1", event_id, verification_token),
        "event": {
            "sender": {"sender_id": ids(sender), "sender_type": "user", "tenant_key": TENANT_KEY},
            "message": message,
        },
    }


def card_action_event(
    *,
    operator: str,
    message_id: str,
    chat_id: str,
    value: dict[str, Any],
    event_id: str | None = None,
    verification_token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """``card.action.trigger``: ``operator`` (an open_id) clicked a button whose ``value`` (a
    JSON object, as a v1 card's button carries it) is given, on the card ``message_id``. The
    ``token`` (``c-...``) is the one Lark gives for a delayed card update within 30 minutes."""
    return {
        "schema": "2.0",
        "header": _header("card.action.trigger", event_id, verification_token),
        "event": {
            "operator": {"tenant_key": TENANT_KEY, **ids(operator)},
            "token": "c-" + secrets.token_hex(20),
            "action": {"value": value, "tag": "button"},
            "host": "im_message",
            "context": {"open_message_id": message_id, "open_chat_id": chat_id},
        },
    }


def url_verification(challenge: str, token: str = VERIFICATION_TOKEN) -> dict[str, str]:
    """The challenge Lark sends when the callback URL is saved; the bot answers
    ``{"challenge": challenge}`` (encrypted like any callback when an Encrypt Key is set)."""
    return {"challenge": challenge, "token": token, "type": "url_verification"}


def encrypt(payload: dict[str, Any], encrypt_key: str) -> str:
    """``base64(iv + AES-256-CBC(pkcs7(json)))`` with key ``sha256(encrypt_key)``, as Lark
    encrypts callbacks when an Encrypt Key is configured."""
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(payload, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(plain) + encryptor.finalize()).decode()


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature``: hex sha256 of timestamp + nonce + encrypt key, then the raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def callback_request(
    payload: dict[str, Any],
    *,
    encrypt_key: str | None,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of Lark's POST of ``payload`` to the callback URL: encrypted and signed
    when ``encrypt_key`` is given, else plain JSON and unsigned. ``timestamp`` defaults to now
    (unix seconds), ``nonce`` to a random one."""
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    once = nonce if nonce is not None else secrets.token_hex(8)
    headers = {
        "Content-Type": "application/json",
        "X-Lark-Request-Timestamp": stamp,
        "X-Lark-Request-Nonce": once,
    }
    if encrypt_key is None:
        return headers, json.dumps(payload, ensure_ascii=False).encode()
    body = json.dumps({"encrypt": encrypt(payload, encrypt_key)}).encode()
    headers["X-Lark-Signature"] = signature(stamp, once, encrypt_key, body)
    return headers, body


def post_callback(
    url: str, headers: dict[str, str], body: bytes, *, timeout: float = 10.0
) -> tuple[int, dict[str, Any]]:
    """POST a callback to the bot as Lark does; (HTTP status, the answer's JSON, or ``{"raw":
    text}`` when it is not JSON). Lark expects an answer within 3 seconds (else it retries the
    event, with the same ``event_id``); this waits ``timeout``."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        status, raw = refused.code, refused.read()
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        return status, {"raw": raw.decode(errors="replace")}
    return status, parsed if isinstance(parsed, dict) else {"raw": parsed}
