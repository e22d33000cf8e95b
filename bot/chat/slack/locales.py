"""Which language each person reads, as Slack says: their locale (``zh-CN``, ``en-US``).

The whole workspace's locales are read with ``users.list`` (``include_locale``, a page of 200
people a call) when the bot starts and every hour after (``refresh``, a scheduled job on each
replica); a person not in the last list (who joined since) is looked up once with
``users.info``. An answer waits for that lookup ``LOOKUP_WAIT_S`` at most, wherever Slack is
slow (a lookup left running lands in the cache for the next answer); when it cannot be made at
once (the tier's calls for this minute are spent, Slack away, the app without ``users:read``),
the answer is in the deployment's language and the person is looked up again later. Slack's
limits: ``users.list`` is Tier 2 (20 a minute), ``users.info`` Tier 4 (100 a minute).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chat.pacing import TierPacer
from bot.words.catalogue import match

log = logging.getLogger(__name__)

PAGE = 200  # people per users.list call
LOOK_AGAIN_S = 600.0  # a person whose lookup failed is not looked up again before this
LOOKUP_TIMEOUT_S = 2  # one users.info call (each of its socket operations)
LOOKUP_WAIT_S = 0.5  # the longest an answer waits for a newcomer's lookup
# Slack's answers that no later call can change (the app lacks the scope, its token is gone):
# lookups stop until a refresh of the whole workspace works again
REFUSED_FOR_GOOD = frozenset(
    {
        "missing_scope",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "account_inactive",
        "not_allowed_token_type",
        "ekm_access_denied",
    }
)


class SlackLocales:
    def __init__(
        self,
        client: WebClient,
        tiers: TierPacer,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        # the one-person lookup never waits out a retry (an answer may be behind it)
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
        self._running: dict[str, concurrent.futures.Future[str | None]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="slack-locale")
        self._refused: str | None = None  # why Slack refuses lookups for good (warned once)
        self._failing: str | None = None  # why the last refresh failed (warned once)

    def language(self, user: str) -> str | None:
        """The language the bot speaks that fits ``user``'s locale; None when Slack does not
        say (or not now), or it is one the bot does not speak. Never raises."""
        with self._lock:
            if user in self._locales:
                return match(self._locales[user])
            missed = self._missed.get(user)
            if (
                not user
                or self._refused
                or (missed is not None and self.clock() - missed < LOOK_AGAIN_S)
            ):
                return None
            running = self._running.get(user)
            if running is None:
                if not self.tiers.try_take("users.info"):
                    return None  # the tier's calls for now are spent: not now
                running = self._pool.submit(self._look_up, user)
                self._running[user] = running
        try:
            return match(running.result(timeout=LOOKUP_WAIT_S))
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            return None  # Slack is slow: this answer goes on; the lookup lands for the next

    def _look_up(self, user: str) -> str | None:
        try:
            response = self.lookup.users_info(user=user, include_locale=True)
            locale = _locale(response.get("user"))
        except Exception as exc:  # a language is a hint: any failure is "not now"
            why = _why(exc)
            with self._lock:
                self._missed[user] = self.clock()
                self._running.pop(user, None)
                warn = why in REFUSED_FOR_GOOD and self._refused != why
                if why in REFUSED_FOR_GOOD:
                    self._refused = why
            if warn:
                log.warning(
                    "Slack refuses to say people's languages (%s): answers are in "
                    "the deployment's language until it does",
                    why,
                )
            else:
                log.info("the language of %s is not known now: %s", user, why)
            return None
        with self._lock:
            self._locales[user] = locale
            self._missed.pop(user, None)
            self._running.pop(user, None)
        return locale

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
        except Exception as exc:  # the list is kept as it was; told once
            why = _why(exc)
            if why != self._failing:
                log.warning("could not read the people's languages from Slack: %s", why)
            self._failing = why
            return
        with self._lock:
            self._locales = found
            self._missed.clear()
            self._refused = None
        self._failing = None
        log.info("languages of %d people read from Slack", len(found))


def _locale(user: Any) -> str | None:
    locale = user.get("locale") if isinstance(user, dict) else None
    return str(locale) if locale else None


def _why(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc.response.status_code)
    return f"{type(exc).__name__}: {exc}"
