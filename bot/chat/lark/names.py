"""People's names, as Lark knows them (``GET /open-apis/contact/v3/users/:open_id``, the scope
``contact:user.base:readonly``): an island's owner is shown by name in ``/island list`` and on
the board, as in Slack, not as ``ou_7d8a…``.

Lark's events carry the sender's ids but not their name, so each person is looked up once and
kept. The event waits for that lookup ``LOOKUP_WAIT_S`` at most (Lark waits 3 s for the
answer, and the request must be recorded first); a lookup left running lands in the cache for
the person's next request, and until then their name is their open_id. A failed lookup is not
tried again for ``LOOK_AGAIN_S``; when Lark refuses the app the scope (or the person is outside
its visibility), one warning says so and lookups wait ``REFUSED_PAUSE_S``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

from lark_oapi.api.contact.v3 import GetUserRequest

from bot.chat.lark.client import LarkCalls, LarkError

log = logging.getLogger(__name__)

LOOKUP_WAIT_S = 0.5  # the longest an event waits for a newcomer's name
LOOK_AGAIN_S = 600.0  # a person whose lookup failed is not looked up again before this
REFUSED_PAUSE_S = 3600.0  # no lookups for this long after Lark refused the app the scope
# Lark's answers that say the app may not read people (no scope, outside its visibility)
REFUSED = frozenset({99991672, 99991679, 41050, 40004})


class LarkNames:
    def __init__(self, calls: LarkCalls, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.calls = calls
        self.clock = clock
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._failed: dict[str, float] = {}  # open_id -> when its lookup failed
        self._pending: dict[str, concurrent.futures.Future[None]] = {}
        self._refused_until = 0.0
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="lark-names")

    def name(self, open_id: str) -> str:
        """``open_id``'s name, looked up if need be (waiting ``LOOKUP_WAIT_S`` at most); the
        open_id itself while it is not known."""
        with self._lock:
            known = self._names.get(open_id)
            if known is not None:
                return known
            now = self.clock()
            if now < self._refused_until or now - self._failed.get(open_id, -LOOK_AGAIN_S) < (
                LOOK_AGAIN_S
            ):
                return open_id
            pending = self._pending.get(open_id)
            if pending is None:
                pending = self._pending[open_id] = self._pool.submit(self._look_up, open_id)
        try:
            pending.result(timeout=LOOKUP_WAIT_S)
        except concurrent.futures.TimeoutError:
            log.debug("the name of %s is still being looked up", open_id)
        except Exception:  # a lookup's bug must not fail the person's request
            log.exception("looking up the name of %s failed", open_id)
        with self._lock:
            return self._names.get(open_id, open_id)

    def known(self, open_id: str) -> str | None:
        """``open_id``'s name if it is known already (never waits, never looks up)."""
        with self._lock:
            return self._names.get(open_id)

    def _look_up(self, open_id: str) -> None:
        request = GetUserRequest.builder().user_id(open_id).user_id_type("open_id").build()
        name = ""
        try:
            data = self.calls.call(
                "contact.user.get", self.calls.client.contact.v3.user.get, request
            )
            name = str(getattr(getattr(data, "user", None), "name", "") or "")
        except LarkError as exc:
            self._failure(open_id, exc)
        finally:  # the name kept and the lookup ended together: no second lookup between
            with self._lock:
                if name:
                    self._names[open_id] = name
                elif open_id not in self._failed:
                    self._failed[open_id] = self.clock()
                self._pending.pop(open_id, None)

    def _failure(self, open_id: str, exc: LarkError) -> None:
        with self._lock:
            self._failed[open_id] = self.clock()
            refused = exc.code in REFUSED
            first = refused and self._refused_until <= self.clock()
            if refused:
                self._refused_until = self.clock() + REFUSED_PAUSE_S
        if first:
            log.warning(
                "Lark will not tell people's names (%s): grant the app contact:user.base:"
                "readonly to show names rather than open_ids; trying again in an hour",
                exc,
            )
        elif not refused:
            log.info("the name of %s is unknown for now: %s", open_id, exc)
