"""The Lark adapter's calls through the real SDK against the fake Open API: a token Lark
refuses is dropped and fetched again, whichever of the SDK's calls met it."""

from __future__ import annotations

import pytest

from bot.chat.lark.client import TOKENS, LarkCalls, LarkError, build_client
from bot.chat.lark.identity import BotIdentity
from bot.chat.lark.sender import LarkSender
from tests import fakelark, fakelark_events


def test_a_refused_token_is_dropped_even_where_the_sdk_leaves_the_answer_unread() -> None:
    with fakelark.serving() as fake:
        TOKENS.drop(fakelark_events.APP_ID)  # a token of another test's fake: not this one's
        client = build_client(
            fakelark_events.APP_ID, fakelark_events.APP_SECRET, origin=fake.api_url
        )
        calls = LarkCalls(client, app_id=fakelark_events.APP_ID, sleep=lambda _s: None)
        BotIdentity(calls).read()
        fake.revoke_tokens()
        before, info = fake.token_requests, fake.count("bot")
        identity = BotIdentity(calls)  # client.request: the generic call, read by hand
        identity.read()
        assert identity.open_id() == fakelark_events.BOT_OPEN_ID
        assert fake.token_requests == before + 1
        assert fake.count("bot") == info + 2  # refused once, then made with the new token


def _sender(fake: fakelark.FakeLark) -> LarkSender:
    TOKENS.drop(fakelark_events.APP_ID)
    client = build_client(fakelark_events.APP_ID, fakelark_events.APP_SECRET, origin=fake.api_url)
    return LarkSender(LarkCalls(client, app_id=fakelark_events.APP_ID, sleep=lambda _s: None))


def test_an_upload_tried_again_sends_the_same_file_and_its_title_once() -> None:
    with fakelark.serving() as fake:
        sender = _sender(fake)
        fake.fail("file", times=1, status=500)  # the SDK consumed the first try's body
        log = "server: listening on 37002\n" * 200
        sender.upload(
            "oc_islands", filename="island-7.log", content=log, title="Logs", thread_ts=None
        )
        (kept,) = [m for m in fake.messages("oc_islands") if m["msg_type"] == "file"]
        assert fake.file(kept["content"]["file_key"])["content"] == log.encode()
        sender.upload(
            "oc_islands", filename="island-7.log", content=log, title="Logs", thread_ts=None
        )
        shown = [m["msg_type"] for m in fake.messages("oc_islands")]
        assert shown == ["text", "file"]  # shared again (a retried request): the same uuids


def test_an_answer_that_is_json_but_not_lark_s_is_tried_again() -> None:
    with fakelark.serving() as fake:
        sender = _sender(fake)
        fake.fail("create", times=1, status=200, raw=b"[]")  # a proxy's answer
        sender.post("oc_islands", "hello")
        assert [m["content"] for m in fake.messages("oc_islands")] == [{"text": "hello"}]


def test_a_token_refused_on_the_last_try_is_a_lark_error() -> None:
    with fakelark.serving() as fake:
        sender = _sender(fake)
        fake.fail("create", times=3, status=503)
        fake.fail("create", times=1, status=400, code=99991663, msg="Invalid access token")
        with pytest.raises(LarkError, match="99991663") as refused:
            sender.post("oc_islands", "hello")
        assert not refused.value.permanent  # the outbox tries it again later
