"""Lifecycle notices as chat messages, through any ``ChatOutput``.

An island's announcement (its first notice) posts its root message in the channel it was
started from and records it as the island's thread; when that channel cannot take the bot's
messages, the root message goes to the owner directly and the person who started it is told.
A clock change someone asks for is posted in the channel with its Approve / Reject buttons.
Every later notice is a threaded reply under the root message, which is then brought up to
date (state, host, ports, clock, expiry, buttons)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, timedelta, tzinfo
from typing import Any

from bot.app.notices import Announcement
from bot.chat.output import ChatError, ChatOutput, Reply, tell
from bot.domain.errors import IslandbotError
from bot.domain.island_clock import island_time
from bot.domain.lifecycle_rules import Notice
from bot.domain.port_blocks import named_ports
from bot.domain.records import IslandRecord
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.islands import IslandStore
from bot.words import island_text, layouts

log = logging.getLogger(__name__)


class ChatNotifier:
    def __init__(
        self,
        sender: ChatOutput,
        islands: IslandStore,
        *,
        requests: ClockRequests,
        port_names: Sequence[str],
        extend_step: timedelta,
        tz: tzinfo = UTC,
        clock: Clock = utcnow,
    ) -> None:
        self.sender = sender
        self.islands = islands
        self.requests = requests
        self.tz = tz
        self.port_names = tuple(port_names)
        self.extend_step = extend_step
        self.clock = clock

    def announce(self, announcement: Announcement) -> str | None:
        a = announcement
        if a.kind == Notice.ANNOUNCE:
            return self._post_root(a)
        if a.kind == Notice.CLOCK_REQUESTED:
            self._post_request(a)
            return None
        if a.channel is None:  # started outside a chat (the command line): nowhere to post
            log.info("island %d: %s", a.island_id, a.text)
            return None
        self.sender.post(
            a.channel,
            a.text,
            thread_ts=a.thread_ts,
            broadcast=a.broadcast and a.thread_ts is not None,
            key=a.key,
            look_first=a.retry,
        )
        if a.thread_ts is not None:
            self.refresh_root(a.island_id)
        return None

    def _post_root(self, a: Announcement) -> str | None:
        """The island's root message; its ts is the island's thread from now on."""
        island = self.islands.get(a.island_id)
        if island.chat_thread is not None:  # posted and recorded by an earlier attempt
            return island.chat_thread
        if island.chat_channel is None:
            return None
        text, blocks = self._root(island)
        channel = island.chat_channel
        try:
            ts = self.sender.post(channel, text, blocks=blocks, key=a.key, look_first=a.retry)
        except ChatError as exc:
            if not exc.unreachable:
                raise  # the outbox tries again later
            log.warning("island %d: root message not posted in %s: %s", island.id, channel, exc)
            channel = self.sender.direct(island.owner_id)  # to the owner directly
            ts = self.sender.post(channel, text, blocks=blocks, key=a.key, look_first=a.retry)
            self._started_elsewhere(island.id, a.detail.get("reply"), exc)
        self.islands.attach_thread(island.id, channel, ts)
        return ts

    def _post_request(self, a: Announcement) -> None:
        """A clock change someone asks for, with Approve / Reject, where the team sees it."""
        request = self.requests.get(int(a.detail["request"]))
        if request.chat_ts is not None:  # posted and recorded by an earlier attempt
            return
        owner = self.islands.get(request.island_id).owner_id
        channel = request.chat_channel or owner
        text, blocks = layouts.clock_request_message(
            request, owner_id=owner, tz=self.tz, now=self.clock()
        )
        ts = self.sender.post(channel, text, blocks=blocks, key=a.key, look_first=a.retry)
        self.requests.attach_message(request.id, channel, ts)

    def _started_elsewhere(self, island_id: int, reply: object, exc: ChatError) -> None:
        if not isinstance(reply, dict) or not reply.get("user"):
            return
        target = Reply(str(reply["user"]), reply.get("channel"), reply.get("response_url"))
        try:
            tell(
                self.sender, target, island_text.started_elsewhere(island_id, exc.error or str(exc))
            )
        except ChatError as told:
            log.warning("island %d: could not say where it was announced: %s", island_id, told)

    def _root(self, island: IslandRecord) -> tuple[str, list[dict[str, Any]]]:
        now = self.clock()
        return layouts.root_message(
            island,
            ports=named_ports(self.port_names, island.first_port),
            clock=island_time(island.clock_offset_s, now) if island.clock_offset_s else None,
            extend_step=self.extend_step,
            now=now,
        )

    def refresh_root(self, island_id: int) -> None:
        """Rewrite the island's root message from the database; failures are only logged
        (the next notice rewrites it again)."""
        try:
            island = self.islands.get(island_id)
            if island.chat_channel is None or island.chat_thread is None:
                return
            text, blocks = self._root(island)
            self.sender.update(island.chat_channel, island.chat_thread, text, blocks=blocks)
        except IslandbotError as exc:
            log.warning("island %d: root message not updated: %s", island_id, exc)
