"""Where notices go: superseded progress, digests for islands started at once, routes."""

from __future__ import annotations

import pytest

from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import DigestPolicy, Route, digest_or_not, route, superseded

N = Notice


def test_a_progress_notice_overtaken_by_a_later_one_is_not_sent() -> None:
    assert superseded([N.SCHEDULED, N.READY]) == [True, False]
    assert superseded([N.ANNOUNCE, N.SCHEDULED, N.READY]) == [False, True, False]
    assert superseded([N.UNSCHEDULABLE, N.SCHEDULED, N.FAILED]) == [True, True, False]


def test_the_last_notice_and_every_non_progress_notice_are_always_sent() -> None:
    assert superseded([N.SCHEDULED]) == [False]
    assert superseded([N.READY, N.EXPIRING, N.STOPPED]) == [False, False, False]
    assert superseded([N.ANNOUNCE, N.SCHEDULED]) == [False, False]
    assert superseded([]) == []


def test_an_island_with_its_own_root_message_gets_every_notice_in_its_thread() -> None:
    for kind in Notice:
        assert route(kind, in_digest=False) == Route.THREAD


def test_an_island_in_a_digest_tells_its_owner_what_they_need_and_shows_the_rest() -> None:
    direct = {k for k in Notice if route(k, in_digest=True) == Route.DIRECT}
    shown = {k for k in Notice if route(k, in_digest=True) == Route.SHOWN}
    assert direct == {
        N.READY,
        N.FAILED,
        N.EXPIRING,
        N.EXPIRED,
        N.CLOCK_SHIFTED,
        N.CLOCK_FAILED,
    }
    assert {N.SCHEDULED, N.STOPPED, N.STOP_REQUESTED, N.EXTENDED, N.RESTARTING} <= shown
    # a clock request is a question to the team: it stays in the channel
    assert route(N.CLOCK_REQUESTED, in_digest=True) == Route.THREAD
    # an announcement tried again once its digest is out: the digest shows it
    assert route(N.ANNOUNCE, in_digest=True) == Route.SHOWN
    assert route(N.ANNOUNCE, in_digest=False) == Route.THREAD


def test_an_island_alone_in_a_crowded_channel_is_routed_as_one_in_a_digest() -> None:
    for kind in set(Notice) - {N.ANNOUNCE}:  # never crowded: its root message comes first
        assert route(kind, in_digest=False, crowded=True) == route(kind, in_digest=True)
    assert route(N.READY, in_digest=False, crowded=True) == Route.DIRECT
    assert route(N.CLOCK_REQUESTED, in_digest=False, crowded=True) == Route.THREAD


def test_a_digest_is_made_for_several_islands_at_once_or_joined_while_young() -> None:
    policy = DigestPolicy(at=3, size=20)
    assert not digest_or_not(1, open_digest=False, policy=policy)
    assert not digest_or_not(2, open_digest=False, policy=policy)
    assert digest_or_not(3, open_digest=False, policy=policy)
    assert digest_or_not(1, open_digest=True, policy=policy)


@pytest.mark.parametrize(("at", "size"), [(1, 20), (5, 4), (0, 0)])
def test_a_digest_policy_that_makes_no_sense_is_refused(at: int, size: int) -> None:
    with pytest.raises(ValueError, match="digest"):
        DigestPolicy(at=at, size=size)
