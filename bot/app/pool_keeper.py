"""Keeping each branch's warm pool full and fresh: the leader's job, every second.

Each round reads the pools once (their islands, the people's islands waiting for room, the
``pools`` rows) and, per branch, carries out ``bot.domain.pool.plan``: pool islands that
failed, got too old or booted old code are recycled (stopped: the lifecycle deletes their pods
and frees their ports), some are stopped to make room for a person's island the scheduler
cannot place, and what is missing is started as new pool islands, which the lifecycle loop
then creates, watches and probes like any other. Every write is fenced by the leader's lease.
``status`` is what ``/island pool`` and the board show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.domain.durations import format_duration
from bot.domain.errors import Forbidden, Refusal, UserError
from bot.domain.pool import (
    HOLD_AFTER,
    MAX_POOL_SIZE,
    Freshness,
    PoolFacts,
    PoolSpec,
    PoolStatus,
    Recycle,
    Streak,
    plan,
    streak,
)
from bot.domain.records import Audit, Caller, Outcome
from bot.domain.states import IslandState
from bot.domain.time_source import Clock, utcnow
from bot.infra import metrics
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.storage.audit import AuditLog
from bot.infra.storage.pools import PoolMembers, PoolRow, PoolStore

log = logging.getLogger(__name__)

BACKSTOP = timedelta(hours=1)  # a pool island expires this long after its max age


class PoolKeeper:
    def __init__(
        self,
        *,
        store: PoolStore,
        templates: TemplateSet,
        sizes: Mapping[str, int] | None = None,
        admins: frozenset[str] = frozenset(),
        clock: Clock = utcnow,
        poke: Callable[[], None] | None = None,
    ) -> None:
        """``sizes``: the deployment's (``ISLANDBOT_POOLS``), over the branch profiles'.
        ``poke``: asks the lifecycle loop for a tick (new pool islands to create)."""
        self.store = store
        self.templates = templates
        self.sizes = dict(sizes or {})
        self.admins = admins
        self.clock = clock
        self.poke = poke or (lambda: None)
        self.audit = AuditLog(store.db, clock=clock)
        # people's islands a pool island was stopped for: each gets one, so that one island
        # too big for any node cannot drain the pool (this leader's memory: a new leader may
        # stop one more for it)
        self._made_room_for: set[int] = set()
        self._short_of_ports: set[str] = set()  # branches told to be short of port blocks
        self._history_seen: dict[str, object] = {}  # what each branch's streak was read at

    def spec(self, branch: str, row: PoolRow | None) -> tuple[PoolSpec, str]:
        """The branch's pool in force, and where its size comes from."""
        profile = self.templates.profile(branch).pool
        if row is not None and row.size is not None:
            return PoolSpec(row.size, profile.max_age), "chat"
        if branch in self.sizes:
            return PoolSpec(self.sizes[branch], profile.max_age), "setting"
        return profile, "profile"

    # ---- the leader's round -------------------------------------------------------------------

    def keep(self) -> dict[str, tuple[int, int]]:
        """One round over every branch; returns {branch: (started, recycled)} of those that
        changed."""
        now = self.clock()
        rows = self.store.rows()
        members = self.store.members()
        waiting = self.store.waiting_for_room()
        self._made_room_for &= {i for ids in waiting.values() for i in ids}
        done: dict[str, tuple[int, int]] = {}
        known = set(self.templates.branches)
        for branch in sorted(known | set(members)):
            pool = members.get(branch, PoolMembers())
            row = rows.get(branch)
            if branch in known:
                spec, _ = self.spec(branch, row)
                fresh = Freshness(
                    spec.max_age,
                    None if row is None else row.code_version,
                    None if row is None else row.refreshed_at,
                )
                size = spec.size
            else:  # a branch whose profile is gone: its pool goes with it
                spec, fresh, size = PoolSpec(), Freshness(timedelta(days=3650)), 0
            unserved = [i for i in waiting.get(branch, ()) if i not in self._made_room_for]
            failing = self._streak(branch, row, size, now, pool)
            the_plan = plan(PoolFacts(size, fresh, pool.members, len(unserved), failing), now)
            if the_plan.is_empty:
                continue
            recycled = self._recycle(branch, pool, the_plan.recycle)
            placed = {m.id for m in pool.members if m.placed}
            for_room = sum(1 for i, why in the_plan.recycle if why == Recycle.ROOM and i in placed)
            self._made_room_for.update(unserved[:for_room])
            started = 0
            if the_plan.start:
                started = len(
                    self.store.fill(
                        branch,
                        the_plan.start,
                        size=self.templates.block_size,
                        lives=spec.max_age + BACKSTOP,
                        target=size,
                    )
                )
                if started < the_plan.start and branch not in self._short_of_ports:
                    self._short_of_ports.add(branch)  # said once, until it fills again
                    log.warning(
                        "%s pool: %d of %d islands started; no free port block for the rest",
                        branch,
                        started,
                        the_plan.start,
                    )
                elif started == the_plan.start:
                    self._short_of_ports.discard(branch)
            if started or recycled:
                done[branch] = (started, recycled)
        if done:
            log.info("warm pools: %s", {b: f"+{s} -{r}" for b, (s, r) in done.items()})
            self.poke()
        return done

    def _streak(
        self, branch: str, row: PoolRow | None, size: int, now: datetime, pool: PoolMembers
    ) -> Streak:
        """The branch's failure streak as its pool islands read now, noted in its row when it
        changed (so that every replica shows it, and the next leader goes on from it). Read
        again only when the pool's islands or its row changed since the last reading (an
        island failing, booting, stopping or claimed changes them)."""
        was = Streak() if row is None else row.streak
        if not size:
            return was  # no pool: nothing to hold
        seen = (
            tuple((m.id, m.state) for m in pool.members),
            pool.stopping,
            None if row is None else (row.streak_from_id, was),
        )
        if self._history_seen.get(branch) == seen:
            return was
        self._history_seen[branch] = seen
        failures, last_id = streak(
            self.store.history(branch, after=None if row is None else row.streak_from_id)
        )
        found = was.now(failures, last_id, now)
        if found == was:
            return found
        self.store.note_streak(branch, found)
        if found.held_until is not None and found.held_until != was.held_until:
            (log.info if was.held(now) else log.warning)(
                "%s pool: %d pool islands failed in a row before they were ready; starting "
                "none for %s, then one at a time until one is ready",
                branch,
                found.failures,
                format_duration(found.held_until - now),
            )
        elif not found.failures and was.failures >= HOLD_AFTER:
            log.info("%s pool: a pool island is ready again; filling the pool", branch)
        return found

    def _recycle(
        self, branch: str, pool: PoolMembers, recycle: tuple[tuple[int, Recycle], ...]
    ) -> int:
        if not recycle:
            return 0
        states = {m.id: m.state for m in pool.members}
        stopped = self.store.recycle([(i, states[i], why) for i, why in recycle])
        for island_id, why in recycle:
            if island_id in stopped:
                metrics.POOL_RECYCLED.labels(branch=branch, why=why.value).inc()
                if why == Recycle.FAILED:
                    log.warning("%s pool: island %d failed; stopping it", branch, island_id)
        return len(stopped)

    # ---- looking and steering ------------------------------------------------------------------

    def status(self) -> list[PoolStatus]:
        """Every branch's pool (those with none in force and no islands left out)."""
        rows = self.store.rows()
        members = self.store.members()
        today = self.store.today()
        shown = []
        for branch in self.templates.branches:
            row = rows.get(branch)
            spec, source = self.spec(branch, row)
            pool = members.get(branch, PoolMembers())
            day = today.get(branch)
            if not spec.size and not pool.members and not pool.stopping and day is None:
                continue
            states = [m.state for m in pool.members]
            shown.append(
                PoolStatus(
                    branch,
                    spec.size,
                    source,
                    None if row is None or source != "chat" else row.size_set_by,
                    spec.max_age,
                    states.count(IslandState.READY),
                    sum(s not in (IslandState.READY, IslandState.FAILED) for s in states),
                    pool.stopping,
                    states.count(IslandState.FAILED),
                    0 if day is None else day.claims,
                    0 if day is None else day.misses,
                    None if row is None else row.code_version,
                    None if row is None else row.refreshed_at,
                    Streak() if row is None else row.streak,
                )
            )
        return shown

    def filling(self) -> bool:
        """Whether some branch's pool is below its size (its keeper has islands to start, or
        started ones not ready yet), unless people wait for its room."""
        waiting = self.store.waiting_for_room()
        now = self.clock()
        for status in self.status():
            if waiting.get(status.branch) or status.streak.held(now):
                continue
            if status.ready < status.size or status.starting or status.stopping:
                return True
        return False

    def ready_counts(self) -> list[tuple[str, int]]:
        """(branch, ready pool islands), for the metrics gauge."""
        members = self.store.members()
        return [(b, members.get(b, PoolMembers()).ready) for b in self.templates.branches]

    def _admin(self, caller: Caller, action: str, detail: Mapping[str, object]) -> None:
        if caller.user_id in self.admins:
            return
        refused = Forbidden(Refusal.NO_POOL_ADMIN, who=sorted(self.admins))
        self.audit.append(
            Audit(caller.user_id, action, Outcome.REFUSED, detail={**detail, **refused.data()})
        )
        raise refused

    def set_size(self, caller: Caller, branch: str, size: int | None) -> PoolStatus:
        """An admin sets the branch's pool size (None: back to the deployment's)."""
        self._admin(caller, "pool:size", {"branch": branch, "size": size})
        self.templates.profile(branch)  # an unknown branch is refused (UnknownBranch)
        if size is not None and not 0 <= size <= MAX_POOL_SIZE:
            raise UserError(Refusal.POOL_SIZE, size=size, limit=MAX_POOL_SIZE)
        self.store.set_size(branch, size, by=caller.user_id)
        self.poke()
        return self.status_of(branch)

    def status_of(self, branch: str) -> PoolStatus:
        """The branch's pool, also when it has none in force."""
        found = [s for s in self.status() if s.branch == branch]
        if found:
            return found[0]
        row = self.store.rows().get(branch)
        spec, source = self.spec(branch, row)
        return PoolStatus(
            branch,
            spec.size,
            source,
            None,
            spec.max_age,
            *(0, 0, 0, 0, 0, 0),
            None,
            None,
            Streak() if row is None else row.streak,
        )

    def refresh(self, caller: Caller | None, branch: str) -> int:
        """The branch's code changed: its pool islands started before now are recycled (not
        handed out from now on). ``caller`` None: CI through the HTTP API (authenticated
        there). Returns how many islands that is."""
        actor = "api" if caller is None else caller.user_id
        if caller is not None:
            self._admin(caller, "pool:refresh", {"branch": branch})
        self.templates.profile(branch)
        stale = self.store.refresh(branch, by=actor)
        self.poke()
        return stale
