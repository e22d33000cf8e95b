"""Where lifecycle notices go: a small port that the chat notifier (and, without a chat, the
log or a JSON-lines file) implements.

An ``Announcement`` is one message about one island: posted in the island's thread (or the
channel when it has none), optionally also broadcast to the channel, and it carries the status
line the island's root message should now show. Its ``route`` (``bot.domain.notice_routes``)
says where it goes: the thread, the owner directly, or only shown in the root message.

A ``GroupNotifier`` (the chat) can also announce islands started at once together, as one
digest message, and says how fast one of its channels takes posts (its ``Pace``): whether a
digest is needed is decided from the wait in the channel's queue.

A notifier posts and writes nothing: where a root message, a digest or a clock change's
request went comes back as ``Posted``; the deliverer (a use case) records it, then tells the
notifier (``recorded``), which brings the message up to date if its island or request moved
on while it was being posted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bot.domain.errors import IslandbotError
from bot.domain.notice_routes import Pace


@dataclass(frozen=True)
class Announcement:
    """``key`` is stable across retries: an adapter that can look up what it already posted
    (Slack message metadata, a file) uses it to deliver each notice exactly once even when the
    bot died between posting and recording the post."""

    key: str
    island_id: int
    kind: str
    text: str
    owner_id: str
    channel: str | None
    thread_ts: str | None
    broadcast: bool
    status_line: str
    retry: bool = False  # an earlier attempt was made and may have reached the chat
    detail: Mapping[str, Any] = field(default_factory=dict)  # what the notice was written with
    route: str = "thread"  # thread, direct (to the owner) or shown (only in the root message)
    in_digest: bool = False  # the island's root message is a digest
    digest_of: int | None = None  # the digest it goes into is keyed by this island's id
    # ``text`` again, in the language spoken where it is called: a notice told to one person
    # (its owner, directly) is said in theirs; None: ``text`` is all there is
    words: Callable[[], str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Posted:
    """Where a message the island's later notices (or a clock change's decision) refer to
    went: an island's root message, a digest, or a clock change's request (``request``)."""

    channel: str
    ts: str
    request: int | None = None


class NoticeRefused(IslandbotError):
    """The chat refuses this notice for good: as it is, and in whatever plainer form or other
    place could have helped. Trying again would not; the outbox records it as refused at once
    and the island's later notices go on. ``reason``: the chat's own code for it."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Notifier(Protocol):
    def announce(self, announcement: Announcement) -> Posted | None:
        """Deliver it, or raise: ``NoticeRefused`` when it can never be delivered (it is
        recorded so, and the island's later notices go on), anything else when it may be
        later (the outbox keeps it and tries again, the island's later notices waiting). An
        announcement (kind ``announce``: the island's root message) returns where it was
        posted, whose thread carries the island's later notices, and a clock change's
        request where its message went; anything else returns None."""

    def recorded(self, posted: Posted) -> None:
        """``posted`` (from ``announce`` or ``announce_together``) is now recorded as the
        island's root message, digest or request message: bring it up to date."""


@runtime_checkable
class GroupNotifier(Notifier, Protocol):
    def pace(self) -> Pace | None:
        """How fast one channel takes posts (None: all at once, so digests are never needed)."""

    def announce_together(
        self, channel: str, announcements: Sequence[Announcement], *, join: str | None
    ) -> Posted:
        """Announce these islands (their ``announce`` notices) in one digest message in
        ``channel``: a new one, keyed by the island it was planned for (``digest_of``; found
        rather than posted again when an earlier attempt may have reached the chat), or the
        digest ``join`` names. Returns it, to be recorded as each island's root message.
        Raises ``NoticeRefused`` when the channel refuses the digest for good (each island is
        then announced on its own), any other error when the chat fails for now."""
