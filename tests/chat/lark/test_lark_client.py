"""The Lark adapter's calls through the real SDK against the fake Open API: a token Lark
refuses is dropped and fetched again, whichever of the SDK's calls met it."""

from __future__ import annotations

from bot.chat.lark.client import TOKENS, LarkCalls, build_client
from bot.chat.lark.identity import BotIdentity
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
