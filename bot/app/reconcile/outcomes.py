"""What came of each attempt to deliver a notice, recorded in the outbox: sent (posted, shown,
superseded), refused for good, failed on a bug of ours, or failed for now (backed off, given up
after ``max_age``), each logged and counted once.

An outcome the database cannot take when it comes (away, or its writers in conflict past
retrying) is kept and recorded first thing in a later round (``record_owed``): the notice stays
claimed by this live process meanwhile, so it is neither tried again as if it had not gone out
nor held for its claim's whole length once the database is back. A process that dies with
outcomes kept loses its claims with its heartbeat: the notices go out again, looked up first.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from bot.app.notices import NoticeRefused
from bot.domain.backoff import backoff
from bot.domain.errors import DatabaseError, IslandbotError, log_failure
from bot.domain.notice_routes import DigestPolicy
from bot.domain.records import PendingNotice
from bot.infra import metrics
from bot.infra.storage.outbox import Outbox

log = logging.getLogger("bot.app.reconcile.deliver")  # one logger for the delivery path
T = TypeVar("T")


@dataclass(frozen=True)
class DeliveryPolicy:
    batch: int = 1000  # notices read per round (a burst of 200 starts writes about 600)
    # a dead holder's notices go back with its heartbeat; a live one's after this, longer
    # than its slowest attempt may take (tests/test_budgets.py)
    claim_ttl: timedelta = timedelta(minutes=10)
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_cap: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=1)  # then a notice is given up
    threads: int = 4  # channels delivered to at once
    owner_threads: int = 16  # notices handed over at once where no channel paces them
    # (``threads`` more run the busy channels' paced parts: digests, their own threads)
    supersede: bool = True  # progress notices overtaken before they went out are not sent
    digest: DigestPolicy | None = field(default_factory=DigestPolicy)  # None: no digests


class Outcomes:
    """The outcomes of one deliverer (``by``: the name its claims carry)."""

    def __init__(self, outbox: Outbox, *, by: str, policy: DeliveryPolicy) -> None:
        self.outbox = outbox
        self.name = by
        self.policy = policy
        self._lock = threading.Lock()
        self._owed: list[Callable[[], object]] = []  # outcomes the database could not take
        self._random = random.Random()  # noqa: S311 - jitter, not security

    def keep(self, write: Callable[[], T], otherwise: T) -> T:
        """Record an attempt's outcome (sent, failed, refused; ``write`` also logs and counts
        what it found). When the database cannot take it now (away, or its writers in
        conflict past retrying), it is kept for later (``record_owed``) and ``otherwise``
        returned: the notice stays claimed by this live process meanwhile, so it is neither
        tried again as if it had not gone out nor held for the claim's whole length once the
        database is back. (The database's absence is told where it is noticed: ``db_health``.)
        Any other failure is a bug: logged with its traceback and dropped (the claim then ends
        with its time, or with this process)."""
        try:
            return write()
        except DatabaseError:
            with self._lock:
                self._owed.append(write)
            return otherwise
        except Exception as exc:  # a bug: the claim ends with its time or this process
            log_failure(log, "an attempt's outcome could not be recorded", exc)
            return otherwise

    def record_owed(self) -> None:
        """Record the outcomes kept while the database could not take them, before anything
        else (also while this process no longer leads: they are facts of what it posted).
        Raises when it still cannot; what is not recorded yet stays kept."""
        with self._lock:
            owed, self._owed = self._owed, []
        for done, write in enumerate(owed):
            try:
                write()
            except DatabaseError:
                with self._lock:
                    self._owed[:0] = owed[done:]
                raise
            except Exception as exc:  # a bug: told, and not tried again every round
                log_failure(log, "a kept outcome could not be recorded", exc)
            except BaseException:  # interrupted: what is not recorded yet stays kept
                with self._lock:
                    self._owed[:0] = owed[done:]
                raise

    def sent(self, notice_ids: list[int], delivered_as: str) -> int:
        """Record notices as delivered (kept for later when the database cannot take it)."""

        def write() -> int:
            recorded = self.outbox.sent_many(notice_ids, by=self.name, delivered_as=delivered_as)
            if recorded < len(notice_ids):
                log.warning(
                    "%d notices: delivered, but their claim had expired",
                    len(notice_ids) - recorded,
                )
            return recorded

        self.keep(write, len(notice_ids))
        return len(notice_ids)

    def failed(self, notice: PendingNotice, exc: Exception) -> bool:
        """An attempt failed. A notice that can never be delivered is recorded so at once and
        True returned: the island's later notices go on. That is one the chat refuses for good
        (``NoticeRefused``), or one our own code failed on (a bug: not an ``IslandbotError``,
        nor an ``OSError`` of a connection; logged with its traceback and counted, so that it
        is seen, never mistaken for a chat that is down). Anything else (the chat or the
        database failing for now) backs off, and the island's later notices wait behind it
        (False)."""
        if isinstance(exc, NoticeRefused):
            metrics.NOTICES_REFUSED.labels(reason=exc.reason, outcome="failed").inc()
            log.warning(
                "notice %d for island %d refused by the chat for good, recorded as refused: %s",
                notice.id,
                notice.island_id,
                exc,
            )
            return self.keep(
                functools.partial(
                    self.outbox.refused, notice.id, by=self.name, outcome="refused", error=str(exc)
                ),
                False,
            )
        if not isinstance(exc, IslandbotError | OSError):
            metrics.NOTICE_ERRORS.labels(error=type(exc).__name__).inc()
            log.error(
                "notice %d for island %d failed on an error of ours, recorded as failed",
                notice.id,
                notice.island_id,
                exc_info=exc,
            )
            error = f"{type(exc).__name__}: {exc}"
            return self.keep(
                functools.partial(
                    self.outbox.refused, notice.id, by=self.name, outcome="failed", error=error
                ),
                False,
            )
        retry_after = getattr(exc, "retry_after", None)
        wait = (
            timedelta(seconds=float(retry_after))
            if isinstance(retry_after, int | float) and retry_after > 0
            else backoff(
                notice.attempts + 1,
                base=self.policy.backoff_base,
                cap=self.policy.backoff_cap,
                jitter=self._random.random(),
            )
        )

        def write() -> bool:
            gave_up = self.outbox.failed(
                notice.id, by=self.name, error=str(exc), wait=wait, max_age=self.policy.max_age
            )
            if gave_up:
                metrics.NOTICES_GIVEN_UP.inc()
                log.error(
                    "notice %d for island %d given up after %d attempts: %s",
                    notice.id,
                    notice.island_id,
                    notice.attempts + 1,
                    exc,
                )
            elif not isinstance(exc, DatabaseError):  # told once where it is noticed
                log.warning(
                    "notice %d for island %d not delivered (attempt %d, next in %.0fs): %s",
                    notice.id,
                    notice.island_id,
                    notice.attempts + 1,
                    wait.total_seconds(),
                    exc,
                )
            return False

        return self.keep(write, False)
