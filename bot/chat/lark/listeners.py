"""The Lark adapter's input side: Lark's events (a message to the bot, a click on one of its
cards), turned into calls of the chat-neutral ``ChatFront``, whichever way they arrive (the
long connection or HTTP callbacks: both hand the SDK's dispatcher ``handler()``).

Lark has no slash commands. In a group the bot takes a message that mentions it
(``@islandbot start dev``) or begins with ``/island``; in its chat with one person, any
message (``start dev`` or ``/island start dev``). The rest is the same grammar, help and
refusals as Slack's ``/island``. Every event is answered at once (Lark waits 3 seconds): the
front accepts or refuses on the spot and the work runs after it. A request is keyed by Lark's
message id (a click by its event id), so an event Lark delivers again is acted on once.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import lark_oapi as lark
from lark_oapi.api.im.v1 import P2ImMessageReceiveV1
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)

from bot.chat.front import ChatFront
from bot.chat.lark.client import parse_json
from bot.chat.output import Reply
from bot.domain.records import Caller

log = logging.getLogger(__name__)

COMMAND = "/island"
_MENTION_KEY = re.compile(r"@_user_\d+")


def command_text(
    text: str, mentions: Sequence[tuple[str, str | None]], *, group: bool, bot: str | None
) -> str | None:
    """What a message asks of the bot (the ``/island`` command's text), or None when it is
    not for the bot. ``mentions``: (key, open_id) of each person the message mentions, in
    the text as its key (``@_user_1``); ``bot``: the bot's open_id (None while unknown: a
    group message that mentions someone is then taken for the bot, as only such reach it
    without the app's permission to read every group message)."""
    mentioned_bot = False
    for key, open_id in mentions:
        if open_id == bot or bot is None:
            mentioned_bot = True
            text = re.sub(re.escape(key) + r"(?!\d)", " ", text)  # @_user_1, not @_user_10
    text = _MENTION_KEY.sub(" ", text).strip()
    words = text.split(None, 1)
    if words and words[0].lower() == COMMAND:
        return words[1].strip() if len(words) > 1 else ""
    if group and not mentioned_bot:
        return None
    return text


class LarkListeners:
    def __init__(
        self,
        front: ChatFront,
        *,
        bot_id: Callable[[], str | None],
        name: Callable[[str], str] = str,
        direct: Callable[[str, str], None] = lambda _chat, _user: None,
    ) -> None:
        """``bot_id``: the bot's own open_id, when known (``BotIdentity.open_id``); ``name``:
        a person's name by their open_id (``LarkNames.name``); ``direct``: told each person's
        chat with the bot as it is seen (``LarkSender.learn_direct``)."""
        self.front = front
        self.bot_id = bot_id
        self.name = name
        self.direct = direct

    def handler(self, *, encrypt_key: str, verification_token: str) -> lark.EventDispatcherHandler:
        """The SDK's dispatcher for both intakes (the long connection ignores the keys)."""
        return (
            lark.EventDispatcherHandler.builder(encrypt_key, verification_token)
            .register_p2_im_message_receive_v1(self.on_message)
            .register_p2_card_action_trigger(self.on_card)
            .build()
        )

    def on_message(self, data: P2ImMessageReceiveV1) -> None:
        try:
            self._message(data)
        except Exception:  # a bug of ours: told here (the SDK's own log line is kept quiet)
            log.exception("a Lark message event failed")
            raise

    def on_card(self, data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        try:
            return self._card(data)
        except Exception:
            log.exception("a Lark card click failed")
            raise

    def _message(self, data: P2ImMessageReceiveV1) -> None:
        event = data.event
        message = getattr(event, "message", None)
        sender = getattr(event, "sender", None)
        user = str(getattr(getattr(sender, "sender_id", None), "open_id", "") or "")
        if message is None or not user or getattr(sender, "sender_type", "user") != "user":
            return
        group = message.chat_type != "p2p"
        if not group:
            self.direct(str(message.chat_id), user)
        if message.message_type != "text":
            log.info("a %s message from %s is not a command", message.message_type, user)
            return
        mentions = [
            (str(m.key), getattr(m.id, "open_id", None)) for m in message.mentions or () if m.key
        ]
        text = command_text(
            str(parse_json(message.content).get("text", "")),
            mentions,
            group=group,
            bot=self.bot_id(),
        )
        if text is None:
            return
        chat = str(message.chat_id)
        reply = Reply(user, chat)
        answer = self.front.command(
            Caller(user, self.name(user), chat),
            text,
            trigger=str(message.message_id),
            reply=reply,
        )
        if answer is not None:  # the answer is a message of its own: sent after this returns
            self._tell_later(reply, answer)

    def _card(self, data: P2CardActionTrigger) -> P2CardActionTriggerResponse:
        event = data.event
        user = str(getattr(getattr(event, "operator", None), "open_id", "") or "")
        value: Any = getattr(getattr(event, "action", None), "value", None) or {}
        context = getattr(event, "context", None)
        chat = getattr(context, "open_chat_id", None)
        header = getattr(data, "header", None)
        trigger = str(getattr(header, "event_id", "") or "")
        if not user or not trigger or not isinstance(value, dict):
            log.warning("a Lark card click without its clicker, event or value: ignored")
            return P2CardActionTriggerResponse({})
        # a card in the person's own chat with the bot is as personal as Slack's App Home: no
        # channel rule there, each island's permissions decide
        # (``dm`` only on a card sent to this person: forwarded elsewhere, it is not theirs)
        where = None if value.get("dm") == user else chat
        action_id = str(value.get("action_id", ""))
        queued = self.front.button(
            Caller(user, self.name(user), where),
            action_id,
            str(value.get("value", "")),
            trigger=trigger,
            reply=Reply(user, chat),
        )
        if not queued:
            log.warning("card button %s from %s not accepted", action_id, user)
        return P2CardActionTriggerResponse({})

    def _tell_later(self, reply: Reply, answer: str) -> None:
        if not self.front.pool.submit(functools.partial(self.front.work.tell, reply, answer)):
            log.warning("no room to answer %s now: %s", reply.user, answer[:80])
