"""The fake Lark Open API (``tests.fakelark``) driven through the real SDK (lark-oapi), and the
callback builders (``tests.fakelark_events``) checked against the SDK's own dispatcher."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import lark_oapi as lark
import pytest
from lark_oapi.api.im.v1 import (
    CreateFileRequest,
    CreateFileRequestBody,
    CreateMessageRequest,
    CreateMessageRequestBody,
    ListMessageRequest,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)
from lark_oapi.core.cache import ICache
from lark_oapi.core.exception import ObtainAccessTokenException
from lark_oapi.core.token.manager import TokenManager
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)

from tests import fakelark, fakelark_events
from tests.fakelark import APP_ID, APP_SECRET, BOT_OPEN_ID, FakeLark

TOKEN_KEY = f"self_tenant_token:{APP_ID}"  # where the SDK caches the app's tenant token


def card(text: str, *, shared: bool = True, value: dict[str, Any] | None = None) -> str:
    return json.dumps(
        {
            "config": {"update_multi": shared},
            "header": {"title": {"tag": "plain_text", "content": "Island"}},
            "elements": [
                {"tag": "div", "text": {"tag": "lark_md", "content": text}},
                {
                    "tag": "action",
                    "actions": [
                        {
                            "tag": "button",
                            "text": {"tag": "plain_text", "content": "Stop"},
                            "value": value or {"action": "stop"},
                        }
                    ],
                },
            ],
        }
    )


def text(said: str) -> str:
    return json.dumps({"text": said})


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeLark]:
    """The fake, its rate limits on unless a test asks ``indirect`` for ``False``."""
    with fakelark.serving(FakeLark(rate_limits=getattr(request, "param", True))) as f:
        yield f


UNPACED = pytest.mark.parametrize("fake", [False], indirect=True, ids=["unpaced"])


@pytest.fixture
def client(fake: FakeLark) -> lark.Client:
    # the SDK caches the tenant token process-wide by app id: a token of an earlier fake is
    # no token to this one, so drop it (an ICache entry set to expire at 0 is gone)
    TokenManager.cache.set(TOKEN_KEY, "", 0)
    return lark.Client.builder().app_id(APP_ID).app_secret(APP_SECRET).domain(fake.api_url).build()


def msg_type_of(content: str) -> str:
    """The msg_type of a content built here: a card has elements."""
    return "interactive" if '"elements"' in content else "text"


def create(
    client: lark.Client,
    receive_id: str,
    content: str,
    *,
    kind: str = "chat_id",
    msg_type: str | None = None,
    uuid: str | None = None,
) -> Any:
    body = CreateMessageRequestBody.builder().receive_id(receive_id).content(content)
    body = body.msg_type(msg_type or msg_type_of(content))
    if uuid is not None:
        body = body.uuid(uuid)
    request = CreateMessageRequest.builder().receive_id_type(kind).request_body(body.build())
    return client.im.v1.message.create(request.build())


def reply(client: lark.Client, message_id: str, content: str, *, in_thread: bool = False) -> Any:
    body = ReplyMessageRequestBody.builder().msg_type(msg_type_of(content)).content(content)
    body = body.reply_in_thread(in_thread)
    request = ReplyMessageRequest.builder().message_id(message_id).request_body(body.build())
    return client.im.v1.message.reply(request.build())


def patch(client: lark.Client, message_id: str, content: str) -> Any:
    body = PatchMessageRequestBody.builder().content(content).build()
    request = PatchMessageRequest.builder().message_id(message_id).request_body(body).build()
    return client.im.v1.message.patch(request)


def test_a_message_to_a_group_is_kept_and_answered_as_lark_answers(
    fake: FakeLark, client: lark.Client
) -> None:
    resp = create(client, "oc_islands", text('<at user_id="ou_bob">Bob</at> dev is up'))
    assert resp.success(), (resp.code, resp.msg)
    data = resp.data
    assert data.message_id.startswith("om_") and data.chat_id == "oc_islands"
    assert data.msg_type == "text" and data.root_id is None and data.thread_id is None
    assert (data.sender.id, data.sender.sender_type) == (APP_ID, "app")
    assert json.loads(data.body.content) == {"text": "@_user_1 dev is up"}
    assert [(m.key, m.id, m.name) for m in data.mentions] == [("@_user_1", "ou_bob", "Bob")]
    kept = fake.message(data.message_id)
    assert kept["content"] == {"text": '<at user_id="ou_bob">Bob</at> dev is up'}
    assert (kept["chat_type"], kept["receive_id"], kept["updates"]) == ("group", "oc_islands", 0)
    assert fake.token_requests == 1 and fake.count("create") == 1
    call = fake.calls[-1]
    assert call.query == {"receive_id_type": "chat_id"} and call.json["receive_id"] == "oc_islands"

    info = client.request(
        lark.BaseRequest.builder()
        .http_method(lark.HttpMethod.GET)
        .uri("/open-apis/bot/v3/info")
        .token_types({lark.AccessTokenType.TENANT})
        .build()
    )
    assert json.loads(info.raw.content)["bot"]["open_id"] == BOT_OPEN_ID
    assert fake.token_requests == 1  # the token was cached


@UNPACED
def test_a_reply_in_thread_makes_the_thread_once_and_lists_by_container(
    fake: FakeLark, client: lark.Client
) -> None:
    root = create(client, "oc_islands", card("dev: starting")).data.message_id
    first = reply(client, root, text("pod scheduled"), in_thread=True).data
    assert first.thread_id.startswith("omt_") and first.root_id == root
    assert first.parent_id == root
    second = reply(client, first.message_id, text("ready")).data  # a reply in a thread stays
    assert (second.thread_id, second.root_id) == (first.thread_id, root)
    quote = reply(client, root, text("a quote reply")).data  # the root is in its thread now
    assert quote.thread_id == first.thread_id
    assert fake.message(root)["thread_id"] == first.thread_id
    assert [m["message_id"] for m in fake.thread(root)] == [
        first.message_id,
        second.message_id,
        quote.message_id,
    ]
    other = create(client, "oc_islands", text("no thread")).data.message_id
    plain = reply(client, other, text("quoted")).data
    assert (plain.root_id, plain.parent_id, plain.thread_id) == (other, other, None)
    assert json.loads(fake.message(root)["raw"])["config"] == {"update_multi": True}

    def listed(kind: str, container: str, size: int, token: str | None = None) -> Any:
        request = ListMessageRequest.builder().container_id_type(kind).container_id(container)
        request = request.page_size(size)
        if token:
            request = request.page_token(token)
        resp = client.im.v1.message.list(request.build())
        assert resp.success(), (resp.code, resp.msg)
        return resp.data

    in_thread = listed("thread", first.thread_id, 50)
    threaded = [root, first.message_id, second.message_id, quote.message_id]
    assert [m.message_id for m in in_thread.items] == threaded and not in_thread.has_more
    page = listed("chat", "oc_islands", 2)
    assert [m.message_id for m in page.items] == [root, other] and page.has_more
    rest = listed("chat", "oc_islands", 2, page.page_token)
    assert [m.message_id for m in rest.items] == [plain.message_id] and not rest.has_more
    shown = json.loads(page.items[0].body.content)  # a card comes back re-rendered
    assert shown["title"] == "Island" and "elements" in shown and "config" not in shown
    too_big = client.im.v1.message.list(
        ListMessageRequest.builder().container_id_type("chat").container_id("oc_islands")
        .page_size(51).build()
    )  # fmt: skip
    assert (too_big.code, too_big.raw.status_code) == (99992402, 400)


def test_only_a_shared_card_of_the_bots_own_is_updated_and_each_version_kept(
    fake: FakeLark, client: lark.Client
) -> None:
    message_id = create(client, "oc_islands", card("starting")).data.message_id
    resp = patch(client, message_id, card("ready"))
    assert resp.success(), (resp.code, resp.msg)
    kept = fake.message(message_id)
    assert kept["updates"] == 1 and kept["content"]["elements"][0]["text"]["content"] == "ready"
    assert [v["elements"][0]["text"]["content"] for v in kept["versions"]] == ["starting", "ready"]
    said = create(client, "oc_islands", text("plain")).data.message_id
    assert patch(client, said, card("x")).code == 230001  # not a card
    assert patch(client, message_id, card("x", shared=False)).code == 230001  # not shared
    assert patch(client, message_id, text("x")).code == 230001  # no card
    assert patch(client, "om_nope", card("x")).code == 230011
    event = fakelark_events.message_event(
        sender="ou_alice", chat_id="oc_islands", chat_type="group", text="hi"
    )
    theirs = fake.record_event(event)
    assert patch(client, theirs, card("x")).code == 230001  # a person's text
    assert reply(client, theirs, text("hello")).success()  # a person's message is replied to


def test_a_uuid_seen_within_the_hour_posts_nothing_and_answers_the_first_message(
    fake: FakeLark, client: lark.Client
) -> None:
    first = create(client, "oc_islands", text("once"), uuid="notice-42")
    again = create(client, "oc_islands", text("once"), uuid="notice-42")
    assert first.success() and again.success()
    assert again.data.message_id == first.data.message_id
    assert len(fake.messages("oc_islands")) == 1
    long = create(client, "oc_islands", text("x"), uuid="u" * 51)
    assert (long.code, long.raw.status_code) == (99992402, 400)
    assert long.error["field_violations"][0]["field"] == "uuid"  # a dict: the SDK leaves it raw


def test_a_revoked_token_is_refused_until_the_client_drops_it(
    fake: FakeLark, client: lark.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert create(client, "oc_islands", text("one")).success()
    fake.revoke_tokens()
    refused = create(client, "oc_islands", text("two"))
    assert not refused.success()
    assert (refused.code, refused.raw.status_code) == (99991663, 400)
    assert fake.token_requests == 1  # the SDK keeps using its cached token: it never drops it
    TokenManager.cache.set(TOKEN_KEY, "", 0)
    assert create(client, "oc_islands", text("three")).success()
    assert fake.token_requests == 2

    class Cache(ICache):  # what an adapter can give the builder to drop a rejected token
        def __init__(self) -> None:
            self.kept: dict[str, str] = {}

        def get(self, key: str) -> str:
            return self.kept.get(key, "")

        def set(self, key: str, value: str, expire: int) -> None:
            self.kept[key] = value

    monkeypatch.setattr(TokenManager, "cache", TokenManager.cache)  # restored after the test
    live, cache = TokenManager.cache.get(TOKEN_KEY), Cache()
    own = (
        lark.Client.builder().app_id(APP_ID).app_secret(APP_SECRET).domain(fake.api_url)
        .cache(cache).build()
    )  # fmt: skip
    assert TokenManager.cache is cache  # .cache() replaces the process-wide cache
    assert create(own, "oc_islands", text("four")).success()
    assert fake.token_requests == 3 and cache.kept[TOKEN_KEY] == live  # the same live token
    fake.revoke_tokens()
    assert create(own, "oc_islands", text("five")).code == 99991663
    cache.kept.pop(TOKEN_KEY)
    assert create(own, "oc_islands", text("six")).success()

    wrong = lark.Client.builder().app_id(APP_ID).app_secret("wrong").domain(fake.api_url).build()
    TokenManager.cache.set(TOKEN_KEY, "", 0)
    with pytest.raises(ObtainAccessTokenException) as caught:
        create(wrong, "oc_islands", text("seven"))
    assert caught.value.code == 10014


def test_six_quick_sends_to_one_chat_are_answered_429_with_the_reset(
    fake: FakeLark, client: lark.Client
) -> None:
    answers = [create(client, "oc_islands", text(f"n{n}")) for n in range(6)]
    assert [a.success() for a in answers] == [True] * 5 + [False]
    limited = answers[-1]
    assert (limited.code, limited.raw.status_code) == (99991400, 429)
    headers = {k.lower(): v for k, v in limited.raw.headers.items()}
    assert headers["x-ogw-ratelimit-limit"] == "5"
    assert int(headers["x-ogw-ratelimit-reset"]) >= 1
    assert fake.rate_limited == 1 and len(fake.messages("oc_islands")) == 5
    assert create(client, "ou_alice", text("another chat"), kind="open_id").success()


def test_where_the_bot_may_not_post(fake: FakeLark, client: lark.Client) -> None:
    fake.leave("oc_islands")
    out = create(client, "oc_islands", text("hello"))
    assert (out.code, out.raw.status_code) == (230002, 400)
    assert create(client, "oc_nowhere", text("hello")).code == 230002
    assert create(client, "ou_stranger", text("hi"), kind="open_id").code == 230013
    assert create(client, "x@example.com", text("hi"), kind="email").code == 99992402
    sent = create(client, "ou_alice", text("psst"), kind="open_id").data
    assert sent.chat_id == fakelark.p2p_chat("ou_alice")
    assert [m["content"]["text"] for m in fake.direct("ou_alice")] == ["psst"]
    assert fake.direct("ou_alice")[0]["chat_type"] == "p2p"
    fake.refuse(fakelark.p2p_chat("ou_bob"), code=230025, msg="message content length exceeds")
    assert create(client, "ou_bob", text("hi"), kind="open_id").code == 230025
    fake.stop_refusing()
    assert create(client, "ou_bob", text("hi"), kind="open_id").success()
    assert create(client, "ou_bob", "not json", kind="open_id").code == 230001
    assert create(client, "ou_bob", text(""), kind="open_id").code == 230001


def test_sizes_faults_and_an_outage(fake: FakeLark, client: lark.Client) -> None:
    long = create(client, "oc_islands", text("x" * 150 * 1024))
    assert long.code == 230025
    big = json.loads(card("x"))
    big["elements"][0]["text"]["content"] = "y" * 30 * 1024
    assert create(client, "oc_islands", json.dumps(big)).code == 230025
    fake.fail("create", status=500, code=230020, msg="busy")
    failed = create(client, "oc_islands", text("hi"))
    assert (failed.code, failed.msg, failed.raw.status_code) == (230020, "busy", 500)
    assert create(client, "oc_islands", text("hi")).success()
    fake.outage(30)
    with pytest.raises(json.JSONDecodeError):  # the SDK does not survive a non-JSON body
        create(client, "oc_islands", text("down"))
    fake.outage(0)
    assert create(client, "oc_islands", text("up")).success()


def test_a_file_is_uploaded_and_sent(fake: FakeLark, client: lark.Client) -> None:
    body = CreateFileRequestBody.builder().file_type("stream").file_name("island.log")
    body = body.file(io.BytesIO(b"line 1\nline 2\n"))
    uploaded = client.im.v1.file.create(
        CreateFileRequest.builder().request_body(body.build()).build()
    )
    assert uploaded.success(), (uploaded.code, uploaded.msg)
    key = uploaded.data.file_key
    assert key.startswith("file_v3_") and fake.file(key)["content"] == b"line 1\nline 2\n"
    assert fake.file(key)["file_name"] == "island.log"
    sent = create(client, "oc_islands", json.dumps({"file_key": key}), msg_type="file")
    assert sent.success() and fake.messages("oc_islands")[0]["msg_type"] == "file"
    unknown = json.dumps({"file_key": "file_v3_nope"})
    assert create(client, "oc_islands", unknown, msg_type="file").code == 230001


@pytest.mark.parametrize("encrypt_key", [fakelark_events.ENCRYPT_KEY, None])
def test_the_callbacks_pass_the_sdks_own_dispatcher(encrypt_key: str | None) -> None:
    got: list[Any] = []

    def clicked(data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        got.append(data)
        return P2CardActionTriggerResponse({"toast": {"type": "info", "content": "ok"}})

    handler = (
        lark.EventDispatcherHandler.builder(encrypt_key or "", fakelark_events.VERIFICATION_TOKEN)
        .register_p2_im_message_receive_v1(got.append)
        .register_p2_card_action_trigger(clicked)
        .build()
    )

    def do(payload: dict[str, Any], *, tamper: bool = False) -> Any:
        headers, body = fakelark_events.callback_request(payload, encrypt_key=encrypt_key)
        request = lark.RawRequest()
        request.uri, request.headers = "/lark/events", headers
        request.body = body + b" " if tamper else body
        return handler.do(request)

    event = fakelark_events.message_event(
        sender="ou_alice",
        chat_id="oc_islands",
        chat_type="group",
        text="@_user_1 start dev",
        mentions=[(BOT_OPEN_ID, "islandbot")],
    )
    assert do(event).status_code == 200
    message = got[-1].event.message
    assert got[-1].header.event_id == event["header"]["event_id"]
    assert got[-1].event.sender.sender_id.open_id == "ou_alice"
    assert (message.chat_id, message.chat_type, message.message_type) == (
        "oc_islands",
        "group",
        "text",
    )
    assert json.loads(message.content) == {"text": "@_user_1 start dev"}
    assert [(m.key, m.id.open_id, m.name) for m in message.mentions] == [
        ("@_user_1", BOT_OPEN_ID, "islandbot")
    ]
    action = fakelark_events.card_action_event(
        operator="ou_bob", message_id="om_1", chat_id="oc_islands", value={"action": "stop"}
    )
    answered = do(action)
    assert answered.status_code == 200 and json.loads(answered.content)["toast"]["content"] == "ok"
    assert got[-1].event.action.value == {"action": "stop"}
    assert got[-1].event.operator.open_id == "ou_bob"
    assert got[-1].event.context.open_message_id == "om_1"
    challenge = do(fakelark_events.url_verification("abc"))
    assert json.loads(challenge.content) == {"challenge": "abc"}
    wrong = fakelark_events.url_verification("abc", token="not-ours")
    assert do(wrong).status_code == 500
    if encrypt_key is not None:  # a body changed on the way fails the signature
        assert do(event, tamper=True).status_code == 500


def test_post_callback_answers_status_and_json(fake: FakeLark) -> None:
    headers, body = fakelark_events.callback_request({"a": 1}, encrypt_key=None)
    status, answer = fakelark_events.post_callback(f"{fake.url}/open-apis/nowhere", headers, body)
    assert (status, answer) == (404, {"code": 404, "msg": "404 page not found"})
