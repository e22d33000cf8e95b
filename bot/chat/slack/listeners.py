"""The Slack adapter's input side: bolt listeners for ``/island``, the island buttons and App
Home, each turning Slack's payload into a call of the chat-neutral ``ChatFront``.

Every listener answers Slack at once: the front parses and refuses or accepts in the ``ack()``
itself (Slack's 3-second limit), and the work runs after it in the front's bounded pool.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot.chat.front import ChatFront
from bot.chat.output import Reply
from bot.domain.buttons import ButtonAction
from bot.domain.records import Caller

log = logging.getLogger(__name__)
__all__ = ["SlackListeners", "SocketModeHandler", "socket_mode_handler"]

COMMAND = "/island"


class _ClientTokenFilter(logging.Filter):
    """slack_bolt warns at every start that ``SLACK_BOT_TOKEN`` is unused because a client was
    given: the client is built from that very token, so the warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.App").addFilter(_ClientTokenFilter())


def socket_mode_handler(app: App, app_token: str) -> SocketModeHandler:
    """Socket Mode: the bot connects out to Slack (no public URL); ``connect()`` to start."""
    return SocketModeHandler(app, app_token)


class SlackListeners:
    def __init__(self, front: ChatFront) -> None:
        self.front = front

    def build_app(
        self, *, signing_secret: str | None, client: WebClient, verify_token: bool = True
    ) -> App:
        """``signing_secret`` None: Socket Mode only (Slack signs nothing there)."""
        app = App(
            client=client,
            signing_secret=signing_secret,
            request_verification_enabled=signing_secret is not None,
            token_verification_enabled=verify_token,
            process_before_response=True,  # the listeners only ack and queue: answer after
        )
        app.command(COMMAND)(self.on_command)
        for action in ButtonAction:
            app.action(action.value)(self.on_button)
        app.event("app_home_opened")(self.on_home_opened)
        return app

    def on_command(self, ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        user = str(command.get("user_id", ""))
        channel = command.get("channel_id")
        caller = Caller(user, str(command.get("user_name") or user), channel)
        answer = self.front.command(
            caller,
            str(command.get("text") or ""),
            trigger=str(command.get("trigger_id") or command.get("response_url")),
            reply=Reply(user, channel, command.get("response_url")),
        )
        if answer is None:
            ack()
        else:
            ack(response_type="ephemeral", text=answer)

    def on_button(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user_body = body.get("user") or {}
        user = str(user_body.get("id", ""))
        channel = (body.get("channel") or {}).get("id")
        action_id = str(action.get("action_id"))
        # a button in the user's direct conversation with the bot (D...) is as personal as
        # one on the App Home: no channel rule, each island's permissions decide
        where = None if str(channel or "").startswith("D") else channel
        queued = self.front.button(
            Caller(user, str(user_body.get("username") or user), where),
            action_id,
            str(action.get("value", "")),
            trigger=str(action.get("action_ts")),
            reply=Reply(user, channel, body.get("response_url")),
            in_home=(body.get("container") or {}).get("type") == "view",
        )
        if not queued:
            log.warning("button %s from %s not accepted", action_id, user)

    def on_home_opened(self, ack: Ack, body: dict[str, Any], event: dict[str, Any]) -> None:
        ack()
        if event.get("tab", "home") != "home":
            return
        self.front.home_opened(str(event.get("user", "")), trigger=str(body.get("event_id")))
