"""Warning an island's owner before the kernel OOMKills it (pure): whether a reading of its
working set against its memory limit is high, and when that is worth telling.

A reading is high when the working set is at least ``MemoryPolicy.warn_at`` of the limit (90 %
by default). The owner is warned once, after ``MemoryPolicy.readings`` high readings in a row
(two: one spike between two samples is not a trend), and again only after a reading that was
not high re-armed the warning. An island without a limit (or a limit of 0) is never warned
about: nothing kills it at a size we know. The warning is best effort (a spike between two
readings can kill first); the OOMKilled failure notice, which names the last reading, is the
guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.states import IslandState

GI = 2**30
# whose memory is read and judged: islands whose server runs
WATCHED = frozenset({IslandState.RUNNING, IslandState.READY})


@dataclass(frozen=True)
class MemoryPolicy:
    warn_at: float = 0.9  # of the limit
    readings: int = 2  # high readings in a row before the owner is told

    def __post_init__(self) -> None:
        if not 0 < self.warn_at <= 1:
            raise ValueError(f"a memory warning needs 0 < warn_at <= 1, got {self.warn_at}")
        if self.readings < 1:
            raise ValueError(f"a memory warning needs readings >= 1, got {self.readings}")


@dataclass(frozen=True)
class MemoryReading:
    """One reading of an island's working set (bytes), against its container's limit."""

    island_id: int
    used: int
    limit: int | None
    at: datetime

    @property
    def ratio(self) -> float | None:
        """Of the limit (None without one)."""
        return self.used / self.limit if self.limit else None


@dataclass(frozen=True)
class MemoryWatch:
    """What is kept of an island's readings between two: its high readings in a row, and
    whether its owner was warned since it last was not high."""

    high_in_a_row: int = 0
    warned: bool = False


@dataclass(frozen=True)
class MemoryVerdict:
    watch: MemoryWatch  # to keep
    warn: bool  # tell the owner now


def judge(reading: MemoryReading, watch: MemoryWatch, policy: MemoryPolicy) -> MemoryVerdict:
    """The next ``MemoryWatch`` after ``reading``, and whether its owner is to be warned now."""
    ratio = reading.ratio
    if ratio is None or ratio < policy.warn_at:
        return MemoryVerdict(MemoryWatch(), warn=False)  # below: the warning is armed again
    high = watch.high_in_a_row + 1
    warn = high >= policy.readings and not watch.warned
    return MemoryVerdict(MemoryWatch(high, watch.warned or warn), warn=warn)


def more_memory(limit: int | None, allowed: int | None) -> int | None:
    """What to suggest starting the island with instead (``set memory=``): the next whole Gi
    above its ``limit``, at most what its branch ``allowed`` (None: the branch allows no
    override); None when there is no more to have."""
    if not limit or allowed is None or allowed <= limit:
        return None
    return min((limit // GI + 1) * GI, allowed)
