"""Keeps root messages (an island's, or a digest of islands) current, coalescing rewrites.

Every notice makes its island's root message stale; rewriting it at once for each would spend
a chat's scarcest budget (Slack: ``chat.update`` is Tier 3, about 50 a minute for the whole
workspace) on states that are overtaken a second later. So a stale message is only *marked*;
one worker rewrites marked messages oldest mark first, each from the latest state it renders
then, and skips a rewrite that would show what the message already shows. A message marked
again while being rewritten is rewritten once more afterwards; marks made while the chat asks
to wait (``ChatError.retry_after``) are kept until it may be called again.

What is lost if the process dies: only marks (the message shows an older state until the
island's next notice marks it again); every notice itself is in the outbox.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.chat.output import Blocks, ChatError, ChatOutput
from bot.domain.errors import DatabaseUnavailable, IslandbotError

log = logging.getLogger(__name__)

Rendered = tuple[str, Blocks, Mapping[str, Any]]  # fallback text, blocks, meta
Render = Callable[[str, str], Rendered | None]  # (channel, ts) -> what it should show


class RootRefresher:
    def __init__(
        self,
        sender: ChatOutput,
        render: Render,
        *,
        linger_s: float = 0.25,
        max_wait_s: float = 10,
        retry_s: float = 5,
    ) -> None:
        """``linger_s``: how long a first mark waits for more before the worker starts (the
        notices of one delivery round arrive within it); ``max_wait_s``: the longest a
        ``retry_after`` is waited in place; ``retry_s``: how long a message whose state cannot
        be read now (the database unreachable) waits before it is tried again."""
        self.sender = sender
        self.render = render
        self.linger_s = linger_s
        self.max_wait_s = max_wait_s
        self.retry_s = retry_s
        self._lock = threading.Condition()
        self._marked: dict[tuple[str, str], float] = {}  # message -> when it is due
        self._busy: tuple[str, str] | None = None
        self._shown: dict[tuple[str, str], str] = {}  # what each message was last rewritten to
        self._worker: threading.Thread | None = None
        self._closed = False
        self.rewrites = 0  # calls made (for tests and benchmarks)

    def mark(self, channel: str, ts: str, *, after_s: float = 0.0) -> None:
        """``ts`` in ``channel`` shows an old state: rewrite it (not before ``after_s``)."""
        with self._lock:
            if self._closed:
                return
            self._marked.setdefault((channel, ts), time.monotonic() + after_s)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="root-refresh", daemon=True)
                self._worker.start()
            self._lock.notify_all()

    def remember(self, channel: str, ts: str, rendered: Rendered) -> None:
        """A message was just posted showing ``rendered`` (no rewrite needed for it)."""
        with self._lock:
            self._shown[(channel, ts)] = _fingerprint(rendered)

    def idle(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is marked or being rewritten; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._marked or self._busy is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Rewrite what is marked (for up to ``timeout``), then stop."""
        self.idle(timeout)
        with self._lock:
            self._closed = True
            self._marked.clear()
            self._lock.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout=2)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._marked and not self._closed:
                    self._lock.wait(1.0)
                if self._closed:
                    return
                target, marked_at = min(self._marked.items(), key=lambda item: item[1])
                wait = marked_at + self.linger_s - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                del self._marked[target]
                self._busy = target
            try:
                self._rewrite(target)
            except Exception:  # a bug of ours: this message is left, the worker goes on
                log.exception("root message %s in %s not updated", target[1], target[0])
            finally:
                with self._lock:
                    self._busy = None
                    self._lock.notify_all()

    def _rewrite(self, target: tuple[str, str]) -> None:
        channel, ts = target
        try:
            rendered = self.render(channel, ts)
            if rendered is None:
                return
            fingerprint = _fingerprint(rendered)
            with self._lock:
                if self._shown.get(target) == fingerprint:
                    return  # it shows this already
            text, blocks, meta = rendered
            self.rewrites += 1
            self.sender.update(channel, ts, text, blocks=blocks, meta=meta)
            with self._lock:
                self._shown[target] = fingerprint
        except ChatError as exc:
            log.warning("root message %s in %s not updated: %s", ts, channel, exc)
            if exc.retry_after:  # the chat asked to wait: mark it again after that
                time.sleep(min(float(exc.retry_after), self.max_wait_s))
                self.mark(channel, ts)
        except DatabaseUnavailable:  # told once by the database boundary: try again later
            self.mark(channel, ts, after_s=self.retry_s)
        except IslandbotError as exc:
            log.warning("root message %s in %s not updated: %s", ts, channel, exc)


def _fingerprint(rendered: Rendered) -> str:
    text, blocks, meta = rendered
    raw = json.dumps([text, list(blocks), dict(meta)], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
