"""Warm pools: islands started ahead of demand, one pool per branch, handed out whole (pure).

A pool island is a real island (an id, a port block, a pod from the branch's template at real
time, registered and probed like any other) owned by ``POOL_OWNER`` until someone claims it: a
start the pool can serve (no ``set``: the pod is already made) takes the oldest fresh ready one
in one guarded write, and its owner, expiry and note become the person's. ``plan`` is what the
keeper does about one branch's pool each round: which members to recycle, and how many to
start. It never starts one while a person's island of the branch waits for room, and it stops
pool islands to make room for people (the person first, always). A branch whose pool islands
keep failing before they are ever ready (an image that does not pull, a server that crashes at
boot, a pod the cluster refuses) is not fed new ones every second: after ``HOLD_AFTER``
failures in a row it waits (``backoff``), then starts one at a time until one is ready.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.states import IslandState

POOL_OWNER = "islandbot-pool"  # the owner id of unclaimed pool islands (a valid label value)
POOL_OWNER_NAME = "pool"  # their owner name: pod names read island-pool-<branch>-<id>
CLAIM_CLOCK = "claim"  # the kind of the clock request that sets a claimed island's clock
MAX_POOL_SIZE = 100
DEFAULT_MAX_AGE = timedelta(hours=24)
HOLD_AFTER = 3  # pool islands failed in a row before the branch's pool holds off
FIRST_HOLD = timedelta(seconds=30)
LONGEST_HOLD = timedelta(minutes=15)


@dataclass(frozen=True)
class PoolSpec:
    """A branch's pool: how many warm islands to keep, and how old one may get."""

    size: int = 0
    max_age: timedelta = DEFAULT_MAX_AGE

    def __post_init__(self) -> None:
        if not 0 <= self.size <= MAX_POOL_SIZE:
            raise ValueError(f"a pool's size is 0-{MAX_POOL_SIZE}, not {self.size}")
        if self.max_age < timedelta(minutes=5):
            raise ValueError(f"a pool's max_age is at least 5m, not {self.max_age}")


class Miss(StrEnum):
    """Why a start of a branch with a pool did not get a warm island (said to the person)."""

    EMPTY = "empty"  # none ready and fresh: all taken, or still starting
    OPTIONS = "options"  # ``set KEY=VALUE`` changes the pod, which is already made


@dataclass(frozen=True)
class PoolUse:
    """How a start may use its branch's pool (the branch has one in force)."""

    size: int  # the deployment's size of the branch's pool (an admin's from chat wins)
    servable: bool  # a warm island can serve it (``servable``); False: a miss, said so
    max_age: timedelta  # a pool island older than this is not handed out
    at: datetime | None = None  # the clock asked for at start: set on the claimed island


class Recycle(StrEnum):
    """Why a pool island is stopped instead of handed out."""

    FAILED = "failed"  # it failed (crashed, OOMKilled, never ready, its node went away)
    TOO_OLD = "too_old"  # older than the pool's max_age
    OLD_CODE = "old_code"  # it booted code older than the branch's newest registered
    REFRESHED = "refreshed"  # started before the branch's code was said to have changed
    SHRUNK = "shrunk"  # the pool is smaller now
    ROOM = "room"  # its room is needed by a person's island waiting to be scheduled


@dataclass(frozen=True)
class Member:
    """One live pool island as the keeper sees it."""

    id: int
    state: IslandState
    created_at: datetime
    code_version: str | None  # what it registered with (None: not registered yet)
    placed: bool  # bound to a node (holds room there)
    unschedulable: bool = False  # not placed: the scheduler found no room for it


@dataclass(frozen=True)
class Freshness:
    """What makes a pool island of a branch too old to hand out."""

    max_age: timedelta
    code_version: str | None = None  # the newest the branch's islands registered with
    refreshed_at: datetime | None = None  # the branch's code was said to have changed then

    def stale(self, member: Member, now: datetime) -> Recycle | None:
        if member.created_at <= now - self.max_age:
            return Recycle.TOO_OLD
        if self.refreshed_at is not None and member.created_at < self.refreshed_at:
            return Recycle.REFRESHED
        if (
            self.code_version is not None
            and member.code_version is not None
            and member.code_version != self.code_version
        ):
            return Recycle.OLD_CODE
        return None


@dataclass(frozen=True)
class Streak:
    """A branch's pool islands that failed before ever being ready, in a row: none started
    after the newest of them has been ready since (``streak``). ``held_until``: no new pool
    island is started before then (the keeper's clock)."""

    failures: int = 0
    last_id: int | None = None  # the newest of them (ids grow: a later island has a larger one)
    held_until: datetime | None = None

    def held(self, now: datetime) -> bool:
        return self.held_until is not None and now < self.held_until

    def now(self, failures: int, last_id: int | None, at: datetime) -> Streak:
        """The streak as the branch's history reads now (``streak``), this being the one
        noted before: more failures, or a newer one, from ``HOLD_AFTER`` on hold the pool
        (``backoff``) from ``at``, never for less than a hold in force; otherwise the hold
        stays as it is; none left ends it."""
        if not failures:
            return Streak()
        held_until = self.held_until
        if failures > self.failures or (last_id or 0) > (self.last_id or 0):
            hold = backoff(failures)
            if hold is not None:
                held_until = max(held_until or at, at + hold)
        return Streak(failures, last_id, held_until)


