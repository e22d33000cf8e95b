"""Where each notice goes, so that a chat's rate limits are spent where they matter (pure).

A chat channel takes about one post a second (Slack); when the whole team starts at once, a
root message, a threaded "scheduled" and a threaded "ready" per island would queue for
minutes. So:

- **Superseded**: a progress notice (scheduled, still waiting) that a newer notice of the same
  island has overtaken before it went out is not sent at all: the newer one says more.
- **Digest**: when the channel's paced queue would hold an island's news back longer than
  ``DIGEST_AFTER`` (the posts already on their way to it, then the root messages of the
  islands being announced now and their owners' news pending with them, such as a warm
  island's "ready", at the channel's ``Pace``),
  the islands being announced share one root message, a
  *digest* kept current with each island's state, instead of a root message each; a digest
  that is young and not full takes further islands of the channel while the queue is that
  long. A digest is never opened for one island; a quiet channel, or a few people starting
  seconds apart, keeps one root message per island (``digest_or_not``).
- **Routes** of an island's later notices: ``THREAD`` (a reply in its root message's thread,
  the single-island experience), ``DIRECT`` (to the owner: what only they need, when the
  island is in a digest: ready with its ports, failures, expiry, clock changes) or ``SHOWN``
  (nothing posted: its root message or digest shows the new state).
- **Crowded**: an island with a root message of its own (announced before the burst was
  seen) in a channel a burst is crowding (digests being posted there) is routed as if it
  were in a digest, so that its owner's "ready" does not queue behind the digests
  (``crowded``).
- **Refused for good**: a notice the chat will never take as it is goes once more reworded
  (plain, shortened text) when the message was refused, to the owner directly when the
  channel was, else is recorded as refused (``after_refusal``).

The chat adapter carries these decisions out and decides nothing of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.domain.lifecycle_rules import Notice


class Route(StrEnum):
    THREAD = "thread"
    DIRECT = "direct"
    SHOWN = "shown"


# always posted in the channel: the root message, a clock change's request with its buttons
IN_THE_CHANNEL = frozenset({Notice.ANNOUNCE, Notice.CLOCK_REQUESTED})
# overtaken by any later notice of the island (which tells a newer state)
PROGRESS = frozenset({Notice.SCHEDULED, Notice.UNSCHEDULABLE})
# the end of an island's run: a warning about its memory is moot once it is told
ENDS_THE_RUN = frozenset(
    {Notice.FAILED, Notice.STOP_REQUESTED, Notice.STOPPED, Notice.EXPIRED, Notice.RESTARTING}
)
# what an island's owner is told directly when the island is in a digest
FOR_THE_OWNER = frozenset(
    {
        Notice.READY,
        Notice.FAILED,
        Notice.EXPIRING,
        Notice.EXPIRED,
        Notice.CLOCK_SHIFTED,
        Notice.MEMORY_HIGH,
        Notice.CLOCK_FAILED,
    }
)


DIGEST_AFTER = timedelta(seconds=5)
"""A channel's islands being announced go into a digest only when the channel's paced queue
would hold the last of their announcements back longer than this. Below it, an announcement
waiting a few seconds is the lesser harm: a root message and thread of its own is what a
person expects. Above it, the queue (about one post a second per Slack channel) would keep
owners waiting for their "ready" for as long as the burst takes to post."""

SHARED = 2  # islands that open a digest together, at least: never a digest of one island


@dataclass(frozen=True)
class Pace:
    """How fast a chat channel takes the bot's posts, as plain numbers (a token bucket):
    ``burst`` posts at once, then ``per_second`` steadily. Slack takes about one post a
    second per channel after a short burst; the chat adapter says what it keeps to."""

    per_second: float
    burst: float = 1.0

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and self.burst >= 1):
            raise ValueError(f"a pace needs per_second > 0 and burst >= 1, got {self}")


@dataclass(frozen=True)
class DigestPolicy:
    after: timedelta = DIGEST_AFTER  # the queue's wait for an announcement that makes digests
    size: int = 20  # islands one digest shows at most (a message's blocks are limited)
    window: timedelta = timedelta(minutes=2)  # a digest takes more islands while this young

    def __post_init__(self) -> None:
        if self.size < 2 * SHARED - 1:  # else some number of islands leaves one alone
            raise ValueError(f"a digest needs size >= {2 * SHARED - 1}, got size={self.size}")
        if self.after < timedelta(0):
            raise ValueError(f"a digest needs after >= 0, got after={self.after}")


def queue_wait(posts: float, pace: Pace) -> timedelta:
    """How long the last of ``posts`` posts handed to a channel at once waits in its paced
    queue, the channel's burst unspent: the burst goes at once, the rest at its pace."""
    return timedelta(seconds=max(0.0, posts - pace.burst) / pace.per_second)


