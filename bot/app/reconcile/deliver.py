"""Delivering the outbox's notices to the notifier (the chat): each island's in order, one
notice at a time, channels in parallel (a chat paces each channel, so one busy channel must
not hold up the others).

One loop delivers every island's notices (``_in_waves``): each wave, the next notice of every
island, in chunks claimed together (``Outbox.claim_many``, fenced by the leader's lease),
handed over (at once, or one after another in a paced channel), and recorded as sent together
right after:
a crash loses at most the notices in flight, which go out again with ``retry`` set, so an
adapter that can look up what it posted (Slack message metadata) delivers each once. A claim
lasts as long as its process lives (its heartbeat), at most ``claim_ttl``, which outlasts the
slowest post (a turn in a paced queue, then a call with all its retries:
``tests/test_budgets.py``); a wave claims no more notices than it hands over at once, so no
other delivery takes a notice up while its post may still reach the chat. An attempt's
outcome that the database could not take (away meanwhile) is kept and recorded at the start of
a later round, so the notice is neither held for the claim's length nor tried again as if it
had not gone out.
A failed attempt backs off, exponentially with jitter (or as long as the chat's
``Retry-After`` says); the island's later notices wait behind it. A notice that could not be
delivered for ``max_age`` is given up: logged and counted.
A notice that can never be delivered is recorded so at once, logged and counted, and never
holds up its island's later notices: one the chat refuses for good, after the notifier tried
it reworded or elsewhere (``NoticeRefused``), or one our own code failed on (a bug, logged
with its traceback, not mistaken for a chat that is down).
An island's first notice is its announcement (its root message); the thread it was posted as
carries the island's later notices. The notifier only posts: where a root message, a digest or
a clock change's request went is recorded here (``_attach``), before the notice is recorded
as sent, so that a crash between the two finds it recorded or finds the post by its key.

In a paced chat (Slack, Lark) a channel's own posts (its digests, the threads of its islands
with a root message of their own) are the channel's *part* of a round: they go out one after
another on a worker of their own, beside the round, which goes on with the owners' news (each
owner's own conversation, all at once) and returns. Later rounds leave the channel's islands
the part holds to it until it is done, and the deliveries are woken then
(``on_part_done``); meanwhile the islands that people start there are bound for a digest when
the channel's queue is that long, and their owners told at once. Before the process goes,
the parts going on are waited for (``settle``).

Spending the chat's limits where they matter (``bot.domain.notice_routes``): a progress
notice overtaken by a newer one of its island is recorded as superseded, not sent; islands
being announced in one channel share a digest (with a ``GroupNotifier``) when the channel's
paced queue would hold their news back too long (``DigestPlanner``, from the posts this
deliverer handed the channel that are not out yet at the chat's pace, this round's, and the
owners' news pending behind the announcements),
and their later notices go to their owners directly or are only shown in the digest. How each
notice was delivered is recorded (``delivered_as``).
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, tzinfo

from bot.app.notices import Announcement, GroupNotifier, Notifier, Posted
from bot.app.reconcile.announcements import announcement
from bot.app.reconcile.channel_parts import ChannelParts, Parts
from bot.app.reconcile.digest_posts import Claim, DigestPoster
from bot.app.reconcile.digests import DigestPlanner, Groups
from bot.app.reconcile.outcomes import DeliveryPolicy, Outcomes
from bot.domain.errors import log_failure
from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import (
    Route,
    superseded,
)
from bot.domain.notice_routes import crowded as crowded_by
from bot.domain.records import PendingNotice
from bot.domain.time_source import Clock
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.outbox import Fence, Outbox

log = logging.getLogger(__name__)
__all__ = ["Deliverer", "DeliveryPolicy"]


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
        self._owners: ThreadPoolExecutor | None = None  # notices handed over at once
        self._paced = isinstance(notifier, GroupNotifier) and notifier.pace() is not None
        # called when a channel's part that islands were left for is done: they are due a
        # round now (not after a part that failed: the next round is soon enough)
        self.on_part_done: Callable[[], None] | None = None
        self.parts = ChannelParts(threads=policy.threads, wake=self._wake)
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
        self.outcomes = Outcomes(outbox, by=self.name, policy=policy)
        self.digests = (
            DigestPoster(
                group=self.group,
                outbox=outbox,
                islands=islands,
                outcomes=self.outcomes,
                claim=Claim(by=self.name, ttl=policy.claim_ttl, fence=fence),
                announcement=self.announcement,
                alone=self._try,
                recorded=self._recorded,
            )
            if self.group is not None
            else None
        )

    def deliver(self) -> int:
        """One round: every due notice, each island's in order. Returns how many went out:
        in this round, and in the channels' parts counted since the last one (a paced
        channel's posts go on beside the round, and may still be going out on return:
        ``settle``)."""
        self.outcomes.record_owed()
        # read before the notices: a part done meanwhile keeps its islands one more round
        # (its records may be newer than what was read), never the other way round
        parts = self.parts.now()
        now, pending = self.outbox.pending(limit=self.policy.batch)
        return self._round(pending, now, parts) + self.parts.counted()

    def settle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the channels' parts going on; whether they are
        done (before the process goes: what they post is recorded, not cut off)."""
        return self.parts.settle(timeout)

    def _wake(self) -> None:
        if self.on_part_done is not None:
            self.on_part_done()

    def _round(self, pending: list[PendingNotice], now: datetime, parts: Parts) -> int:
        by_island: dict[int, list[PendingNotice]] = {}
        for notice in pending:
            by_island.setdefault(notice.island_id, []).append(notice)
        by_channel: dict[str | None, list[list[PendingNotice]]] = {}
        for island_notices in by_island.values():
            by_channel.setdefault(island_notices[0].chat_channel, []).append(island_notices)
        if len(by_channel) <= 1:
            return sum(self._channel(islands, now, parts) for islands in by_channel.values())
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.policy.threads, thread_name_prefix="notices")
            pool = self._pool
        return sum(
            pool.map(lambda islands: self._channel(islands, now, parts), by_channel.values())
        )

    def _channel(self, islands: list[list[PendingNotice]], now: datetime, parts: Parts) -> int:
        sent = 0
        if self.policy.supersede:
            sent, islands = self._supersede(islands, now)
        channel = islands[0][0].chat_channel if islands else None
        busy = channel is not None and channel in parts
        posting, held = parts[channel] if channel is not None and busy else (set(), set())
        # the notices of the islands the channel's part holds are its (in order, behind their
        # root message)
        if channel is not None and held:
            left = [notices for notices in islands if notices[0].island_id not in held]
            if len(left) < len(islands):
                self.parts.wait_for(channel)
            islands = left
            if not islands:
                return sent
        groups: Groups = []
        bound: list[int] = []  # not announced yet, during a burst: bound for a digest
        if channel is not None and self.planner is not None:  # where announcements go
            groups, bound, islands = self.planner.decide(
                channel, islands, busy=busy, posting=posting, now=now
            )
        joining = posting | {n.island_id for _join, group in groups for n in group}
        own, apart = self._sort(islands, joining=joining, bound=set(bound))
        crowded: set[int] = set()  # own root messages, in a channel a burst is crowding
        posting_digests = bool(groups or posting)
        for island_notices in [
            o for o in own if crowded_by([n.kind for n in o], digests_posting=posting_digests)
        ]:
            own.remove(island_notices)
            apart.append(island_notices)
            crowded.add(island_notices[0].island_id)
        if not self._paced:  # nothing holds the posts back: all at once
            if channel is not None:
                self._hand_over(channel, [], own)
            return sent + self._in_waves(own + apart, now, crowded)
        if channel is None:  # each its owner's conversation: the owners' news first
            return (
                sent
                + self._in_waves(apart, now, crowded)
                + self._in_waves(own, now, set(), concurrent=False)
            )
        # the channel's messages (paced at its rate: digests, the threads of islands with
        # their own root message) go on beside the owners' (each its own conversation, all at
        # once), and may outlast this round: the next one leaves the channel's part alone
        # until it is done, binds the islands it finds waiting for their root message to a
        # digest when the channel's queue is that long, and tells the owners meanwhile
        own = [notices for notices in own if self._ready(notices[0], now)]  # not held elsewhere
        if busy and own:  # left for the channel's part to be done (the next round after it)
            self.parts.wait_for(channel)
        elif groups or own:
            self._hand_over(channel, groups, own)
            digests = {n.island_id for _join, group in groups for n in group}
            self.parts.start(
                channel,
                functools.partial(self._in_channel, channel, groups, own, now),
                digests=digests,
                own={notices[0].island_id for notices in own},
            )
        return sent + self._in_waves(apart, now, crowded)

    @staticmethod
    def _sort(
        islands: list[list[PendingNotice]], *, joining: set[int], bound: set[int]
    ) -> tuple[list[list[PendingNotice]], list[list[PendingNotice]]]:
        """The channel's islands with a root message of their own (their notices in its
        thread), and those in a digest (to each owner, or only shown): ``joining`` a digest
        being posted, or ``bound`` for one."""
        own: list[list[PendingNotice]] = []
        apart: list[list[PendingNotice]] = []
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
        return own, apart

    def _hand_over(self, channel: str, groups: Groups, own: list[list[PendingNotice]]) -> None:
        """The channel's posts of this round, handed to its queue now: its new digests, the
        notices of its islands with a root message of their own (``DigestPlanner.queue``)."""
        if self.planner is not None:
            new_digests = sum(1 for join, _group in groups if join is None)
            self.planner.queue(channel, new_digests + sum(len(notices) for notices in own))

    def _in_channel(
        self,
        channel: str,
        groups: Groups,
        own: list[list[PendingNotice]],
        now: datetime,
    ) -> int:
        sent = self.digests.post(channel, groups) if self.digests is not None and groups else 0
        # on a worker of the channels' parts: its waves post one after another (the
        # channel's queue would make them wait their turn anyway)
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
        every island, handed over in chunks (``concurrent``: as many at once as the owners'
        pool has threads, else one by one), each chunk claimed together and recorded together
        (a chunk is no bigger than what is handed over at once, so every claim outlasts its
        post: ``claim_ttl``). An island whose notice is not due, held elsewhere or failed waits
        (its later notices with it); one whose notice can never be delivered goes on. An
        island's root message posted in a wave carries its later notices. ``crowded``: islands
        of their own routed as if in a digest (``notice_routes.crowded``)."""
        queues = [list(notices) for notices in islands if notices]
        pool = self._owners_pool() if concurrent else None
        # a chat whose posts may wait (Slack): no more claimed than handed over at once;
        # one that takes every post at once (the console): the whole wave
        chunk = (
            (self.policy.owner_threads if concurrent else 1) if self._paced else max(1, len(queues))
        )
        sent = 0
        while True:
            heads = [q for q in queues if q and self._ready(q[0], now)]
            if not heads:
                return sent
            queues = []
            for at in range(0, len(heads), chunk):
                went, going_on = self._wave(heads[at : at + chunk], pool, crowded)
                sent += went
                queues += going_on

    def _wave(
        self,
        queues: list[list[PendingNotice]],
        pool: ThreadPoolExecutor | None,
        crowded: set[int],
    ) -> tuple[int, list[list[PendingNotice]]]:
        """The head notice of each queue: claimed, handed over, recorded. Returns how many
        went out and the queues that go on (the others wait for a later round)."""
        ids = set(
            self.outbox.claim_many(
                [q[0].id for q in queues], by=self.name, ttl=self.policy.claim_ttl, fence=self.fence
            )
        )
        queues = [q for q in queues if q[0].id in ids]  # held elsewhere, or done meanwhile

        def attempt(notice: PendingNotice) -> tuple[str, Exception | None, Posted | None]:
            return self._try(notice, crowded=notice.island_id in crowded)

        claimed = [q[0] for q in queues]
        outcomes = list(pool.map(attempt, claimed) if pool else map(attempt, claimed))
        done: dict[str, list[int]] = {"shown": [], "posted": []}
        attached: list[Posted] = []
        failed: list[tuple[list[PendingNotice], Exception]] = []
        going_on: list[list[PendingNotice]] = []
        for q, (where, exc, posted) in zip(queues, outcomes, strict=True):
            if exc is not None:
                failed.append((q, exc))
                continue
            done["shown" if where == Route.SHOWN else "posted"].append(q[0].id)
            rest = q[1:]
            if posted is not None:
                attached.append(posted)
                if q[0].kind == Notice.ANNOUNCE:  # its thread carries the later ones
                    rest = [
                        replace(n, chat_channel=posted.channel, chat_thread=posted.ts) for n in rest
                    ]
            going_on.append(rest)
        sent = sum(self.outcomes.sent(done_ids, how) for how, done_ids in done.items() if done_ids)
        for q, exc in failed:  # after what went out is recorded
            if self.outcomes.failed(q[0], exc):  # never to be delivered: the island goes on
                going_on.append(q[1:])
        for posted in attached:
            self._recorded(posted)
        return sent, going_on

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
            self.outcomes.sent(taken, "superseded")
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
        except Exception as exc:  # judged by Outcomes.failed: backed off, or recorded as failed
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
        elif notice.kind != Notice.ANNOUNCE:
            return None
        elif not self.islands.attach_thread(notice.island_id, posted.channel, posted.ts):
            island = self.islands.get(notice.island_id)  # recorded before: that one it is
            if (island.chat_channel, island.chat_thread) != (posted.channel, posted.ts):
                log.warning(
                    "island %d: root message %s in %s posted, but %s was recorded before",
                    notice.island_id,
                    posted.ts,
                    posted.channel,
                    island.chat_thread,
                )
            if island.chat_channel is None or island.chat_thread is None or island.chat_digest:
                return None  # a digest's: it is shown there, its notices find it recorded
            return Posted(island.chat_channel, island.chat_thread)
        return posted

    def _recorded(self, posted: Posted) -> None:
        """Tell the notifier a message of its is recorded, to bring it up to date (it may
        have moved on while being posted). The notice went out whatever happens here."""
        try:
            self.notifier.recorded(posted)
        except Exception as exc:
            log_failure(log, f"message {posted.ts} in {posted.channel} not brought up to date", exc)

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

    def announcement(self, n: PendingNotice, *, crowded: bool = False) -> Announcement:
        return announcement(
            n, port_names=self.port_names, now=self.clock(), tz=self.tz, crowded=crowded
        )

    def close(self) -> None:
        with self._lock:  # taken out under the lock, waited for outside it (they take it)
            pools = [p for p in (self._pool, self._owners) if p is not None]
            self._pool = self._owners = None
        self.parts.close()
        for pool in pools:
            pool.shutdown(wait=True)
        close = getattr(self.notifier, "close", None)  # a chat notifier's pending rewrites
        if callable(close):
            close()
