"""Delivering the outbox's notices to the notifier (the chat): each island's in order, channels
in parallel (a chat paces each channel, so one busy channel must not hold up the others)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bot.app.notices import Announcement, Notifier
from bot.domain.island_clock import island_time
from bot.domain.lifecycle_rules import Notice
from bot.domain.port_blocks import named_ports
from bot.domain.records import PendingNotice
from bot.domain.time_source import Clock
from bot.infra.storage.outbox import Outbox
from bot.words import notices

log = logging.getLogger(__name__)
BROADCAST = frozenset({Notice.READY, Notice.FAILED, Notice.CLOCK_SHIFTED})


class Deliverer:
    def __init__(
        self,
        *,
        outbox: Outbox,
        notifier: Notifier,
        port_names: Sequence[str],
        clock: Clock,
        batch: int,
        attempts: int,
        thread_wait: timedelta,
        threads: int,
    ) -> None:
        self.outbox = outbox
        self.notifier = notifier
        self.port_names = tuple(port_names)
        self.clock = clock
        self.batch = batch
        self.attempts = attempts
        self.thread_wait = thread_wait
        self.threads = threads
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def deliver(self) -> int:
        """Send undelivered notices; returns how many were delivered.

        A notice is claimed (``attempts`` + 1) before it is handed over and marked sent after:
        a notice whose earlier attempt may have reached the chat goes out with ``retry`` set,
        so an adapter that can look up what it posted delivers it once. Notices of an island
        started from a chat wait (up to ``thread_wait``) for its root message to be recorded,
        so they land in its thread."""
        pending = self.outbox.pending(
            limit=self.batch, max_attempts=self.attempts, thread_wait=self.thread_wait
        )
        groups: dict[str | None, list[PendingNotice]] = {}
        for notice in pending:
            groups.setdefault(notice.chat_channel, []).append(notice)
        if len(groups) <= 1:
            return sum(self._in_order(group) for group in groups.values())
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="notices")
            pool = self._pool
        return sum(pool.map(self._in_order, groups.values()))

    def _in_order(self, notices: list[PendingNotice]) -> int:
        """Claim the notices in one write, announce them in order, record the sent ones in one
        more. A notice announced but not yet recorded when the process dies is announced again
        with ``retry`` set, which lets the chat adapter find it instead of posting it twice."""
        self.outbox.claim([n.id for n in notices])
        sent: list[int] = []
        untried: list[int] = []
        blocked: set[int] = set()  # keep each island's notices in order
        for notice in notices:
            if notice.island_id in blocked:
                untried.append(notice.id)
                continue
            try:
                self.notifier.announce(self.announcement(notice))
            except Exception as exc:  # the chat side failed: keep it for the next round
                blocked.add(notice.island_id)
                self.outbox.failed(notice.id, str(exc))
                log.warning(
                    "notice %d for island %d not delivered: %s", notice.id, notice.island_id, exc
                )
                continue
            sent.append(notice.id)
        self.outbox.sent(sent)
        self.outbox.unclaim(untried)  # never tried: not an attempt
        return len(sent)

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
        )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