def queued_until(until: float, now: float, posts: int, pace: Pace) -> float:
    """A channel's queue, kept as one number (seconds on any monotonic clock): ``until`` is
    when the posts handed to it so far will all have gone out at its steady pace (whatever
    the burst let go at once is paid back by then). After handing it ``posts`` more at
    ``now``, this is the new ``until``."""
    return max(until, now) + posts / pace.per_second


def posts_ahead(until: float, now: float, pace: Pace) -> float:
    """How many of the posts handed to a channel whose queue is ``until`` (``queued_until``)
    are still ahead of a new one at ``now``, as its pace counts them."""
    return max(0.0, until - now) * pace.per_second


def superseded(kinds: Sequence[Notice]) -> list[bool]:
    """For an island's undelivered notices in order: which need not be sent, because a later
    one (also undelivered) overtakes it: any later notice a progress notice; the end of the
    island's run (``ENDS_THE_RUN``) a memory warning."""
    return [
        (kind in PROGRESS and i < len(kinds) - 1)
        or (kind == Notice.MEMORY_HIGH and bool(ENDS_THE_RUN.intersection(kinds[i + 1 :])))
        for i, kind in enumerate(kinds)
    ]


def crowded(kinds: Sequence[Notice], *, digests_posting: bool) -> bool:
    """Whether an island with a root message of its own, whose undelivered notices are
    ``kinds``, is routed as if it were in a digest: digests are being posted in its channel,
    and none of its notices must be in the channel (those keep the island's order there)."""
    return digests_posting and not set(kinds) & IN_THE_CHANNEL


class Fallback(StrEnum):
    REWORD = "reword"  # post it again as plain, shortened text
    TO_OWNER = "to_owner"  # post it to the island's owner directly
    REFUSED = "refused"  # record it as refused: nothing would help


def after_refusal(
    *, malformed: bool, unreachable: bool, rewordable: bool, to_owner: bool
) -> Fallback:
    """What to do with a notice the chat refused for good: ``malformed`` (the message: too
    long, its blocks invalid) and still ``rewordable`` (it has blocks, metadata or text that
    plain, shorter text would drop); ``unreachable`` (the channel: gone, archived, the bot
    not in it) unless it already went to the owner (``to_owner``)."""
    if malformed and rewordable:
        return Fallback.REWORD
    if unreachable and not to_owner:
        return Fallback.TO_OWNER
    return Fallback.REFUSED


def route(kind: Notice, *, in_digest: bool, crowded: bool = False, retry: bool = False) -> Route:
    """Where an island's notice (other than its announcement) goes. ``crowded``: the island
    has a root message of its own in a channel a burst is crowding; ``retry``: an earlier
    attempt may have reached the chat, in the thread when the channel was not crowded then,
    so a retry goes (and looks) there again rather than be recorded as only shown."""
    if kind == Notice.ANNOUNCE and in_digest:
        return Route.SHOWN  # its digest, already posted, shows it (a retry after a crash)
    if kind in IN_THE_CHANNEL:
        return Route.THREAD  # the root message / the request in the channel, as always
    if not (in_digest or (crowded and not retry)):
        return Route.THREAD
    return Route.DIRECT if kind in FOR_THE_OWNER else Route.SHOWN


def digest_or_not(
    announcing: int,
    *,
    ahead: float,
    following: int = 0,
    pace: Pace | None,
    open_digest: bool,
    bound: bool = False,
    policy: DigestPolicy,
) -> bool:
    """Whether a channel's islands waiting for their root message now (``announcing`` of
    them) go into a digest. Only when the channel's paced queue would hold the last of their
    news back longer than ``policy.after``: ``ahead`` posts are on their way to the channel
    before them (handed to it earlier and not out yet, and this round's other posts there),
    then their announcements and the ``following`` news for their owners pending behind them
    (in their threads: a warm island's "ready" follows its root message at once), at the
    channel's ``pace`` (None: the chat takes every post at once, so never). ``bound``: some
    of them were already bound for a digest (while the channel's queue was that long; their
    owners may have been told directly since). Never a digest of one island: at least
    ``SHARED`` open one together, or there is a young digest with room (``open_digest``) for
    them to join."""
    if announcing < 1 or pace is None:
        return False
    if not bound and queue_wait(ahead + announcing + following, pace) <= policy.after:
        return False
    return open_digest or announcing >= SHARED


def share_out(announcing: int, *, room: int, size: int) -> tuple[int, list[int]]:
    """How the islands going into digests together (``digest_or_not``) are shared out: how
    many join the young digest with ``room`` for more (0: none), and the sizes of the new
    digests for the rest, at most ``size`` each and as even as may be. None of them shows
    one island alone (``size`` >= 3), and a young digest takes one fewer rather than leave
    one island for a new digest of its own."""
    joining = min(room, announcing)
    if announcing - joining == 1 and joining > 0:
        joining -= 1  # the last two open a digest together
    rest = announcing - joining
    if rest == 0:
        return joining, []
    count = -(-rest // size)
    each, more = divmod(rest, count)
    return joining, [each + (i < more) for i in range(count)]
