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

Spending the chat's limits where they matter (``bot.domain.notice_routes``): a progress
notice overtaken by a newer one of its island is recorded as superseded, not sent; islands
announced at once in one channel share a digest (with a ``GroupNotifier``), and their later
notices go to their owners directly or are only shown in the digest. How each notice was
delivered is recorded (``delivered_as``).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.app.notices import Announcement, GroupNotifier, Notifier
from bot.domain.backoff import backoff
from bot.domain.island_clock import island_time
from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import DigestPolicy, Route, digest_or_not, route, superseded
from bot.domain.port_blocks import named_ports
from bot.domain.records import PendingNotice
from bot.domain.time_source import Clock
from bot.infra import metrics
from bot.infra.storage.islands import IslandStore
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
    supersede: bool = True  # progress notices overtaken before they went out are not sent
    digest: DigestPolicy | None = field(default_factory=DigestPolicy)  # None: no digests


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
        islands: IslandStore | None = None,
    ) -> None:
        """Digests are made when the policy has one, ``islands`` is given and the notifier
        is a ``GroupNotifier``."""
        self.outbox = outbox
        self.notifier = notifier
        self.group = (
            notifier
            if policy.digest is not None
            and islands is not None
            and isinstance(notifier, GroupNotifier)
            else None
        )
        self.islands = islands
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
        sent = 0
        threads: dict[int, str] = {}
        if self.group is not None and islands and islands[0][0].chat_channel is not None:
            sent, threads = self._digest(islands[0][0].chat_channel, islands, now)
        for island_notices in islands:
            first = island_notices[0]
            if first.island_id in threads:  # announced in a digest just now
                sent += self._island(island_notices[1:], now, thread=threads[first.island_id])
            else:
                sent += self._island(island_notices, now)
        return sent

    def _ready(self, notice: PendingNotice, now: datetime) -> bool:
        """Due and free (not backing off, not held by another delivery)."""
        if notice.next_attempt_at is not None and notice.next_attempt_at > now:
            return False
        return notice.claim_until is None or notice.claim_until <= now

    def _digest(
        self, channel: str, islands: list[list[PendingNotice]], now: datetime
    ) -> tuple[int, dict[int, str]]:
        """Announce the channel's islands waiting for their root message together, when
        there are enough of them or a young digest can take them; returns (notices sent,
        island id -> the digest it is in)."""
        assert self.group is not None and self.islands is not None
        policy = self.policy.digest
        assert policy is not None
        fresh = [
            n[0]
            for n in islands
            if n[0].kind == Notice.ANNOUNCE and n[0].chat_thread is None and self._ready(n[0], now)
        ]
        if not fresh:
            return 0, {}
        young = self.islands.open_digest(channel, since=now - policy.window, size=policy.size)
        together = (
            self.islands.started_since(channel, now - policy.together)
            if young is None and len(fresh) < policy.at
            else len(fresh)
        )
        if not digest_or_not(together, open_digest=young is not None, policy=policy):
            return 0, {}
        groups: list[tuple[str | None, list[PendingNotice]]] = []
        rest = fresh
        if young is not None:
            join_ts, shown = young
            groups.append((join_ts, rest[: policy.size - shown]))
            rest = rest[policy.size - shown :]
        if rest:  # new digests, as even in size as may be
            count = -(-len(rest) // policy.size)
            each = -(-len(rest) // count)
            groups += [(None, rest[i : i + each]) for i in range(0, len(rest), each)]
        sent = 0
        threads: dict[int, str] = {}
        for join, group in groups:
            claimed = [
                n
                for n in group
                if self.outbox.claim(
                    n.id, by=self.name, ttl=self.policy.claim_ttl, fence=self.fence
                )
            ]
            if not claimed:
                continue
            try:
                ts = self.group.announce_together(
                    channel,
                    [self.announcement(n) for n in claimed],
                    join=join,
                )
            except Exception as exc:  # the chat side failed: each backs off, keeps its order
                for n in claimed:
                    self._failed(n, exc)
                continue
            for n in claimed:
                if not self.outbox.sent(n.id, by=self.name, delivered_as=Route.SHOWN.value):
                    log.warning("notice %d: delivered, but its claim had expired", n.id)
                threads[n.island_id] = ts
                sent += 1
        return sent, threads

    def _island(
        self, island_notices: list[PendingNotice], now: datetime, *, thread: str | None = None
    ) -> int:
        """The island's notices in order, until one is not due, held elsewhere, or fails."""
        sent = 0
        in_digest = thread is not None
        skip = (
            superseded([n.kind for n in island_notices])
            if self.policy.supersede
            else [False] * len(island_notices)
        )
        for pending, overtaken in zip(island_notices, skip, strict=True):
            notice = (
                pending
                if thread is None
                else replace(pending, chat_thread=thread, chat_digest=in_digest)
            )
            if not self._ready(notice, now):
                break  # backing off (its successors wait), or another delivery holds it
            if not self.outbox.claim(
                notice.id, by=self.name, ttl=self.policy.claim_ttl, fence=self.fence
            ):
                break
            if overtaken and pending.attempts == 0:  # (one tried before may be in the chat)
                self.outbox.sent(notice.id, by=self.name, delivered_as="superseded")
                sent += 1
                continue
            announcement = self.announcement(notice)
            try:
                posted_as = self.notifier.announce(announcement)
            except Exception as exc:  # the chat side failed: back off, keep the order
                self._failed(notice, exc)
                break
            delivered_as = "shown" if announcement.route == Route.SHOWN else "posted"
            if not self.outbox.sent(notice.id, by=self.name, delivered_as=delivered_as):
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
            route=route(n.kind, in_digest=n.chat_digest).value,
            in_digest=n.chat_digest,
        )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        close = getattr(self.notifier, "close", None)  # a chat notifier's pending rewrites
        if callable(close):
            close()
