"""Everything islandbot sends to Lark goes through here (the Lark ``ChatOutput``).

- A chat's messages go out in order through one FIFO queue per conversation (the shared
  ``ChannelQueues``; a person's chat with the bot is one queue, addressed by the chat or the
  person), four a second with no burst, under Lark's five in any second per chat, and the
  app's sends under its minute's limit (``LarkCalls``). Updates of a card are not paced
  (coalesced before they get here: ``root_refresh``), as for Slack.
- A message with blocks is an interactive card (``cards``), updated in place later (Lark
  updates cards only); one without is a text message. A thread's notices are replies in the
  root card's thread (``reply_in_thread``).
- An answer meant for one person goes to them directly (a message to their open_id lands in
  their chat with the bot): Lark's "ephemeral" cards are shown only to people online at the
  time, never in topic groups and not kept, and there are no response URLs.
- Nothing is sent twice: each post carries a ``uuid`` (Lark sends at most one message per
  uuid within an hour and answers a repeat with the first), derived from the notice's key when
  it has one, so a notice tried again after an attempt that may have reached Lark lands once.
  ``find`` knows the messages this process posted by key; beyond them (after a restart) the
  uuid is what keeps a repeat from showing twice.
- Lark has no home tab, no message metadata and no "also send to the channel": those
  requests are left out (the root card shows what the metadata would carry).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from lark_oapi.api.im.v1 import (
    CreateFileRequest,
    CreateFileRequestBody,
    CreateMessageRequest,
    CreateMessageRequestBody,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)

from bot.chat.lark import cards, ids
from bot.chat.lark.client import LarkCalls, LarkError
from bot.chat.output import Blocks
from bot.chat.pacing import ChannelQueues
from bot.domain.notice_routes import Pace

log = logging.getLogger(__name__)

# posts a second to one chat, and the burst: Lark allows 5 in any second per chat, so no
# burst beyond one (4 a second after a burst of 4 would put 7 in the first second)
CHAT_RATE = 4.0
CHAT_BURST = 1.0
UUID_CHARS = 50  # the longest uuid Lark takes
KEYS_KEPT = 10_000  # posted notices' message ids this process remembers by key


def fits(msg_type: str, content: str) -> None:
    """Refuse here, as Lark would, a message over its size (a card 30 KB, a text 150 KB): a
    ``malformed`` ``LarkError``, so that the notifier posts it plainer, as for Slack."""
    limit = cards.CARD_LIMIT if msg_type == "interactive" else cards.TEXT_LIMIT
    size = len(content.encode("utf-8"))
    if size > limit:
        raise LarkError(
            f"a {msg_type} message of {size} bytes (Lark takes {limit})",
            code=230025,
            malformed=True,
        )


def post_uuid(key: str | None) -> str:
    """The ``uuid`` of a post: the key's digest (the same notice, the same uuid), else fresh
    (a retry of this one call still lands once)."""
    if key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:UUID_CHARS]


class LarkSender:
    def __init__(self, calls: LarkCalls, *, queues: ChannelQueues | None = None) -> None:
        self.calls = calls
        self.queues = queues or ChannelQueues(rate=CHAT_RATE, burst=CHAT_BURST, name="lark")
        self._lock = threading.Lock()
        # a posted notice's key -> its message id (the newest KEYS_KEPT)
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._people: dict[str, str] = {}  # a person's chat with the bot -> their open_id

    def learn_direct(self, chat: str, user: str) -> None:
        """``chat`` is ``user``'s chat with the bot (as an event from it said): its messages
        share one queue, whether addressed by the chat or by the person."""
        with self._lock:
            self._people[chat] = user

    def _direct_of(self, channel: str) -> str | None:
        """The person ``channel`` is the chat with (addressed by them, or by the chat once an
        event from it was seen), or None for a group."""
        if ids.is_person(channel):
            return channel
        with self._lock:
            return self._people.get(channel)

    def _queue_of(self, channel: str) -> str:
        with self._lock:
            return self._people.get(channel, channel)

    @property
    def _im(self) -> Any:
        return self.calls.client.im.v1

    def post(
        self,
        channel: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        key: str | None = None,
        look_first: bool = False,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Post in ``channel`` (a chat, or a person's open_id: their chat with the bot), in
        ``thread_ts``'s thread if given; return the message id. ``broadcast`` and ``meta``
        have no counterpart in Lark (the root card shows what they would)."""
        msg_type, content = cards.content(text, blocks, direct=self._direct_of(channel))
        request_uuid = post_uuid(key)

        def send() -> str:
            if key is not None and look_first:
                found = self._remembered(key)
                if found is not None:
                    log.info("notice %s was already posted as %s", key, found)
                    return found
            data = self._send(channel, thread_ts, msg_type, content, request_uuid)
            message_id = str(getattr(data, "message_id", "") or "")
            if not message_id:
                raise LarkError(f"{channel}: Lark's answer had no message id")
            if key is not None:
                with self._lock:
                    self._keys[key] = message_id
                    while len(self._keys) > KEYS_KEPT:
                        self._keys.popitem(last=False)
            return message_id

        fits(msg_type, content)
        return self.queues.run(self._queue_of(channel), send)

    def _send(
        self, channel: str, thread_ts: str | None, msg_type: str, content: str, request_uuid: str
    ) -> Any:
        """One message: a reply in ``thread_ts``'s thread, else a new one in ``channel``."""
        if thread_ts is not None:
            reply = (
                ReplyMessageRequest.builder()
                .message_id(thread_ts)
                .request_body(
                    ReplyMessageRequestBody.builder()
                    .msg_type(msg_type)
                    .content(content)
                    .reply_in_thread(True)
                    .uuid(request_uuid)
                    .build()
                )
                .build()
            )
            return self.calls.call("im.message.reply", self._im.message.reply, reply)
        create = (
            CreateMessageRequest.builder()
            .receive_id_type("open_id" if ids.is_person(channel) else "chat_id")
            .request_body(
                CreateMessageRequestBody.builder()
                .receive_id(channel)
                .msg_type(msg_type)
                .content(content)
                .uuid(request_uuid)
                .build()
            )
            .build()
        )
        return self.calls.call("im.message.create", self._im.message.create, create)

    def _remembered(self, key: str) -> str | None:
        with self._lock:
            return self._keys.get(key)

    def find(self, channel: str, key: str, *, thread_ts: str | None = None) -> str | None:
        """The message posted with ``key``, after what is queued for ``channel``, as far as
        this process knows (a repeat beyond it is kept from showing twice by its uuid)."""
        return self.queues.run(self._queue_of(channel), lambda: self._remembered(key), paced=False)

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        content = cards.card_content(text, blocks, direct=self._direct_of(channel))
        fits("interactive", content)

        def send() -> None:
            request = (
                PatchMessageRequest.builder()
                .message_id(ts)
                .request_body(PatchMessageRequestBody.builder().content(content).build())
                .build()
            )
            self.calls.call("im.message.patch", self._im.message.patch, request)

        self.queues.run(self._queue_of(channel), send, paced=False)

    def ephemeral(
        self, channel: str, user: str, text: str, *, blocks: Blocks | None = None
    ) -> None:
        """For ``user`` alone: Lark shows nothing to one person in a group, so it goes to
        their chat with the bot."""
        self.post(user, text, blocks=blocks)

    def respond(self, response_url: str, text: str, *, blocks: Blocks | None = None) -> None:
        """Lark gives no response URLs; the Lark intake never hands one over."""
        raise LarkError("Lark has no response URLs", permanent=True)

    def upload(
        self, channel: str, *, filename: str, content: str, title: str, thread_ts: str | None
    ) -> None:
        """The title, then the file (uploaded, then sent as a file message), in the thread
        when given. Their uuids come from the file's name and content: the same log shared
        again within the hour (a retried request) lands once."""
        data = content.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        key = f"file:{channel}:{thread_ts}:{filename}:{digest}"

        def upload_request() -> Any:  # the SDK consumes its body: a new one each attempt
            return (
                CreateFileRequest.builder()
                .request_body(
                    CreateFileRequestBody.builder()
                    .file_type("stream")
                    .file_name(filename)
                    .file(io.BytesIO(data))
                    .build()
                )
                .build()
            )

        def send() -> None:
            uploaded = self.calls.call("im.file.create", self._im.file.create, upload_request)
            file_key = str(getattr(uploaded, "file_key", "") or "")
            if not file_key:
                raise LarkError(f"{channel}: Lark's upload answer had no file key")
            body = json.dumps({"file_key": file_key})
            self._send(channel, thread_ts, "file", body, post_uuid(key))

        self.post(channel, title, thread_ts=thread_ts, key="title:" + key)
        self.queues.run(self._queue_of(channel), send)

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        """Lark has no home tab: a person's islands are ``/island list mine`` there."""
        log.debug("no home page in Lark for %s", user)

    def direct(self, user: str) -> str:
        """A person's open_id is where their chat with the bot is addressed (and queued)."""
        return user

    def language(self, user: str) -> str | None:
        """Lark's events and contact API say nothing of a person's language: answers for
        them are in the deployment's."""
        return None

    def pace(self) -> Pace:
        return Pace(per_second=self.queues.rate, burst=self.queues.burst)
