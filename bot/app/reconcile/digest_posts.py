"""Posting the digests the ``DigestPlanner`` planned, for the deliverer
(``bot.app.reconcile.deliver``): claimed, posted (or joined), recorded as each island's root
message.

A new digest's islands are planned into it as their announcements are claimed
(``Outbox.claim_digest``: ``islands.digest_of``, never an announcement tried before), so an
attempt tried again after the bot died between the post and its record looks for that digest
by its key. Once posted, the digest is recorded for every island planned into it, also those
whose attempt is still to come (backing off apart). Refused for good, the islands are unplanned
first and then each announced on its own, so a retry never goes back to the digest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.app.notices import Announcement, GroupNotifier, NoticeRefused, Posted
from bot.app.reconcile.digests import Groups
from bot.app.reconcile.outcomes import Outcomes
from bot.domain.notice_routes import Route
from bot.domain.records import PendingNotice
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.outbox import Fence, Outbox

# one notice delivered on its own: (its route, the failure if it failed, its message recorded)
Attempt = Callable[[PendingNotice], tuple[str, Exception | None, Posted | None]]


@dataclass(frozen=True)
class Claim:
    """How the deliverer claims notices: its name, how long, fenced by the leader's lease."""

    by: str
    ttl: timedelta
    fence: Fence | None


class DigestPoster:
    def __init__(
        self,
        *,
        group: GroupNotifier,
        outbox: Outbox,
        islands: IslandStore,
        outcomes: Outcomes,
        claim: Claim,
        announcement: Callable[[PendingNotice], Announcement],
        alone: Attempt,
        recorded: Callable[[Posted], None],
    ) -> None:
        """``alone``: the deliverer's attempt at one notice (an island's own root message);
        ``recorded``: tells the notifier a message of its is recorded."""
        self.group = group
        self.outbox = outbox
        self.islands = islands
        self.outcomes = outcomes
        self.claim = claim
        self.announcement = announcement
        self.alone = alone
        self.recorded = recorded

    def post(self, channel: str, groups: Groups) -> int:
        """Post (or join) the planned digests; the announcements they carry are recorded as
        shown, or back off when the chat failed. Returns how many were recorded."""
        sent = 0
        for join, group in groups:
            claimed, leader = self._claimed(join, group)
            if not claimed:
                continue
            try:
                digest = self.group.announce_together(
                    channel, [self.announcement(n) for n in claimed], join=join
                )
                self.islands.attach_digest(
                    [n.island_id for n in claimed], channel, digest.ts, planned=leader
                )
            except NoticeRefused:  # the channel takes no digest: each island on its own
                sent += self._each_alone(claimed)
                continue
            except Exception as exc:  # each backs off (keeps its order), or is recorded as failed
                for n in claimed:
                    self.outcomes.failed(n, exc)
                continue
            sent += self.outcomes.sent([n.id for n in claimed], Route.SHOWN.value)
            self.recorded(digest)
        return sent

    def _claimed(
        self, join: str | None, group: list[PendingNotice]
    ) -> tuple[list[PendingNotice], int | None]:
        """The group's announcements this attempt took, and the island its new digest is
        planned for (None when it joins ``join``)."""
        c = self.claim
        ids = [n.id for n in group]
        if join is not None:
            taken = set(self.outbox.claim_many(ids, by=c.by, ttl=c.ttl, fence=c.fence))
            return [n for n in group if n.id in taken], None
        leader = group[0].digest_of  # planned by an earlier attempt, which may have posted it
        if leader is None:
            claimed, leader = self.outbox.claim_digest(ids, by=c.by, ttl=c.ttl, fence=c.fence)
        else:
            claimed = self.outbox.claim_many(ids, by=c.by, ttl=c.ttl, fence=c.fence)
        taken = set(claimed)
        return [
            replace(n, digest_of=leader, chat_digest=True) for n in group if n.id in taken
        ], leader

    def _each_alone(self, claimed: list[PendingNotice]) -> int:
        """Announce each island of a refused digest on its own (its root message), unplanned
        first: an attempt tried again never looks for the digest. One refused for good too is
        recorded so and the others go on; the chat (or database) failing for now: the rest
        wait."""
        try:
            self.islands.unplan_digest([n.island_id for n in claimed])
        except Exception as exc:
            for n in claimed:
                self.outcomes.failed(n, exc)
            return 0
        attached: dict[int, Posted | None] = {}  # notice id -> its island's root message
        for_now: Exception | None = None
        for n in claimed:
            if for_now is not None:
                self.outcomes.failed(n, for_now)
                continue
            _route, failure, posted = self.alone(replace(n, digest_of=None, chat_digest=False))
            if failure is None:
                attached[n.id] = posted
                continue
            self.outcomes.failed(n, failure)
            if not isinstance(failure, NoticeRefused):
                for_now = failure
        sent = self.outcomes.sent(list(attached), "posted") if attached else 0
        for root in attached.values():
            if root is not None:
                self.recorded(root)
        return sent
