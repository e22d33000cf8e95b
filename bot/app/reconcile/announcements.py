"""An outbox notice as the notifier receives it (``Announcement``): its words, in the team's
zone, and where it goes (``notice_routes.route``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, tzinfo

from bot.app.notices import Announcement
from bot.domain.island_clock import island_time
from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import route
from bot.domain.port_blocks import named_ports
from bot.domain.records import PendingNotice
from bot.words import notices

BROADCAST = frozenset({Notice.READY, Notice.FAILED, Notice.CLOCK_SHIFTED})


def announcement(
    n: PendingNotice,
    *,
    port_names: Sequence[str],
    now: datetime,
    tz: tzinfo,
    crowded: bool = False,
) -> Announcement:
    """``crowded``: the island has a root message of its own in a channel a burst is
    crowding (``notice_routes.crowded``)."""
    clock = island_time(n.clock_offset_s, now) if n.clock_offset_s else None
    words = functools.partial(
        notices.notice_text,
        n.kind,
        n.detail,
        island_id=n.island_id,
        owner_id=n.owner_id,
        branch=n.branch,
        ports=named_ports(port_names, n.first_port),
        clock=clock,
        tz=tz,
    )
    text = words()
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
        route=route(n.kind, in_digest=n.chat_digest, crowded=crowded, retry=n.attempts > 0).value,
        in_digest=n.chat_digest,
        digest_of=n.digest_of,
        words=words,
    )
