"""Which language each person reads, as Slack says: their locale (``zh-CN``, ``en-US``).

The whole workspace's locales are read with ``users.list`` (``include_locale``, a page of 200
people a call) when the bot starts and every hour after (``refresh``, a scheduled job); a
person not in the last list (who joined since) is looked up once with ``users.info``. An
answer never waits for Slack to tell: when the lookup cannot be made at once (the tier's calls
for this minute are spent, Slack is away), the answer is in the deployment's language and
the person is looked up again later. Slack's limits: ``users.list`` is Tier 2 (20 a minute),
``users.info`` Tier 4 (100 a minute); both need the ``users:read`` scope.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.chat.slack.pacing import TierPacer
from bot.words.catalogue import match

log = logging.getLogger(__name__)

PAGE = 200  # people per users.list call
LOOK_AGAIN_S = 600.0  # a person whose lookup failed is not looked up again before this
LOOKUP_TIMEOUT_S = 1  # a person's lookup, on the path of an answer Slack wants within 3 s


class SlackLocales:
    def __init__(
        self,
        client: WebClient,
        tiers: TierPacer,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        # the one-person lookup never waits out a retry (the answer is behind it): a failure
        # is the deployment's language now, and another try later
        self.lookup = WebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=LOOKUP_TIMEOUT_S,
            retry_handlers=[],
        )
        self.tiers = tiers
        self.clock = clock
        self._lock = threading.Lock()
        self._locales: dict[str, str | None] = {}  # user id -> their Slack locale (None: none)
        self._missed: dict[str, float] = {}  # user id -> when their lookup failed
        self._failing: str | None = None  # why the last refresh failed (warned once)

    def language(self, user: str) -> str | None:
        """The language the bot speaks that fits ``user``'s locale; None when Slack does not
        say (or not now), or it is one the bot does not speak."""
        with self._lock:
            if user in self._locales:
                return match(self._locales[user])
            missed = self._missed.get(user)
            if missed is not None and self.clock() - missed < LOOK_AGAIN_S:
                return None
        if not user or not self.tiers.try_take("users.info"):
            return None  # never wait on the answer's path: in the deployment's language
        try:
            response = self.lookup.users_info(user=user, include_locale=True)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.info("the locale of %s is not known now: %s", user, _why(exc))
            with self._lock:
                self._missed[user] = self.clock()
            return None
        locale = _locale(response.get("user"))
        with self._lock:
            self._locales[user] = locale
            self._missed.pop(user, None)
        return match(locale)

    def refresh(self) -> None:
        """Read every person's locale (``users.list``, paged); kept as it was when Slack
        refuses, with one warning until it answers again."""
        found: dict[str, str | None] = {}
        cursor: str | None = None
        try:
            while True:
                self.tiers.wait("users.list")
                response = self.client.users_list(
                    include_locale=True, limit=PAGE, **({"cursor": cursor} if cursor else {})
                )
                for member in response.get("members") or []:
                    if isinstance(member, dict) and member.get("id"):
                        found[str(member["id"])] = _locale(member)
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if cursor is None:
                    break
        except (SlackApiError, SlackClientError, OSError) as exc:
            why = _why(exc)
            if why != self._failing:
                log.warning("could not read the people's languages from Slack: %s", why)
            self._failing = why
            return
        with self._lock:
            self._locales = found
            self._missed.clear()
        self._failing = None
        log.info("languages of %d people read from Slack", len(found))


def _locale(user: Any) -> str | None:
    locale = user.get("locale") if isinstance(user, dict) else None
    return str(locale) if locale else None


def _why(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc.response.status_code)
    return f"{type(exc).__name__}: {exc}"
