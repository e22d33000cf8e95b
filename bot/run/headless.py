"""Where notices go when the loop runs without a chat (``islandbot reconcile``): the log, or a
JSON-lines file other tools can read."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path

from bot.app.notices import Announcement, Posted

log = logging.getLogger(__name__)


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

    def announce(self, announcement: Announcement) -> Posted | None:
        with self._lock:
            if announcement.key in self._seen:
                return None
            with self.path.open("a", encoding="utf-8") as out:
                record = {k: v for k, v in asdict(announcement).items() if k != "words"}
                out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                out.flush()
                os.fsync(out.fileno())
            self._seen.add(announcement.key)
        return None

    def recorded(self, posted: Posted) -> None:
        """Never called: nothing is posted anywhere later notices would refer to."""


class LogNotifier:
    """Logs announcements (a loop running without any chat)."""

    def announce(self, announcement: Announcement) -> Posted | None:
        log.info(
            "notice for island %d (%s): %s",
            announcement.island_id,
            announcement.kind,
            announcement.text,
        )
        return None

    def recorded(self, posted: Posted) -> None:
        """Never called: nothing is posted anywhere later notices would refer to."""
