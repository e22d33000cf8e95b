"""The chat front's work pool: a request is taken at acceptance only by a worker idle then,
and every place taken is given back, whatever becomes of the work."""

from __future__ import annotations

import threading

from bot.chat.work_pool import WorkPool


def test_only_an_idle_worker_is_reserved_and_every_place_comes_back() -> None:
    pool = WorkPool(workers=2, max_pending=4)
    gate = threading.Event()
    try:
        assert pool.reserve() and pool.reserve()
        assert not pool.reserve()  # both workers promised: queue it instead
        pool.unreserve()  # one not used (a duplicate delivery)
        assert pool.submit(gate.wait, reserved=True)
        assert pool.reserve()  # one busy, the other idle
        assert pool.submit(gate.wait, reserved=True)
        assert not pool.reserve()  # both busy
        assert pool.submit(gate.wait) and pool.submit(gate.wait)  # queued behind them
        assert not pool.submit(gate.wait)  # the backlog is full
        gate.set()
        assert pool.wait_idle(5)
        assert pool.reserve() and pool.reserve()  # all given back
        pool.unreserve()
        pool.unreserve()
    finally:
        gate.set()
        pool.shutdown()


def test_a_shut_down_pool_takes_no_more_work() -> None:
    pool = WorkPool(workers=1, max_pending=1)
    pool.shutdown()
    assert not pool.reserve()
    assert not pool.submit(lambda: None)
    assert pool.wait_idle(0.1)  # nothing counted as running


def test_a_reserved_thread_is_never_behind_queued_work() -> None:
    """A request taken at acceptance (its thread reserved) starts at once, even when other
    work was queued after the reservation and before its submit."""
    pool = WorkPool(workers=1, max_pending=4)
    gate, started = threading.Event(), threading.Event()
    try:
        assert pool.reserve()
        assert pool.submit(gate.wait)  # queued: the one thread is promised
        assert pool.submit(started.set, reserved=True)
        assert started.wait(2)  # ran first, while the queued work still waits
        gate.set()
        assert pool.wait_idle(5)
    finally:
        gate.set()
        pool.shutdown()
