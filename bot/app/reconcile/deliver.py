"""Delivering the outbox's notices to the notifier (the chat): each island's in order, one at a
time, channels in parallel (a chat paces each channel, so one busy channel must not hold up
the others).

Each notice is claimed before it is handed over (``Outbox.claim``, fenced by the leader's
lease) and recorded as sent right after: a crash loses at most the one notice in flight, and
that one goes out again with ``retry`` set, so an adapter that can look up what it posted
(Slack message metadata) delivers it once. A claim lasts as long as its process lives (its
heartbeat), at most ``claim_ttl``, which outlasts the slowest attempt (a turn in a paced
queue, then a call with all its retries: ``tests/test_budgets.py``), so no other delivery takes
a notice up while its attempt may still reach the chat. An attempt's outcome that the database
could not take (away meanwhile) is kept and recorded at the start of a later round, so the
notice is neither held for the claim's length nor tried again as if it had not gone out.
A failed attempt backs off, exponentially with jitter (or as long as the chat's
``Retry-After`` says); the island's later notices wait behind it. A notice that could not be
delivered for ``max_age`` is given up: logged and counted.
A notice that can never be delivered is recorded so at once, logged and counted, and never
holds up its island's later notices: one the chat refuses for good, after the notifier tried
it reworded or elsewhere (``NoticeRefused``), or one our own code failed on (a bug, logged
with its traceback, not mistaken for a chat that is down).
An island's first notice is its announcement (its root message); the thread it was posted as
carries the island's later notices. The notifier only posts: where a root message, a digest or
a clock change's request went is recorded here (``_record``), before the notice is recorded
as sent, so that a crash between the two finds it recorded or finds the post by its key.

Spending the chat's limits where they matter (``bot.domain.notice_routes``): a progress
notice overtaken by a newer one of its island is recorded as superseded, not sent; islands
being announced in one channel share a digest (with a ``GroupNotifier``) when the channel's
paced queue would hold their announcements back too long (``DigestPlanner``, from the posts
this deliverer handed the channel that are not out yet at the chat's pace, and this round's),
and their later notices go to their owners directly or are only shown in the digest. How each
notice was delivered is recorded (``delivered_as``).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TypeVar

from bot.app.notices import Announcement, GroupNotifier, NoticeRefused, Notifier, Posted
from bot.app.reconcile.digests import DigestPlanner, Groups
from bot.domain.backoff import backoff
from bot.domain.errors import DatabaseError, IslandbotError, log_failure
from bot.domain.island_clock import island_time
from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import (
    DigestPolicy,
    Route,
    route,
    superseded,
)
from bot.domain.notice_routes import crowded as crowded_by
from bot.domain.port_blocks import named_ports
from bot.domain.records import PendingNotice
from bot.domain.time_source import Clock
from bot.infra import metrics
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.outbox import Fence, Outbox
from bot.words import notices

log = logging.getLogger(__name__)
T = TypeVar("T")
BROADCAST = frozenset({Notice.READY, Notice.FAILED, Notice.CLOCK_SHIFTED})


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
    owner_threads: int = 16  # owners of islands in a digest told at once
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
        islands: IslandStore,
        requests: ClockRequests,
        fence: Fence | None = None,
        tz: tzinfo = UTC,
    ) -> None:
        """Digests are made when the policy has one and the notifier is a ``GroupNotifier``.
        Where root messages and clock requests were posted is recorded in ``islands`` and
        ``requests``. Island clocks in notices are shown in the team's zone ``tz``."""
        self.outbox = outbox
        self.notifier = notifier
        self.group = (
            notifier if policy.digest is not None and isinstance(notifier, GroupNotifier) else None
        )
        self.islands = islands
        self.requests = requests
        self.port_names = tuple(port_names)
        self.clock = clock
        self.policy = policy
        self.fence = fence
        self.tz = tz
        self.name = f"deliverer/{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._owners: ThreadPoolExecutor | None = None
        # a channel's paced part of a round still going on: (its work, islands in its digests)
        self._inflight: dict[str, tuple[Future[int], set[int]]] = {}
        self.planner = (
            DigestPlanner(
                group=self.group,
                islands=islands,
                policy=policy.digest,
                ready=self._ready,
                clock=clock,
            )
            if self.group is not None and policy.digest is not None
            else None
        )
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._owed: list[Callable[[], object]] = []  # outcomes the database could not take

    def deliver(self) -> int:
        """One round: every due notice, each island's in order. Returns how many went out."""
        self.record_owed()
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
        if self.policy.supersede:
            sent, islands = self._supersede(islands, now)
        channel = islands[0][0].chat_channel if islands else None
        busy, posting = self._busy(channel)
        groups: Groups = []
        bound: list[int] = []  # not announced yet, during a burst: bound for a digest
        if channel is not None and self.planner is not None:  # where announcements go
            groups, bound, islands = self.planner.decide(
                channel, islands, busy=busy, posting=posting, now=now
            )
        joining = posting | {n.island_id for _join, group in groups for n in group}
        own: list[list[PendingNotice]] = []  # islands with their own root message: in order
        apart: list[list[PendingNotice]] = []  # in a digest: to each owner, or only shown
        for island_notices in islands:
            first = island_notices[0]
            awaiting = first.kind == Notice.ANNOUNCE and first.chat_thread is None
            if first.island_id in joining or (
                awaiting and (first.chat_digest or first.island_id in bound)
            ):
                # its announcement is (or will be) a digest's, posted beside the owners' news
                # (or already was: its digest's message may still be on its way with others)
                later = island_notices[1:] if first.kind == Notice.ANNOUNCE else island_notices
                apart.append([replace(n, chat_digest=True) for n in later])
            elif first.chat_digest:
                apart.append(island_notices)
            else:
                own.append(island_notices)
        crowded: set[int] = set()  # own root messages, in a channel a burst is crowding
        posting_digests = bool(groups or posting)
        for island_notices in [
            o for o in own if crowded_by([n.kind for n in o], digests_posting=posting_digests)
        ]:
            own.remove(island_notices)
            apart.append(island_notices)
            crowded.add(island_notices[0].island_id)
        if channel is None or (not groups and len(apart) <= 1 and not busy):
            if channel is not None:
                self._hand_over(channel, [], own)
            return sent + self._in_waves(own + apart, now, crowded)
        # the channel's messages (paced at its rate: digests, the threads of islands with
        # their own root message) go on beside the owners' (each its own conversation, all at
        # once), and may outlast this round: the next one leaves the channel's part alone
        # until it is done, and tells the owners meanwhile
        if not busy:
            self._hand_over(channel, groups, own)
            work = self._owners_pool().submit(self._in_channel, channel, groups, own, now)
            with self._lock:
                self._inflight[channel] = (work, {n.island_id for _j, g in groups for n in g})
        return sent + self._in_waves(apart, now, crowded)

    def _outcome(self, write: Callable[[], T], otherwise: T) -> T:
        """Record an attempt's outcome (sent, failed, refused; ``write`` also logs and counts
        what it found). When the database cannot take it now (away, or its writers in
        conflict past retrying), it is kept for later (``record_owed``) and ``otherwise``
        returned: the notice stays claimed by this live process meanwhile, so it is neither
        tried again as if it had not gone out nor held for the claim's whole length once the
        database is back. (The database's absence is told where it is noticed: ``db_health``.)"""
        try:
            return write()
        except DatabaseError:
            with self._lock:
                self._owed.append(write)
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
            except BaseException:
                with self._lock:
                    self._owed[:0] = owed[done:]
                raise

    def _hand_over(self, channel: str, groups: Groups, own: list[list[PendingNotice]]) -> None:
        """The channel's posts of this round, handed to its queue now: its new digests, the
        notices of its islands with a root message of their own (``DigestPlanner.queue``)."""
        if self.planner is not None:
            new_digests = sum(1 for join, _group in groups if join is None)
            self.planner.queue(channel, new_digests + sum(len(notices) for notices in own))

    def _busy(self, channel: str | None) -> tuple[bool, set[int]]:
        """Whether the channel's part of an earlier round is still going on, and the islands
        whose digest it is posting."""
        if channel is None:
            return False, set()
        with self._lock:
            inflight = self._inflight.get(channel)
            if inflight is None:
                return False, set()
            if inflight[0].done():
                del self._inflight[channel]
                failure = inflight[0].exception()
                if failure is not None:  # the database away: told once, where it is noticed
                    log_failure(log, f"delivering in {channel} failed", failure)
                return False, set()
            return True, set(inflight[1])

    def _in_channel(
        self,
        channel: str,
        groups: Groups,
        own: list[list[PendingNotice]],
        now: datetime,
    ) -> int:
        sent = self._post_digests(channel, groups) if groups else 0
        # on a worker of the owners' pool: its waves post one after another (the channel's
        # queue would make them wait their turn anyway)
        return sent + self._in_waves(own, now, set(), concurrent=False)

    def _in_waves(
        self,
        islands: list[list[PendingNotice]],
        now: datetime,
        crowded: set[int],
        *,
        concurrent: bool = True,
    ) -> int:
        """Islands' notices, each island's in order: in waves, each wave the next notice of
        every island, claimed together, delivered (``concurrent``: at once, on the owners'
        pool), recorded together; an island whose notice is not due, held elsewhere or failed
        waits (its later notices with it), one whose notice can never be delivered goes on.
        An island's root message posted in a wave carries its later notices. ``crowded``:
        islands of their own routed as if in a digest (``notice_routes.crowded``)."""
        queues = [list(notices) for notices in islands if notices]
        pool = self._owners_pool() if concurrent else None
        sent = 0
        while True:
            heads = [q for q in queues if q and self._ready(q[0], now)]
            if not heads:
                return sent
            ids = set(
                self.outbox.claim_many(
                    [q[0].id for q in heads],
                    by=self.name,
                    ttl=self.policy.claim_ttl,
                    fence=self.fence,
                )
            )
            queues = [q for q in heads if q[0].id in ids]  # the others wait for a later round

            def attempt(notice: PendingNotice) -> tuple[str, Exception | None, Posted | None]:
                return self._try(notice, crowded=notice.island_id in crowded)

            claimed = [q[0] for q in queues]
            outcomes = list(pool.map(attempt, claimed) if pool else map(attempt, claimed))
            done: dict[str, list[int]] = {"shown": [], "posted": []}
            attached: list[Posted] = []
            still: list[list[PendingNotice]] = []
            for q, (where, exc, posted) in zip(queues, outcomes, strict=True):
                if exc is not None:
                    if self._failed(q[0], exc):  # never to be delivered: the island goes on
                        still.append(q[1:])
                    continue
                done["shown" if where == Route.SHOWN else "posted"].append(q[0].id)
                rest = q[1:]
                if posted is not None:
                    attached.append(posted)
                    if q[0].kind == Notice.ANNOUNCE:  # its thread carries the later ones
                        rest = [
                            replace(n, chat_channel=posted.channel, chat_thread=posted.ts)
                            for n in rest
                        ]
                still.append(rest)
            for delivered_as, done_ids in done.items():
                if done_ids:
                    sent += self._sent(done_ids, delivered_as)
            for posted in attached:
                self._recorded(posted)
            queues = still

    def _supersede(
        self, islands: list[list[PendingNotice]], now: datetime
    ) -> tuple[int, list[list[PendingNotice]]]:
        """Record the channel's overtaken progress notices as superseded, all in one claim and
        one write (never one that was tried before: it may be in the chat); returns how many,
        and each island's notices still to deliver."""
        overtaken: list[int] = []
        for island_notices in islands:
            skip = superseded([n.kind for n in island_notices])
            overtaken += [
                n.id
                for n, over in zip(island_notices, skip, strict=True)
                if over and n.attempts == 0 and self._ready(n, now)
            ]
        if not overtaken:
            return 0, islands
        taken = self.outbox.claim_many(
            overtaken, by=self.name, ttl=self.policy.claim_ttl, fence=self.fence
        )
        if taken:
            self._outcome(
                functools.partial(
                    self.outbox.sent_many, taken, by=self.name, delivered_as="superseded"
                ),
                len(taken),
            )
        gone = set(taken)
        rest = [[n for n in notices if n.id not in gone] for notices in islands]
        return len(taken), [notices for notices in rest if notices]

    def _try(
        self, notice: PendingNotice, *, crowded: bool = False
    ) -> tuple[str, Exception | None, Posted | None]:
        """Deliver one notice: (its route, the failure if it failed, where its message went
        when that was recorded: see ``_attach``)."""
        try:
            announcement = self.announcement(notice, crowded=crowded)
            posted = self._attach(notice, self.notifier.announce(announcement))
        except Exception as exc:  # judged by _failed: it backs off, or is recorded as failed
            return Route.THREAD.value, exc, None
        return announcement.route, None, posted

    def _attach(self, notice: PendingNotice, posted: Posted | None) -> Posted | None:
        """Record where the notice's message went, when later ones refer to it: the island's
        root message (its announcement), a clock change's request message. Returns it when
        recorded: once the notice is recorded as sent, the notifier is told (``_recorded``)."""
        if posted is None:
            return None
        if posted.request is not None:
            self.requests.attach_message(posted.request, posted.channel, posted.ts)
        elif notice.kind == Notice.ANNOUNCE:
            self.islands.attach_thread(notice.island_id, posted.channel, posted.ts)
        else:
            return None
        return posted

    def _recorded(self, posted: Posted) -> None:
        """Tell the notifier a message of its is recorded, to bring it up to date (it may
        have moved on while being posted). The notice went out whatever happens here."""
        try:
            self.notifier.recorded(posted)
        except Exception as exc:
            log_failure(log, f"message {posted.ts} in {posted.channel} not brought up to date", exc)

    def _sent(self, notice_ids: list[int], delivered_as: str) -> int:
        """Record notices as delivered (kept for later when the database cannot take it)."""

        def write() -> int:
            recorded = self.outbox.sent_many(notice_ids, by=self.name, delivered_as=delivered_as)
            if recorded < len(notice_ids):
                log.warning(
                    "%d notices: delivered, but their claim had expired",
                    len(notice_ids) - recorded,
                )
            return recorded

        self._outcome(write, len(notice_ids))
        return len(notice_ids)

    def _owners_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._owners is None:
                self._owners = ThreadPoolExecutor(
                    self.policy.owner_threads, thread_name_prefix="notices-owners"
                )
            return self._owners

    def _ready(self, notice: PendingNotice, now: datetime) -> bool:
        """Due and free (not backing off, not held by another delivery)."""
        if notice.next_attempt_at is not None and notice.next_attempt_at > now:
            return False
        return notice.claim_until is None or notice.claim_until <= now

    def _post_digests(self, channel: str, groups: Groups) -> int:
        """Post (or join) the planned digests; the announcements they carry are recorded as
        shown, or back off when the chat failed."""
        assert self.group is not None
        sent = 0
        for join, group in groups:
            ids = self.outbox.claim_many(
                [n.id for n in group], by=self.name, ttl=self.policy.claim_ttl, fence=self.fence
            )
            claimed = [n for n in group if n.id in set(ids)]
            if not claimed:
                continue
            try:
                together = self.group.announce_together(
                    channel, [self.announcement(n) for n in claimed], join=join
                )
                if together.digest is not None:
                    self.islands.attach_digest(
                        [n.island_id for n in claimed], channel, together.digest.ts
                    )
            except Exception as exc:  # each backs off (keeps its order), or is recorded as failed
                for n in claimed:
                    self._failed(n, exc)
                continue
            if together.digest is not None:
                sent += self._sent([n.id for n in claimed], Route.SHOWN.value)
                self._recorded(together.digest)
                continue
            # the channel could not take a digest: each island was announced on its own, or
            # failed (refused for good, or the chat or database failing for now)
            attached: dict[int, Posted] = {}  # notice id -> its island's root message
            for n in claimed:
                posted = together.alone.get(n.island_id)
                try:
                    if posted is None:
                        raise together.failed[n.island_id]  # noqa: TRY301 - judged by _failed
                    self._attach(n, posted)
                except Exception as exc:
                    self._failed(n, exc)
                    continue
                attached[n.id] = posted
            if attached:
                sent += self._sent(list(attached), "posted")
            for posted in attached.values():
                self._recorded(posted)
        return sent

    def _failed(self, notice: PendingNotice, exc: Exception) -> bool:
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
            return self._outcome(
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
            return self._outcome(
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

        return self._outcome(write, False)

    def announcement(self, n: PendingNotice, *, crowded: bool = False) -> Announcement:
        clock = island_time(n.clock_offset_s, self.clock()) if n.clock_offset_s else None
        text = notices.notice_text(
            n.kind,
            n.detail,
            island_id=n.island_id,
            owner_id=n.owner_id,
            branch=n.branch,
            ports=named_ports(self.port_names, n.first_port),
            clock=clock,
            tz=self.tz,
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
            route=route(
                n.kind, in_digest=n.chat_digest, crowded=crowded, retry=n.attempts > 0
            ).value,
            in_digest=n.chat_digest,
        )

    def close(self) -> None:
        with self._lock:  # taken out under the lock, waited for outside it (they take it)
            pools = [pool for pool in (self._pool, self._owners) if pool is not None]
            self._pool = self._owners = None
        for pool in pools:
            pool.shutdown(wait=True)
        close = getattr(self.notifier, "close", None)  # a chat notifier's pending rewrites
        if callable(close):
            close()
