"""Which of a channel's islands waiting for their root message share a digest, for the
deliverer (``bot.app.reconcile.deliver``): the facts ``bot.domain.notice_routes.digest_or_not``
decides from, gathered and carried out.

The facts: how many islands are being announced in the channel now; the posts on their way to
it before them, which is this round's notices of islands with a root message of their own and
what this deliverer handed the channel earlier that its pace has not let out yet (kept per
channel as one number, ``queued_until``, on a monotonic clock); the owners' news pending
behind the announcements (``following``: a warm island's "ready"); the channel's ``Pace`` (the
chat's ``GroupNotifier.pace``); whether a young digest with room is open there. Carried out:
the digests to post or join (``share_out``: never one of one island), and the islands bound
for a digest while the channel's part of an earlier round was still going on (their owners
are told directly meanwhile), or unbound when that digest is not to be.

An announcement an earlier attempt may have posted goes where that attempt went
(``planned_or_alone``): into the digest it was planned into as its notice was claimed
(``islands.digest_of``, written by ``OutboxStore.claim_digest`` before the post; the
deliverer unplans it when the channel refuses that digest), or, tried before without one, on
its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot.app.notices import GroupNotifier
from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import (
    FOR_THE_OWNER,
    DigestPolicy,
    digest_or_not,
    posts_ahead,
    queued_until,
    share_out,
)
from bot.domain.records import PendingNotice
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.islands import IslandStore

Groups = list[tuple[str | None, list[PendingNotice]]]  # (a young digest to join or None; its)


def planned_or_alone(n: PendingNotice) -> bool:
    """An announcement whose earlier attempt may have been posted, and so goes where that
    attempt was going: into the digest it was planned into (``digest_of``), or, tried again
    without one (and not bound for a digest meanwhile), on its own, never into a digest."""
    return n.digest_of is not None or (n.attempts > 0 and not n.chat_digest)


def following(islands: list[list[PendingNotice]], announcing: set[int]) -> int:
    """The owners' news pending behind the announcements of the ``announcing`` islands, in
    their threads were they announced on their own: a warm island's "ready" follows its root
    message at once (progress, which a digest would only show, is not counted)."""
    return sum(
        1
        for notices in islands
        if notices[0].island_id in announcing
        for n in notices[1:]
        if n.kind in FOR_THE_OWNER
    )


class DigestPlanner:
    def __init__(
        self,
        *,
        group: GroupNotifier,
        islands: IslandStore,
        policy: DigestPolicy,
        ready: Callable[[PendingNotice, datetime], bool],
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``ready``: whether a notice is due and free (not backing off, not held);
        ``clock``: the bot's, which recorded the islands' starts (a digest's age is judged on
        it, not on the database's)."""
        self.group = group
        self.clock = clock
        self.islands = islands
        self.policy = policy
        self.ready = ready
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._queued: dict[str, float] = {}  # channel -> its queue (``queued_until``)

    def decide(
        self,
        channel: str,
        islands: list[list[PendingNotice]],
        *,
        busy: bool,
        posting: set[int],
        now: datetime,
    ) -> tuple[Groups, list[int], list[list[PendingNotice]]]:
        """Where the channel's islands waiting for their root message go: the digests to post
        or join (``plan``); while the channel is ``busy`` (its part of an earlier round, which
        is posting the digests of ``posting``, still going on), the islands bound for a
        digest now (``bound``); and the islands' notices, those bound earlier for a digest
        that is not to be now on their own. Binding for a burst and unbinding are written here
        only (planning into a digest is written as its notices are claimed)."""
        if busy:
            bound = self.bound(channel, islands, posting)
            if bound:
                self.islands.bind_to_digest(bound)
            return [], bound, islands
        groups, unbound = self.plan(channel, islands, now)
        if unbound:  # bound for a digest that is not to be: each a root message of its own
            islands = [
                [replace(n, chat_digest=False) for n in notices]
                if notices[0].island_id in unbound
                else notices
                for notices in islands
            ]
        return groups, [], islands

    def queue(self, channel: str, posts: int) -> None:
        """``posts`` handed to the channel's queue now (``queued_until``)."""
        pace = self.group.pace()
        if pace is None or posts <= 0:
            return
        now = self.monotonic()
        with self._lock:
            for gone in [c for c, until in self._queued.items() if until < now]:
                del self._queued[gone]  # a channel whose queue is empty: nothing to keep
            self._queued[channel] = queued_until(self._queued.get(channel, 0.0), now, posts, pace)

    def ahead(self, channel: str, islands: list[list[PendingNotice]]) -> float:
        """Posts on their way to the channel before its islands being announced now: those
        handed to it earlier and not out yet at its pace, and this round's notices of its
        islands with a root message of their own (threaded there)."""
        pace = self.group.pace()
        if pace is None:
            return 0.0
        with self._lock:
            until = self._queued.get(channel, 0.0)
        this_round = sum(
            len(notices)
            for notices in islands
            if notices[0].chat_thread is not None and not notices[0].chat_digest
        )
        return posts_ahead(until, self.monotonic(), pace) + this_round

    def bound(
        self, channel: str, islands: list[list[PendingNotice]], posting: set[int]
    ) -> list[int]:
        """While the channel's part of an earlier round is still going on: the islands waiting
        for their root message that will go into a digest (``digest_or_not``), to be bound
        for it now so that their owners are told directly meanwhile; the others wait for the
        channel's part to be done (their wait is short, or they are alone)."""
        awaiting = [
            notices[0]
            for notices in islands
            if notices[0].kind == Notice.ANNOUNCE
            and notices[0].chat_thread is None
            and notices[0].island_id not in posting
            and not planned_or_alone(notices[0])
        ]
        if not digest_or_not(
            len(awaiting),
            ahead=self.ahead(channel, islands),
            following=following(islands, {n.island_id for n in awaiting}),
            pace=self.group.pace(),
            open_digest=bool(posting) or any(n.chat_digest for n in awaiting),
            policy=self.policy,
        ):
            return []
        return [n.island_id for n in awaiting if not n.chat_digest]

    def plan(
        self, channel: str, islands: list[list[PendingNotice]], now: datetime
    ) -> tuple[Groups, set[int]]:
        """Which of the channel's islands waiting for their root message are announced
        together (``digest_or_not``: the channel's queue would hold them back too long, and
        they are several or a young digest can take them): a list of (the young digest to
        join, or None for a new one; their announcements); and the islands bound for a
        digest earlier that are now announced on their own (unbound: never a digest of one)."""
        policy = self.policy
        fresh = [
            n[0]
            for n in islands
            if n[0].kind == Notice.ANNOUNCE and n[0].chat_thread is None and self.ready(n[0], now)
        ]
        # an earlier attempt may have posted these: each goes where it was going then
        planned: dict[int, list[PendingNotice]] = {}
        for n in fresh:
            if n.digest_of is not None:
                planned.setdefault(n.digest_of, []).append(n)
        groups: Groups = [(None, group) for group in planned.values()]
        fresh = [n for n in fresh if not planned_or_alone(n)]
        if not fresh:
            return groups, set()
        started = self.clock()  # the clock the starts were recorded on
        young = self.islands.open_digest(channel, since=started - policy.window, size=policy.size)
        bound = [n.island_id for n in fresh if n.chat_digest]  # while the channel was busy
        if not digest_or_not(
            len(fresh),
            ahead=self.ahead(channel, islands),
            following=following(islands, {n.island_id for n in fresh}),
            pace=self.group.pace(),
            open_digest=young is not None,
            bound=bool(bound),
            policy=policy,
        ):
            if bound:
                self.islands.bind_to_digest(bound, bound=False)
            return groups, set(bound)
        joining, new = share_out(
            len(fresh), room=0 if young is None else policy.size - young[1], size=policy.size
        )
        if young is not None and joining:
            groups.append((young[0], fresh[:joining]))
        at = joining
        for size in new:  # planned as their notices are claimed (``OutboxStore.claim_digest``)
            groups.append((None, fresh[at : at + size]))
            at += size
        return groups, set()
