"""Lifecycle notices as chat messages, through any ``ChatOutput``: a threaded reply under the
island's root message, then the root message brought up to date (state, host, ports, clock,
expiry, buttons)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from bot.app.notices import Announcement
from bot.chat.output import ChatOutput
from bot.domain.errors import IslandbotError
from bot.domain.island_clock import island_time
from bot.domain.port_blocks import named_ports
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.islands import IslandStore
from bot.words import layouts

log = logging.getLogger(__name__)


class ChatNotifier:
    def __init__(
        self,
        sender: ChatOutput,
        islands: IslandStore,
        *,
        port_names: Sequence[str],
        extend_step: timedelta,
        clock: Clock = utcnow,
    ) -> None:
        self.sender = sender
        self.islands = islands
        self.port_names = tuple(port_names)
        self.extend_step = extend_step
        self.clock = clock

    def announce(self, announcement: Announcement) -> None:
        a = announcement
        if a.channel is None:  # started outside a chat (the command line): nowhere to post
            log.info("island %d: %s", a.island_id, a.text)
            return
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

    def refresh_root(self, island_id: int) -> None:
        """Rewrite the island's root message from the database; failures are only logged
        (the next notice rewrites it again)."""
        try:
            island = self.islands.get(island_id)
            if island.chat_channel is None or island.chat_thread is None:
                return
            now = self.clock()
            text, blocks = layouts.root_message(
                island,
                ports=named_ports(self.port_names, island.first_port),
                clock=island_time(island.clock_offset_s, now) if island.clock_offset_s else None,
                extend_step=self.extend_step,
                now=now,
            )
            self.sender.update(island.chat_channel, island.chat_thread, text, blocks=blocks)
        except IslandbotError as exc:
            log.warning("island %d: root message not updated: %s", island_id, exc)
