"""Lark (Feishu) as a chat, set up from the settings: its sender (the ``ChatOutput``, built
before the bot), then its intake once the front exists: the HTTP callback route when a
verification token is set, else the long connection (no public URL needed)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.chat.front import ChatFront
from bot.chat.lark.callback_route import events_route
from bot.chat.lark.client import HTTP_TIMEOUT_S, LarkCalls, build_client
from bot.chat.lark.identity import BotIdentity
from bot.chat.lark.listeners import LarkListeners
from bot.chat.lark.long_connection import LongConnection
from bot.chat.lark.names import LarkNames
from bot.chat.lark.sender import CHAT_BURST, CHAT_RATE, LarkSender
from bot.chat.pacing import ChannelQueues
from bot.http.server import WebServer
from bot.run.loop import LifecycleService
from bot.run.settings import ConfigError, Settings

log = logging.getLogger(__name__)

IDENTITY_EVERY_S = 30.0  # the bot's own open_id, read again while unknown
REVIVE_EVERY_S = 30.0  # a long connection the SDK gave up on is started again this often


@dataclass
class LarkChat:
    sender: LarkSender
    identity: BotIdentity
    names: LarkNames
    connection: LongConnection | None = None


def lark_sender(
    settings: Settings,
    *,
    pace: tuple[float, float] | None = None,
    timeout_s: float = HTTP_TIMEOUT_S,
) -> LarkChat:
    """The Lark ``ChatOutput`` (nothing is called before the bot starts); ``pace``: posts a
    second to one chat and their burst, when not Lark's own (``CHAT_RATE``, ``CHAT_BURST``)."""
    assert settings.lark_app_id is not None and settings.lark_app_secret is not None
    client = build_client(
        settings.lark_app_id,
        settings.lark_app_secret.reveal(),
        origin=settings.lark_origin,
        timeout_s=timeout_s,
    )
    calls = LarkCalls(client, app_id=settings.lark_app_id)
    rate, burst = pace or (CHAT_RATE, CHAT_BURST)
    sender = LarkSender(calls, queues=ChannelQueues(rate=rate, burst=burst, name="lark"))
    return LarkChat(sender, BotIdentity(calls), LarkNames(calls))


def serve_lark(
    chat: LarkChat,
    front: ChatFront,
    settings: Settings,
    *,
    service: LifecycleService,
    server: WebServer | None,
) -> None:
    """Lark's events to the front: over HTTP when a verification token is set (the route on
    the bot's server), else over the long connection (started with the bot)."""
    assert settings.lark_app_id is not None and settings.lark_app_secret is not None
    service.add_job(
        chat.identity.ensure,
        "lark-identity",
        seconds=IDENTITY_EVERY_S,
        leader_only=False,
        at_once=True,
    )
    listeners = LarkListeners(
        front,
        bot_id=chat.identity.open_id,
        name=chat.names.name,
        direct=chat.sender.learn_direct,
    )
    token, key = settings.lark_verification_token, settings.lark_encrypt_key
    handler = listeners.handler(
        encrypt_key=key.reveal() if key else "",
        verification_token=token.reveal() if token else "",
    )
    if token is not None and key is None:
        log.warning(
            "Lark's HTTP events are checked by their verification token alone: anyone who has "
            "it can act as anyone; set the app's Encrypt Key and LARK_ENCRYPT_KEY (events are "
            "then signed and kept fresh)"
        )
    if token is not None:
        if server is None:
            raise ConfigError(["LARK_VERIFICATION_TOKEN: HTTP events need the HTTP server"])
        server.add_routes([events_route(handler, encrypt_key=key.reveal() if key else None)])
    else:
        connection = chat.connection = LongConnection(
            app_id=settings.lark_app_id,
            app_secret=settings.lark_app_secret.reveal(),
            handler=handler,
            domain=settings.lark_origin,
        )
        # the SDK stops reconnecting for good on some answers of Lark's (busy, refused)
        service.add_job(
            connection.revive,
            "lark-connection",
            seconds=REVIVE_EVERY_S,
            leader_only=False,
        )
