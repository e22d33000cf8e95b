"""TCP probes of the islands' server ports for the tick.

Islands on their way to ready are probed on every tick. Ready islands are probed in rounds of
their own (``probe_ready``, a job of the service, so probing thousands of ports never slows a
tick), the most overdue first, each about every ``ready_probe_interval``; the tick uses what
the rounds found since it last looked. Each probe's result is used by exactly one tick: an
island whose last result no tick has used yet is not probed again until one has (so a slow tick
never loses a failed probe, and a tick that found no probe of an island learns nothing of it).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from bot.domain.records import IslandRecord
from bot.domain.states import IslandState
from bot.infra import metrics
from bot.infra.kubernetes.views import ClusterSnapshot, PodView

Target = tuple[str, int]
Prober = Callable[[list[Target]], Mapping[Target, bool]]
SERVER_PORT_NAME = "server-port"


def server_port_index(port_names: Sequence[str]) -> int:
    """Which of an island's ports its readiness is probed on: ``server-port``, else the last."""
    if SERVER_PORT_NAME in port_names:
        return list(port_names).index(SERVER_PORT_NAME)
    return len(port_names) - 1


class Probes:
    def __init__(
        self,
        prober: Prober,
        *,
        port_names: Sequence[str],
        ready_interval: timedelta,
        tick_interval: timedelta,
    ) -> None:
        self.prober = prober
        self.server_index = server_port_index(port_names)
        self.ready_interval = ready_interval
        self.tick_interval = tick_interval
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}  # island id -> monotonic time, ready islands
        self._ready_targets: dict[int, Target] = {}  # ready islands at the last tick
        self._ready_results: dict[int, bool] = {}  # found by probe rounds, not yet used

    def target(self, island: IslandRecord, view: PodView | None) -> Target | None:
        if view is None or view.host_ip is None:
            return None
        return view.host_ip, island.first_port + self.server_index

    def for_tick(
        self, islands: Sequence[IslandRecord], snapshot: ClusterSnapshot, *, ready_inline: bool
    ) -> tuple[dict[Target, bool], int, float]:
        """Probe the islands about to be ready; add what the ready rounds found. Returns
        (results, how many were probed now, seconds it took). ``ready_inline``: run a ready
        round first (no service runs them apart)."""
        due: list[Target] = []
        ready: dict[int, Target] = {}
        for island in islands:
            target = self.target(island, snapshot.pods.get(island.id))
            if target is None:
                continue
            if island.state in (IslandState.SCHEDULED, IslandState.RUNNING):
                due.append(target)
            elif island.state == IslandState.READY:
                ready[island.id] = target
        with self._lock:
            self._ready_targets = ready
            if len(self._last) > len(ready):  # islands no longer ready
                self._last = {k: v for k, v in self._last.items() if k in ready}
        if ready_inline:
            self.probe_ready()
        began = time.monotonic()
        results = dict(self.prober(due)) if due else {}
        with self._lock:
            for island_id, ok in self._ready_results.items():
                if island_id in ready:
                    results[ready[island_id]] = ok
            self._ready_results = {}
        return results, len(due), time.monotonic() - began

    def probe_ready(self) -> int:
        """One round of probes of ready islands: the most overdue first, no more than their
        share per round. Results wait for the next tick (an island whose result still waits is
        left out). Returns how many were probed."""
        mono = time.monotonic()
        interval = self.ready_interval.total_seconds()
        with self._lock:
            targets = dict(self._ready_targets)
            overdue = []
            for island_id, target in targets.items():
                last = self._last.setdefault(island_id, mono)  # first sight: now
                if mono - last >= interval and island_id not in self._ready_results:
                    overdue.append((last, island_id, target))
            rounds = max(interval / self.tick_interval.total_seconds(), 1)
            share = max(50, math.ceil(len(targets) / rounds * 1.5))
            chosen = heapq.nsmallest(share, overdue)
            for _last, island_id, _target in chosen:
                self._last[island_id] = mono
        if not chosen:
            return 0
        found = self.prober([target for _l, _i, target in chosen])
        with self._lock:
            for _last, island_id, target in chosen:
                self._ready_results[island_id] = bool(found.get(target))
        metrics.PROBE_FAILURES.inc(sum(1 for _l, _i, target in chosen if not found.get(target)))
        return len(chosen)

    def answering(self, waiting: Sequence[tuple[str | None, int]]) -> bool:
        """Does any of these (host, first port) islands answer on its server port?"""
        targets = [(h, p + self.server_index) for h, p in waiting if h is not None]
        return bool(targets) and any(self.prober(targets).values())