def streak(history: Sequence[tuple[int, bool | None]]) -> tuple[int, int | None]:
    """(failures in a row, the newest failed id) from a branch's latest pool islands, newest
    first, each (id, True: it was ready once, False: it failed before, None: neither yet, or
    stopped without failing: recycled while starting). An island that was ready once (claimed
    since, or failed later: evicted, OOMKilled) shows the branch boots, and ends the streak."""
    failures, last = 0, None
    for island_id, ok in history:
        if ok:
            break
        if ok is False:
            failures += 1
            last = island_id if last is None else last
    return failures, last


def backoff(failures: int) -> timedelta | None:
    """How long a pool holds off after ``failures`` of its islands failed in a row: not at
    all below ``HOLD_AFTER`` (a node going away fails a few at once), then 30 s, doubling with
    each further failure, at most 15 minutes."""
    if failures < HOLD_AFTER:
        return None
    doubled: timedelta = FIRST_HOLD * 2 ** min(failures - HOLD_AFTER, 10)
    return min(doubled, LONGEST_HOLD)


@dataclass(frozen=True)
class PoolFacts:
    size: int  # the pool's size in force
    fresh: Freshness
    members: Sequence[Member]  # live and not stopping
    waiting_for_room: int  # people's islands of the branch short of room, not yet made room for
    streak: Streak = Streak()  # its pool islands failing in a row


@dataclass(frozen=True)
class PoolPlan:
    start: int = 0
    recycle: tuple[tuple[int, Recycle], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.start and not self.recycle


def plan(facts: PoolFacts, now: datetime) -> PoolPlan:
    """One round for one branch's pool. Recycle what failed or went stale. For people whose
    islands are short of room (``waiting_for_room``: each counted once, until room was made
    for it): stop the pool islands that wait for room themselves (they would take room freed
    before the person's), and one placed pool island per such person, those stale or failed
    being stopped counting. Shrink to the size. Start what is missing, unless people wait for
    room or pool islands do (the cluster is full: more would only wait and fail), or the
    branch's pool islands keep failing (``Streak``): then none while it holds off, and after
    that one at a time, until one boots."""
    recycle: list[tuple[int, Recycle]] = []
    kept: list[Member] = []
    freed = 0  # room on nodes that recycling already frees
    for member in facts.members:
        if member.state == IslandState.FAILED:
            recycle.append((member.id, Recycle.FAILED))
            freed += member.placed
            continue
        why = facts.fresh.stale(member, now)
        if why is not None:
            recycle.append((member.id, why))
            freed += member.placed
        else:
            kept.append(member)
    kept.sort(key=_order)
    if facts.waiting_for_room:
        for member in [m for m in kept if m.unschedulable and not m.placed]:
            recycle.append((member.id, Recycle.ROOM))
            kept.remove(member)
    room_needed = max(facts.waiting_for_room - freed, 0)
    placed = [m for m in kept if m.placed]
    for member in placed[:room_needed]:
        recycle.append((member.id, Recycle.ROOM))
        kept.remove(member)
    excess = len(kept) - facts.size
    for member in kept[: max(excess, 0)]:
        recycle.append((member.id, Recycle.SHRUNK))
    alive = min(len(kept), facts.size)
    crowded = facts.waiting_for_room or any(m.unschedulable and not m.placed for m in kept)
    start = 0 if crowded else max(facts.size - alive, 0)
    if facts.streak.held(now):
        start = 0
    elif facts.streak.failures >= HOLD_AFTER:  # trying again: one at a time until one boots
        start = 0 if any(m.state != IslandState.READY for m in kept) else min(start, 1)
    return PoolPlan(start, tuple(recycle))


def short_of_room(message: str | None) -> bool:
    """The scheduler's reason says the nodes lack resources (memory, CPU): what stopping a
    pool island of the branch can give (not a node selector, a taint or NotReady nodes)."""
    return message is not None and "Insufficient " in message


def _order(member: Member) -> tuple[int, float]:
    """Which member goes first when some must: those still starting (least spent on them),
    youngest first; then ready ones, youngest first (claims take the oldest)."""
    return (member.state == IslandState.READY, -member.created_at.timestamp())


def servable(overrides: Sequence[tuple[str, str]]) -> bool:
    """Can a warm island serve a start with these ``set`` overrides? Only without any: they
    change the pod, which is already made (``at``, ``ttl`` and ``note`` are the island's)."""
    return not overrides


@dataclass(frozen=True)
class PoolStatus:
    """One branch's pool, as people are shown it."""

    branch: str
    size: int  # in force
    size_source: str  # chat (an admin's), setting (ISLANDBOT_POOLS), profile
    size_set_by: str | None
    max_age: timedelta
    ready: int
    starting: int
    stopping: int
    failed: int
    claims_today: int
    misses_today: int
    code_version: str | None
    refreshed_at: datetime | None
    streak: Streak = Streak()
