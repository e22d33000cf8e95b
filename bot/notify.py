"""Where lifecycle notices go: a small port the chat adapters implement.

An ``Announcement`` is one message about one island: posted in the island's thread (or the
channel when it has none), optionally also broadcast to the channel, and it carries the status
line the island's root message should now show.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Announcement:
    island_id: int
    kind: str
    text: str
    owner_id: str
    channel: str | None
    thread_ts: str | None
    broadcast: bool
    status_line: str


class Notifier(Protocol):
    def announce(self, announcement: Announcement) -> None:
        """Deliver it, or raise: the outbox keeps it and tries again on the next tick."""


class MemoryNotifier:
    """Keeps every announcement in order (tests, and the console chat's feed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Announcement] = []
        self.fail_next = 0  # make the next N deliveries raise, as a flaky chat service would

    def announce(self, announcement: Announcement) -> None:
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("chat service unavailable")
            self._items.append(announcement)

    @property
    def items(self) -> list[Announcement]:
        with self._lock:
            return list(self._items)

    def kinds(self, island_id: int) -> list[str]:
        return [a.kind for a in self.items if a.island_id == island_id]
