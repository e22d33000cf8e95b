"""Lark's HTTP callbacks are Lark's: encrypted events are decrypted, their signatures checked
and kept fresh, the verification token checked; anything else is refused with 401 and changes
nothing (``bot/chat/lark/callback_route.py``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.storage.database import Database
from tests import fakelark_events
from tests.larkworld import GROUP, LarkWorld, lark_world


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[LarkWorld]:
    with lark_world(db, tmp_path) as w:
        yield w


def start_event(user: str = "ou_alice", **kw: object) -> dict[str, object]:
    return fakelark_events.message_event(
        sender=user,
        chat_id=GROUP,
        chat_type="group",
        text="@_user_1 start dev",
        mentions=[(fakelark_events.BOT_OPEN_ID, "islandbot")],
        **kw,  # type: ignore[arg-type]
    )


def post(world: LarkWorld, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, object]]:
    return fakelark_events.post_callback(world.url, headers, body)


def nothing_happened(world: LarkWorld) -> None:
    time.sleep(0.5)  # a request wrongly accepted would be carried out by now
    assert world.islands() == []
    assert world.fake.messages(GROUP) == []


def test_an_encrypted_signed_event_is_acted_on(world: LarkWorld) -> None:
    headers, body = fakelark_events.callback_request(start_event(), encrypt_key=world.encrypt_key)
    assert b"start dev" not in body  # encrypted on the wire
    assert post(world, headers, body)[0] == 200
    world.started()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda h, b: (h, b.replace(b'"}', b' "}')), id="body-changed"),
        pytest.param(lambda h, b: ({**h, "X-Lark-Signature": "0" * 64}, b), id="bad-signature"),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != "X-Lark-Signature"}, b),
            id="unsigned",
        ),
        pytest.param(lambda h, b: ({**h, "X-Lark-Request-Nonce": "other"}, b), id="nonce-changed"),
    ],
)
def test_a_request_that_is_not_lark_s_is_refused_and_changes_nothing(
    world: LarkWorld, spoil: object, caplog: pytest.LogCaptureFixture
) -> None:
    headers, body = fakelark_events.callback_request(start_event(), encrypt_key=world.encrypt_key)
    headers, body = spoil(headers, body)  # type: ignore[operator]
    status, answer = post(world, headers, body)
    assert status == 401 and answer == {"msg": "unauthorized"}
    nothing_happened(world)
    refused = [r for r in caplog.records if "Lark event refused" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelname == "WARNING" and not refused[0].exc_info
    assert not [r for r in caplog.records if r.exc_info]  # no traceback for an expected refusal


def test_a_replayed_request_is_refused_though_its_signature_verifies(world: LarkWorld) -> None:
    stale = str(int(time.time()) - 600)  # signed ten minutes ago: beyond the five allowed
    headers, body = fakelark_events.callback_request(
        start_event(), encrypt_key=world.encrypt_key, timestamp=stale
    )
    assert post(world, headers, body)[0] == 401
    nothing_happened(world)


def test_a_plain_event_is_refused_when_the_app_encrypts(world: LarkWorld) -> None:
    headers, body = fakelark_events.callback_request(start_event(), encrypt_key=None)
    assert post(world, headers, body)[0] == 401
    nothing_happened(world)


def test_the_url_verification_challenge_is_answered(world: LarkWorld) -> None:
    challenge = fakelark_events.url_verification("c-2f9a")
    headers, body = fakelark_events.callback_request(challenge, encrypt_key=world.encrypt_key)
    assert post(world, headers, body) == (200, {"challenge": "c-2f9a"})
    wrong = fakelark_events.url_verification("c-2f9a", token="not-the-token")
    headers, body = fakelark_events.callback_request(wrong, encrypt_key=world.encrypt_key)
    assert post(world, headers, body)[0] == 401


def test_without_an_encrypt_key_the_verification_token_decides(
    db: Database, tmp_path: Path
) -> None:
    with lark_world(db, tmp_path, encrypt=False) as world:
        forged = start_event(verification_token="forged-token")
        headers, body = fakelark_events.callback_request(forged, encrypt_key=None)
        assert post(world, headers, body)[0] == 401
        nothing_happened(world)
        assert world.deliver(fakelark_events.url_verification("c-1")) == (200, {"challenge": "c-1"})
        event = start_event()
        world.fake.record_event(event)
        headers, body = fakelark_events.callback_request(event, encrypt_key=None)
        assert json.loads(body)["event"]["message"]["chat_id"] == GROUP  # plain on the wire
        assert post(world, headers, body)[0] == 200
        world.started()
