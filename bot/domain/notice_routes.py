"""Where each notice goes, so that a chat's rate limits are spent where they matter (pure).

A chat channel takes about one post a second (Slack); when the whole team starts at once, a
root message, a threaded "scheduled" and a threaded "ready" per island would queue for
minutes. So:

- **Superseded**: a progress notice (scheduled, still waiting) that a newer notice of the same
  island has overtaken before it went out is not sent at all: the newer one says more.
- **Digest**: when several islands are started in one channel at once (``DigestPolicy``),
  they share one root message, a *digest* kept current with each island's state, instead of
  a root message each; a digest takes further islands of the channel while it is young and
  not full. A quiet channel keeps one root message per island.
- **Routes** of an island's later notices: ``THREAD`` (a reply in its root message's thread,
  the single-island experience), ``DIRECT`` (to the owner: what only they need, when the
  island is in a digest: ready with its ports, failures, expiry, clock changes) or ``SHOWN``
  (nothing posted: its root message or digest shows the new state).
- **Crowded**: an island with a root message of its own (announced before the burst was
  seen) in a channel a burst is crowding (digests being posted there) is routed as if it
  were in a digest, so that its owner's "ready" does not queue behind the digests.
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
# what an island's owner is told directly when the island is in a digest
FOR_THE_OWNER = frozenset(
    {
        Notice.READY,
        Notice.FAILED,
        Notice.EXPIRING,
        Notice.EXPIRED,
        Notice.CLOCK_SHIFTED,
        Notice.CLOCK_FAILED,
    }
)


@dataclass(frozen=True)
class DigestPolicy:
    at: int = 3  # islands started in a channel within ``together`` that make a digest
    together: timedelta = timedelta(seconds=10)
    size: int = 20  # islands one digest shows at most (a message's blocks are limited)
    window: timedelta = timedelta(minutes=2)  # a digest takes more islands while this young

    def __post_init__(self) -> None:
        if not 2 <= self.at <= self.size:
            raise ValueError(f"a digest needs 2 <= at <= size, got at={self.at} size={self.size}")


def superseded(kinds: Sequence[Notice]) -> list[bool]:
    """For an island's undelivered notices in order: which need not be sent, because a later
    one (also undelivered) overtakes it."""
    return [kind in PROGRESS and i < len(kinds) - 1 for i, kind in enumerate(kinds)]


def route(kind: Notice, *, in_digest: bool, crowded: bool = False) -> Route:
    """Where an island's notice (other than its announcement) goes. ``crowded``: the island
    has a root message of its own in a channel a burst is crowding."""
    if kind == Notice.ANNOUNCE and in_digest:
        return Route.SHOWN  # its digest, already posted, shows it (a retry after a crash)
    if kind in IN_THE_CHANNEL:
        return Route.THREAD  # the root message / the request in the channel, as always
    if not (in_digest or crowded):
        return Route.THREAD
    return Route.DIRECT if kind in FOR_THE_OWNER else Route.SHOWN


def digest_or_not(started_together: int, *, open_digest: bool, policy: DigestPolicy) -> bool:
    """Whether a channel's islands being announced now go into a digest: ``started_together``
    is how many were started in the channel within ``policy.together`` (these included)."""
    return open_digest or started_together >= policy.at
