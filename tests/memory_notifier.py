"""A notifier that keeps every announcement in memory (tests of the lifecycle engine)."""

from __future__ import annotations

import threading

from bot.app.notices import Announcement, Posted


class MemoryNotifier:
    """Keeps every announcement in order (tests, and the console chat's feed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Announcement] = []
        self.fail_next = 0  # make the next N deliveries raise, as a flaky chat service would

    def announce(self, announcement: Announcement) -> Posted | None:
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("chat service unavailable")
            self._items.append(announcement)
        if announcement.kind != "announce" or announcement.channel is None:
            return None
        if announcement.in_digest:  # its digest, recorded already, shows it: nothing posted
            return None
        return Posted(announcement.channel, f"thread-{announcement.island_id}")

    def recorded(self, posted: Posted) -> None:
        """Nothing to bring up to date: the items are as announced."""

    @property
    def items(self) -> list[Announcement]:
        with self._lock:
            return list(self._items)

    def kinds(self, island_id: int) -> list[str]:
        """The island's notices but its announcement (root message), in order."""
        return [a.kind for a in self.items if a.island_id == island_id and a.kind != "announce"]
