"""A paced chat's channels' parts of a delivery round (``bot.app.reconcile.deliver``): each
channel's own posts (its digests, the threads of its islands with a root message of their own)
going out one after another on a worker of their own, beside the round, and what the rounds
after need to know of them: which channels are busy, with which islands (``now``); that a
round left islands for a part (``wait_for``), so that the deliveries are woken when it is
done (``wake``), never after one that failed or that nobody waited for; what they delivered
(``counted``); and, before the process goes, waiting for them (``settle``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from bot.domain.errors import log_failure

log = logging.getLogger("bot.app.reconcile.deliver")  # one logger for the delivery path

# the channels whose part of an earlier round is still going on: the islands whose digest it is
# posting, and those of their own whose notices it is delivering
Parts = dict[str, tuple[set[int], set[int]]]


class ChannelParts:
    def __init__(self, *, threads: int, wake: Callable[[], None]) -> None:
        self.threads = threads
        self.wake = wake
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[str, tuple[Future[int], set[int], set[int]]] = {}
        self._finished = 0  # notices the parts delivered, not counted yet
        self._waiting: set[str] = set()  # channels whose islands a round left for their part

    def start(
        self, channel: str, work: Callable[[], int], *, digests: set[int], own: set[int]
    ) -> None:
        """The channel's part of this round: ``work``, posting the digests of ``digests``
        and delivering the notices of ``own``."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="notices-channel")
            future = self._pool.submit(work)
            self._inflight[channel] = (future, digests, own)
        future.add_done_callback(lambda done: self._done(channel, done))

    def now(self) -> Parts:
        """The channels whose part is still going on, with their islands."""
        with self._lock:
            return {
                channel: (set(digests), set(own))
                for channel, (work, digests, own) in self._inflight.items()
                if not work.done()  # done: ``_done`` is clearing it
            }

    def wait_for(self, channel: str) -> None:
        """A round left islands of the channel for its part to be done: wake the deliveries
        then, or now if it is done already."""
        with self._lock:
            inflight = self._inflight.get(channel)
            if inflight is not None and not inflight[0].done():
                self._waiting.add(channel)
                return
        self.wake()

    def counted(self) -> int:
        """The notices the parts delivered since this was last asked."""
        with self._lock:
            finished, self._finished = self._finished, 0
        return finished

    def settle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the parts going on; whether they are done."""
        with self._lock:
            works = [work for work, _digests, _own in self._inflight.values()]
        return not wait(works, timeout=timeout).not_done

    def close(self) -> None:
        with self._lock:  # taken out under the lock, waited for outside it (parts take it)
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _done(self, channel: str, work: Future[int]) -> None:
        """A part is done: counted (or its failure told), cleared, and the deliveries woken
        when a round left islands for it."""
        failure = work.exception()
        with self._lock:
            if self._inflight.get(channel, (None,))[0] is work:
                del self._inflight[channel]
            if failure is None:
                self._finished += work.result()
            waited = channel in self._waiting
            self._waiting.discard(channel)
        if failure is not None:  # the database away: told once, where it is noticed
            log_failure(log, f"delivering in {channel} failed", failure)
        elif waited:
            self.wake()
