"""The pass to the team board: who may look, until when, signed with the server's secret.

A pass is ``v1.<user id>.<name>.<expiry>.<signature>``: the user id and name in unpadded
base64url, the expiry in whole Unix seconds, the signature an HMAC-SHA256 of everything before
it under the board secret. The same text travels in the link a person gets in chat and in the
session cookie the link sets: it is a bearer credential until its expiry (pages refuse it then,
and a live stream ends), so it is given privately and never logged. Its parts are readable by
whoever holds it; only the secret makes one. Changing the secret revokes every pass.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

VERSION = "v1"
MAX_PASS_LENGTH = 512  # a longer one is refused before it is decoded
MAX_NAME_LENGTH = 80
MIN_SECRET_BYTES = 32


class BadPass(ValueError):
    """The pass is malformed, forged, or for another secret."""


class ExpiredPass(BadPass):
    """The pass was good, but its time is over."""

    def __init__(self, expires_at: datetime) -> None:
        super().__init__(f"expired at {expires_at.isoformat()}")
        self.expires_at = expires_at


@dataclass(frozen=True)
class BoardPass:
    user_id: str
    name: str
    expires_at: datetime

    def sign(self, secret: bytes) -> str:
        check_secret(secret)
        body = ".".join(
            (
                VERSION,
                _encode(self.user_id),
                _encode(self.name[:MAX_NAME_LENGTH]),
                str(int(self.expires_at.timestamp())),
            )
        )
        return f"{body}.{_signature(body, secret)}"


def read_pass(text: str, secret: bytes, *, now: datetime) -> BoardPass:
    """The pass ``text`` carries, if its signature holds under ``secret`` and it has not
    expired at ``now``; else ``BadPass`` (``ExpiredPass`` for a good one out of time)."""
    check_secret(secret)
    if not text or len(text) > MAX_PASS_LENGTH:
        raise BadPass("no pass, or one too long")
    body, _, signature = text.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _signature(body, secret).encode()):
        raise BadPass("the signature does not match")
    parts = body.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise BadPass("not a pass of this version")
    try:
        user_id, name = _decode(parts[1]), _decode(parts[2])
        expires_at = datetime.fromtimestamp(int(parts[3]), UTC)
    except (ValueError, OverflowError) as exc:
        raise BadPass("unreadable") from exc
    if not user_id:
        raise BadPass("no user")
    if expires_at <= now:
        raise ExpiredPass(expires_at)
    return BoardPass(user_id, name, expires_at)


def check_secret(secret: bytes) -> None:
    """``ValueError`` for a secret too short to sign with."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the board secret needs at least {MIN_SECRET_BYTES} bytes")


def _signature(body: str, secret: bytes) -> str:
    digest = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _decode(text: str) -> str:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not base64url text") from exc
