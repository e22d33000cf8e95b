"""Delivering the outbox's notices to the notifier (the chat): each island's in order, one at a
time, channels in parallel (a chat paces each channel, so one busy channel must not hold up
the others).

Each notice is claimed before it is handed over (``Outbox.claim``, fenced by the leader's
lease) and recorded as sent right after: a crash loses at most the one notice in flight, and
that one goes out again with ``retry`` set, so an adapter that can look up what it posted
(Slack message metadata) delivers it once. A failed attempt backs off, exponentially with
jitter (or as long as the chat's ``Retry-After`` says); the island's later notices wait behind
it. A notice that could not be delivered for ``max_age`` is given up: logged and counted.
An island's first notice is its announcement (its root message); the thread it was posted as
carries the island's later notices.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.app.notices import Announcement, Notifier
from bot.domain.backoff import backoff
from bot.domain.island_clock import island_time
from bot.domain.lifecycle_rules import Notice
from bot.domain.port_blocks import named_ports
from bot.domain.records import PendingNotice
from bot.domain.time_source import Clock
from bot.infra import metrics
from bot.infra.storage.outbox import Fence, Outbox
from bot.words import notices

log = logging.getLogger(__name__)
BROADCAST = frozenset({Notice.READY, Notice.FAILED, Notice.CLOCK_SHIFTED})


@dataclass(frozen=True)
class DeliveryPolicy:
    batch: int = 200  # notices read per round
    claim_ttl: timedelta = timedelta(seconds=20)  # longer than one attempt takes; a dead
    # holder's notices are taken over after it (the lease TTL has passed by then as well)
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_cap: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=1)  # then a notice is given up
    threads: int = 4  # channels delivered to at once


class Deliverer:
    def __init__(
        self,
        *,
        outbox: Outbox,
        notifier: Notifier,
        port_names: Sequence[str],
        clock: Clock,
        policy: DeliveryPolicy,
        fence: Fence | None = None,
    ) -> None:
        self.outbox = outbox
        self.notifier = notifier
        self.port_names = tuple(port_names)
        self.clock = clock
        self.policy = policy
        self.fence = fence
        self.name = f"deliverer/{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._random = random.Random()  # noqa: S311 - jitter, not security

    def deliver(self) -> int:
        """One round: every due notice, each island's in order. Returns how many went out."""
        now, pending = self.outbox.pending(limit=self.policy.batch)
        by_island: dict[int, list[PendingNotice]] = {}
        for notice in pending:
            by_island.setdefault(notice.island_id, []).append(notice)
        by_channel: dict[str | None, list[list[PendingNotice]]] = {}
        for island_notices in by_island.values():
            by_channel.setdefault(island_notices[0].chat_channel, []).append(island_notices)
        if len(by_channel) <= 1:
            return sum(self._channel(islands, now) for islands in by_channel.values())
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.policy.threads, thread_name_prefix="notices")
            pool = self._pool
        return sum(pool.map(lambda islands: self._channel(islands, now), by_channel.values()))

    def _channel(self, islands: list[list[PendingNotice]], now: datetime) -> int:
        return sum(self._island(island_notices, now) for island_notices in islands)

    def _island(self, island_notices: list[PendingNotice], now: datetime) -> int:
        """The island's notices in order, until one is not due, held elsewhere, or fails."""
        sent = 0
        thread: str | None = None
        for pending in island_notices:
            notice = pending if thread is None else replace(pending, chat_thread=thread)
            if notice.next_attempt_at is not None and notice.next_attempt_at > now:
                break  # backing off: its successors wait
            if notice.claim_until is not None and notice.claim_until > now:
                break  # another delivery holds it
            if not self.outbox.claim(
                notice.id, by=self.name, ttl=self.policy.claim_ttl, fence=self.fence
            ):
                break
            try:
                posted_as = self.notifier.announce(self.announcement(notice))
            except Exception as exc:  # the chat side failed: back off, keep the order
                self._failed(notice, exc)
                break
            if not self.outbox.sent(notice.id, by=self.name):
                log.warning("notice %d: delivered, but its claim had expired", notice.id)
            sent += 1
            if notice.kind == Notice.ANNOUNCE and posted_as is not None:
                thread = posted_as
        return sent

    def _failed(self, notice: PendingNotice, exc: Exception) -> None:
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
        else:
            log.warning(
                "notice %d for island %d not delivered (attempt %d, next in %.0fs): %s",
                notice.id,
                notice.island_id,
                notice.attempts + 1,
                wait.total_seconds(),
                exc,
            )

    def announcement(self, n: PendingNotice) -> Announcement:
        clock = None
        if n.clock_offset_s:
            clock = island_time(n.clock_offset_s, self.clock()).strftime("%Y-%m-%d %H:%M:%S")
        text = notices.notice_text(
            n.kind,
            n.detail,
            island_id=n.island_id,
            owner_id=n.owner_id,
            branch=n.branch,
            ports=named_ports(self.port_names, n.first_port),
            clock=clock,
        )
        return Announcement(
            key=f"outbox-{n.id}",
            island_id=n.island_id,
            kind=n.kind.value,
            text=text,
            owner_id=n.owner_id,
            channel=n.chat_channel,
            thread_ts=n.chat_thread,
            broadcast=n.kind in BROADCAST,
            status_line=notices.status_line(n.island_id, n.state, n.branch),
            retry=n.attempts > 0,
            detail=dict(n.detail),
        )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
