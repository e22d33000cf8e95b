"""Board passes: signed, read back, and refused when changed, forged, expired or odd."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.board_pass import (
    MAX_PASS_LENGTH,
    BadPass,
    BoardPass,
    ExpiredPass,
    check_secret,
    read_pass,
)

SECRET = b"s" * 32
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=12)


def test_a_signed_pass_reads_back_as_it_was_made() -> None:
    made = BoardPass("U123", "Alice Liddell", LATER)
    assert read_pass(made.sign(SECRET), SECRET, now=NOW) == made


@given(user=st.text(min_size=1, max_size=40), name=st.text(max_size=80))
def test_any_user_and_name_survive_the_round_trip(user: str, name: str) -> None:
    made = BoardPass(user, name, LATER)
    token = made.sign(SECRET)
    assert token.isascii() and "=" not in token and " " not in token
    assert read_pass(token, SECRET, now=NOW) == made


def test_a_pass_is_refused_once_its_time_is_over() -> None:
    token = BoardPass("U1", "a", LATER).sign(SECRET)
    assert read_pass(token, SECRET, now=LATER - timedelta(seconds=1)).user_id == "U1"
    with pytest.raises(ExpiredPass) as caught:
        read_pass(token, SECRET, now=LATER)
    assert caught.value.expires_at == LATER


def test_a_pass_signed_with_another_secret_is_refused() -> None:
    token = BoardPass("U1", "a", LATER).sign(b"t" * 32)
    with pytest.raises(BadPass) as caught:
        read_pass(token, SECRET, now=NOW)
    assert not isinstance(caught.value, ExpiredPass)


@pytest.mark.parametrize("part", [1, 2, 3])
def test_changing_any_part_breaks_the_signature(part: int) -> None:
    """Another user, another name, a later expiry: each needs the secret to sign."""
    token = BoardPass("U1", "alice", LATER).sign(SECRET)
    pieces = token.split(".")
    forged = BoardPass("ADMIN", "root", LATER + timedelta(days=365)).sign(b"x" * 32).split(".")
    pieces[part] = forged[part]
    with pytest.raises(BadPass):
        read_pass(".".join(pieces), SECRET, now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", ".", "v1", "v1.a.b.c", "v1...." + "A" * 43, "x" * (MAX_PASS_LENGTH + 1), "v1.%%.a.1.sig"],
)
def test_malformed_passes_are_refused(token: str) -> None:
    with pytest.raises(BadPass):
        read_pass(token, SECRET, now=NOW)


def test_a_pass_of_another_version_is_refused_even_when_signed() -> None:
    good = BoardPass("U1", "a", LATER).sign(SECRET)
    body = "v2." + good.split(".", 1)[1].rpartition(".")[0]
    sig = base64.urlsafe_b64encode(hmac.new(SECRET, body.encode(), hashlib.sha256).digest())
    with pytest.raises(BadPass, match="version"):
        read_pass(f"{body}.{sig.rstrip(b'=').decode()}", SECRET, now=NOW)


def test_a_short_secret_is_not_used() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        check_secret(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        BoardPass("U1", "a", LATER).sign(b"short")
