"""Keeping to a chat's limits, for every adapter: a FIFO queue and worker per conversation,
paced at the adapter's posts a second after a small burst (Slack: a little under one a second
per channel; Lark: four, under its five in any second), and each API method kept under its
calls a minute for the whole workspace or app (``TierPacer``, given the adapter's table)."""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.chat.output import AlwaysAlive, ChatError, Liveness

T = TypeVar("T")
QUEUE_WAIT_S = 300.0  # the longest a call waits for its turn in its conversation's queue


@dataclass
class _Pacer:
    """A token bucket: ``rate`` per second, ``burst`` at once."""

    rate: float
    burst: float
    tokens: float = 0.0
    at: float = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            time.sleep((1 - self.tokens) / self.rate)
            self.tokens = 1.0
            self.at = time.monotonic()
        self.tokens -= 1

    def take(self) -> bool:
        """A token if one is there now (True), else False, without waiting."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class TierPacer:
    """A token bucket per method (``per_minute``: the chat's limit of each method, calls a
    minute; a method not in it is not paced), shared by every thread of the bot: a call waits
    for its method's token, so the bot stays under the chat's limits instead of collecting
    429s. The burst is ``burst_s`` seconds' worth of the rate."""

    def __init__(
        self,
        per_minute: Mapping[str, int],
        *,
        share: float = 0.9,
        burst_s: float = 5.0,
    ) -> None:
        # a lock per method: callers of one method take its tokens one at a time (none
        # overdraws), and a method waiting for its tier never holds up another's calls
        self._pacers = {
            method: (threading.Lock(), _Pacer(n * share / 60, max(1.0, n * share / 60 * burst_s)))
            for method, n in per_minute.items()
        }

    def wait(self, method: str) -> None:
        paced = self._pacers.get(method)
        if paced is None:
            return
        lock, pacer = paced
        with lock:
            pacer.wait()

    def try_take(self, method: str) -> bool:
        """Whether a call of ``method`` may be made now, without waiting (its token taken)."""
        paced = self._pacers.get(method)
        if paced is None:
            return True
        lock, pacer = paced
        if not lock.acquire(blocking=False):  # a caller waits for this tier: none to spare
            return False
        try:
            return pacer.take()
        finally:
            lock.release()


# a queued call: what to call, whether paced, its result, the liveness token it was queued with
Queued = tuple[Callable[[], Any], bool, Future[Any], int]

NOT_LIVE = (
    "not sent: this process may have been taken for dead since the call was queued (paused, "
    "or cut off from its database); what it was doing may be another replica's now"
)
_calling = threading.local()  # the liveness check of the call a queue's worker is making


def still_live() -> bool:
    """Whether this process still holds what it held when the call being made on this thread
    was queued (True outside a queued call). The SDK's retries ask it before each retry, so a
    process taken for dead while a call was being retried (a long ``Retry-After``, a pause)
    stops there rather than post what another replica has taken over."""
    check: Callable[[], bool] | None = getattr(_calling, "check", None)
    return check is None or check()


class ChannelQueues:
    """A FIFO queue and worker thread per channel; idle workers end after ``idle_s``."""

    def __init__(
        self,
        *,
        rate: float = 0.9,
        burst: float = 2.0,
        idle_s: float = 30.0,
        liveness: Liveness | None = None,
        name: str = "chat",
    ) -> None:
        """``name``: the workers' thread names begin with it. ``liveness``: a call is made
        only while this process still holds what it held when the call was queued (a call
        queued before a pause that let another replica take the work over is dropped with a
        ``ChatError``, not made twice)."""
        self.rate = rate
        self.burst = burst
        self.idle_s = idle_s
        self.name = name
        self.liveness: Liveness = liveness or AlwaysAlive()
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[Queued]] = {}
        self._pacers: dict[str, _Pacer] = {}

    def submit(self, channel: str, call: Callable[[], T], *, paced: bool = True) -> Future[T]:
        """Run ``call`` in the channel's order; ``paced`` calls take a token (posts do,
        edits of a message do not)."""
        future: Future[T] = Future()
        token = self.liveness.token()
        with self._lock:
            q = self._queues.get(channel)
            if q is None:
                q = self._queues[channel] = queue.Queue()
                self._pacers.setdefault(channel, _Pacer(self.rate, self.burst, self.burst, 0.0))
                threading.Thread(
                    target=self._drain,
                    args=(channel, q),
                    name=f"{self.name}-{channel}",
                    daemon=True,
                ).start()
            q.put((call, paced, future, token))
        return future

    def run(
        self,
        channel: str,
        call: Callable[[], T],
        *,
        paced: bool = True,
        timeout_s: float = QUEUE_WAIT_S,
    ) -> T:
        """``submit`` and wait for the result: ``ChatError`` if it has not come within
        ``timeout_s`` (the queue ahead of it is that long, or its worker is stuck)."""
        future = self.submit(channel, call, paced=paced)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise ChatError(f"{channel}: no answer within {timeout_s:.0f} s") from None

    def _drain(self, channel: str, q: queue.Queue[Queued]) -> None:
        pacer = self._pacers[channel]
        while True:
            try:
                call, paced, future, token = q.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if q.empty():  # nothing was put while we looked: retire this worker
                        del self._queues[channel]
                        return
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:  # whatever happens to one call, the channel's worker goes on with the next
                if paced:
                    pacer.wait()
                if not self.liveness.holds(token):
                    raise ChatError(f"{channel}: {NOT_LIVE}")  # noqa: TRY301 - told as any failure
                _calling.check = functools.partial(self.liveness.holds, token)
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)
            finally:
                _calling.check = None
