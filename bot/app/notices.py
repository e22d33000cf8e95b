"""Where lifecycle notices go: a small port the chat adapters implement.

An ``Announcement`` is one message about one island: posted in the island's thread (or the
channel when it has none), optionally also broadcast to the channel, and it carries the status
line the island's root message should now show.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


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


class Notifier(Protocol):
    def announce(self, announcement: Announcement) -> None:
        """Deliver it, or raise: the outbox keeps it and tries again on the next tick."""


class JsonLinesNotifier:
    """Appends each announcement as one JSON line to a file, once per key (``islandbot
    reconcile --notices-file``: a headless loop whose notices other tools can read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self._seen.add(json.loads(line)["key"])

    def announce(self, announcement: Announcement) -> None:
        with self._lock:
            if announcement.key in self._seen:
                return
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(announcement), ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            self._seen.add(announcement.key)


class LogNotifier:
    """Logs announcements (a loop running without any chat)."""

    def announce(self, announcement: Announcement) -> None:
        log.info(
            "notice for island %d (%s): %s",
            announcement.island_id,
            announcement.kind,
            announcement.text,
        )


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
