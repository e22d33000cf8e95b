"""When an island's owner is warned that it nears its memory limit (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.lifecycle_rules import Notice
from bot.domain.memory_watch import MemoryPolicy, MemoryReading, MemoryWatch, judge, more_memory
from bot.domain.notice_routes import superseded

GI = 2**30
AT = datetime(2026, 12, 3, tzinfo=UTC)


def reading(used: float, limit: float | None = 2) -> MemoryReading:
    return MemoryReading(7, int(used * GI), None if limit is None else int(limit * GI), AT)


DEFAULT = MemoryPolicy()


def run(useds: list[float], policy: MemoryPolicy = DEFAULT) -> list[bool]:
    watch, warned = MemoryWatch(), []
    for used in useds:
        verdict = judge(reading(used), watch, policy)
        watch = verdict.watch
        warned.append(verdict.warn)
    return warned


def test_two_high_readings_in_a_row_warn_once() -> None:
    assert run([1.0, 1.85, 1.9, 1.95, 1.99]) == [False, False, True, False, False]


def test_one_spike_between_ordinary_readings_warns_of_nothing() -> None:
    assert run([1.0, 1.9, 1.0, 1.9, 1.0]) == [False] * 5


def test_a_second_warning_only_after_it_went_below_and_came_back() -> None:
    assert run([1.9, 1.9, 1.9, 1.0, 1.9, 1.9]) == [False, True, False, False, False, True]


def test_exactly_at_the_threshold_is_high() -> None:
    at = MemoryReading(7, 9 * GI, 10 * GI, AT)  # 90 %
    first = judge(at, MemoryWatch(), MemoryPolicy())
    assert judge(at, first.watch, MemoryPolicy()).warn


def test_the_threshold_and_the_count_are_the_policys() -> None:
    assert run([1.7, 1.7], MemoryPolicy(warn_at=0.8)) == [False, True]
    assert run([1.9], MemoryPolicy(readings=1)) == [True]


def test_an_island_without_a_limit_is_never_warned_about() -> None:
    watch = MemoryWatch(high_in_a_row=5)
    for limit in (None, 0):
        verdict = judge(reading(50, limit), watch, MemoryPolicy(readings=1))
        assert verdict.warn is False and verdict.watch == MemoryWatch()


def test_the_ratio_is_of_the_limit() -> None:
    assert reading(1.6).ratio == pytest.approx(0.8)
    assert reading(1.6, None).ratio is None


@pytest.mark.parametrize("bad", [{"warn_at": 0}, {"warn_at": 1.5}, {"readings": 0}])
def test_a_policy_that_could_never_or_always_warn_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="memory warning"):
        MemoryPolicy(**bad)  # type: ignore[arg-type]


def test_the_suggested_size_is_the_next_gi_within_what_the_branch_allows() -> None:
    assert more_memory(2 * GI, 4 * GI) == 3 * GI
    assert more_memory(int(2.5 * GI), 4 * GI) == 3 * GI
    assert more_memory(2 * GI, int(2.5 * GI)) == int(2.5 * GI)
    assert more_memory(3 * GI, 3 * GI) is None  # at the branch's maximum already
    assert more_memory(2 * GI, None) is None  # the branch allows no override
    assert more_memory(None, 4 * GI) is None


def test_a_memory_warning_is_moot_once_the_islands_run_ended() -> None:
    assert superseded([Notice.MEMORY_HIGH, Notice.FAILED]) == [True, False]
    assert superseded([Notice.MEMORY_HIGH, Notice.EXTENDED]) == [False, False]
    assert superseded([Notice.MEMORY_HIGH]) == [False]
