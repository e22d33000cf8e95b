"""The refusal limit keeps at most ``max_keys`` keys, however many are presented (issue 21,
defect 9: island ids are keys now)."""

from __future__ import annotations

from bot.http.refusal_limit import RefusalLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_limited_for_the_window_then_free_again() -> None:
    clock = Clock()
    limit = RefusalLimit(limit=3, window_s=60, clock=clock)
    for _ in range(3):
        assert limit.retry_after(7) is None
        limit.refused(7)
    assert limit.retry_after(7) == 60
    assert limit.retry_after(8) is None  # another island is not held up
    clock.now += 45
    assert limit.retry_after(7) == 15
    clock.now += 16
    assert limit.retry_after(7) is None
    assert len(limit) == 0  # forgotten once its refusals are out of the window


def test_memory_stays_bounded_however_many_ids_are_presented() -> None:
    clock = Clock()
    limit = RefusalLimit(limit=20, window_s=60, clock=clock, max_keys=100)
    for island_id in range(1, 10_001):
        limit.refused(island_id)
        assert len(limit) <= 100
