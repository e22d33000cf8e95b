"""The bot's own open_id (``GET /open-apis/bot/v3/info``): a group message is for the bot
when it mentions that id. Read by a job when the bot starts and, while unknown, every
``lark_setup.IDENTITY_EVERY_S``; an event never waits for it (while it is unknown, a group
message that mentions someone is taken for the bot's, as only those reach a bot without the
permission to read every group message)."""

from __future__ import annotations

import logging
import threading

import lark_oapi as lark

from bot.chat.lark.client import LarkCalls, parse_json
from bot.chat.output import ChatError
from bot.domain.errors import log_failure

log = logging.getLogger(__name__)


class BotIdentity:
    def __init__(self, calls: LarkCalls) -> None:
        self.calls = calls
        self._lock = threading.Lock()
        self._open_id: str | None = None

    def open_id(self) -> str | None:
        """The bot's open_id, None while unknown (never waits: the read is a job's)."""
        return self._open_id

    def ensure(self) -> None:
        """Read the bot's open_id if it is still unknown (a job)."""
        if self._open_id is None:
            self.read()

    def read(self) -> None:
        """Read the bot's open_id (a job at start); a failure is told once and tried later."""
        if not self._lock.acquire(blocking=False):
            return  # another thread is reading it
        try:
            request = (
                lark.BaseRequest.builder()
                .http_method(lark.HttpMethod.GET)
                .uri("/open-apis/bot/v3/info")
                .token_types({lark.AccessTokenType.TENANT})
                .build()
            )
            answer = self.calls.call("bot.info", self.calls.client.request, request)
            raw = getattr(answer, "raw", None)
            content = getattr(raw, "content", b"") or b""
            bot = parse_json(content.decode("utf-8", "replace")).get("bot") or {}
            found = bot.get("open_id") if isinstance(bot, dict) else None
            if found:
                self._open_id = str(found)
                log.info("the Lark bot is %s", self._open_id)
        except ChatError as exc:
            log_failure(log, "the Lark bot's own id is unknown for now", exc)
        finally:
            self._lock.release()
