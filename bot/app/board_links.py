"""Links to the team board: each person asks in chat and gets a link of their own, signed with
the board's secret and good until it expires (``bot.domain.board_pass``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from bot.domain.board_pass import BoardPass, check_secret, read_pass
from bot.domain.records import Caller
from bot.domain.time_source import Clock, utcnow

LOGIN_PATH = "/board/login"


@dataclass(frozen=True)
class BoardLink:
    url: str
    expires_at: datetime


class BoardLinks:
    def __init__(
        self,
        *,
        secret: bytes,
        base_url: str,
        ttl: timedelta = timedelta(hours=12),
        clock: Clock = utcnow,
    ) -> None:
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl
        self.clock = clock
        check_secret(secret)

    def for_caller(self, caller: Caller) -> BoardLink:
        """A link for ``caller`` alone: it opens the board as them until it expires."""
        expires = self.clock().replace(microsecond=0) + self.ttl
        token = BoardPass(caller.user_id, caller.name, expires).sign(self._secret)
        return BoardLink(f"{self.base_url}{LOGIN_PATH}?pass={quote(token, safe='')}", expires)

    def read(self, token: str) -> BoardPass:
        """Whose pass ``token`` is (``BadPass``, ``ExpiredPass`` when it is not good now)."""
        return read_pass(token, self._secret, now=self.clock())
