"""Where notices go: superseded progress, digests only when a channel's paced queue would hold
announcements back too long (never of one island), routes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import (
    DigestPolicy,
    Fallback,
    Pace,
    Route,
    after_refusal,
    crowded,
    digest_or_not,
    posts_ahead,
    queue_wait,
    queued_until,
    route,
    share_out,
    superseded,
)

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
        N.MEMORY_HIGH,  # a warning for its owner before the OOM kill
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


SLACK = Pace(per_second=0.9, burst=2)  # what the Slack adapter keeps to in each channel
POLICY = DigestPolicy()  # a digest when an announcement would wait over DIGEST_AFTER (5 s)


def handed(until: float, at: float, posts: int = 1) -> float:
    return queued_until(until, at, posts, SLACK)


def test_a_channels_queue_lets_its_burst_go_at_once_and_the_rest_at_its_pace() -> None:
    assert queue_wait(1, SLACK) == queue_wait(2, SLACK) == timedelta(0)
    assert queue_wait(3, SLACK) == timedelta(seconds=1 / 0.9)
    assert queue_wait(50, SLACK) == timedelta(seconds=48 / 0.9)
    until = handed(0.0, 100.0, posts=3)  # three posts handed to a quiet channel at once
    assert posts_ahead(until, 100.0, SLACK) == pytest.approx(3)
    assert posts_ahead(until, 100.0 + 1 / 0.9, SLACK) == pytest.approx(2)
    assert posts_ahead(until, 110.0, SLACK) == 0  # all out long ago: the burst is back
    assert handed(until, 110.0) == pytest.approx(110.0 + 1 / 0.9)


def test_three_people_starting_seconds_apart_each_get_a_root_message() -> None:
    """Issue 21: alice, bob and carol start islands five and one seconds apart. Each island
    posts its root message, then "scheduled" and "ready" in its thread within the second."""
    until = 0.0
    for start in (0.0, 5.0):  # alice's and bob's islands, each three posts
        ahead = posts_ahead(until, start, SLACK)
        assert not digest_or_not(1, ahead=ahead, pace=SLACK, open_digest=False, policy=POLICY)
        for after in (0.0, 0.3, 0.8):
            until = handed(until, start + after)
    ahead = posts_ahead(until, 6.0, SLACK)  # carol's: bob's three posts are barely out
    assert 1 < ahead < 3
    assert queue_wait(ahead + 1, SLACK) < timedelta(seconds=2)
    assert not digest_or_not(1, ahead=ahead, pace=SLACK, open_digest=False, policy=POLICY)
    # nor when all three are announced in one round, even with their threads ahead of them
    assert not digest_or_not(3, ahead=3, pace=SLACK, open_digest=False, policy=POLICY)


def test_a_digest_only_when_the_queue_would_hold_an_announcement_back_too_long() -> None:
    def digest(announcing: int, ahead: float = 0, *, young: bool = False) -> bool:
        return digest_or_not(announcing, ahead=ahead, pace=SLACK, open_digest=young, policy=POLICY)

    assert not digest(6)  # the last of six waits 4.4 s
    assert digest(7)  # 5.6 s
    assert digest(50) and digest(200)  # the whole team at once
    assert not digest(2, ahead=4) and digest(2, ahead=5)  # behind what is on its way
    assert not digest(1, ahead=3, young=True)  # a young digest takes islands only in a crowd
    assert digest(1, ahead=20, young=True)
    assert not digest(0, ahead=100, young=True)
    patient = DigestPolicy(after=timedelta(seconds=60))
    assert not digest_or_not(50, ahead=0, pace=SLACK, open_digest=False, policy=patient)
    # a chat that takes every post at once never needs a digest
    assert not digest_or_not(200, ahead=0, pace=None, open_digest=False, policy=POLICY)


def test_the_notices_due_with_the_announcements_count_as_posts_too() -> None:
    """Warm islands are ready as they are announced: each root message is followed at once by
    its "ready" in its thread, two posts an island, and the queue holds the last owner's news
    back twice as long as the root messages alone would say."""

    def digest(announcing: int, following: int) -> bool:
        return digest_or_not(
            announcing,
            ahead=0,
            following=following,
            pace=SLACK,
            open_digest=False,
            policy=POLICY,
        )

    assert not digest(4, following=0)  # the last root message waits 2.2 s
    assert not digest(3, following=3)  # the last "ready" 4.4 s
    assert digest(4, following=4)  # 6.7 s
    lark = Pace(per_second=4.0, burst=1.0)  # a Lark group
    for announcing, following, expected in ((10, 10, False), (11, 11, True), (20, 0, False)):
        assert (
            digest_or_not(
                announcing,
                ahead=0,
                following=following,
                pace=lark,
                open_digest=False,
                policy=POLICY,
            )
            is expected
        )


def test_never_a_digest_of_one_island() -> None:
    for ahead in (0, 10, 1000):
        assert not digest_or_not(1, ahead=ahead, pace=SLACK, open_digest=False, policy=POLICY)
        # one bound for a digest while the channel was busy, now alone: on its own after all
        assert not digest_or_not(
            1, ahead=ahead, pace=SLACK, open_digest=False, bound=True, policy=POLICY
        )
    assert digest_or_not(2, ahead=1000, pace=SLACK, open_digest=False, policy=POLICY)
    # islands bound for a digest go into one, however short the queue has become
    assert digest_or_not(2, ahead=0, pace=SLACK, open_digest=False, bound=True, policy=POLICY)
    # shared out: no digest, new or joined, is left with one island of the round alone
    for announcing in range(2, 70):
        for room in range(0, 21):
            joining, new = share_out(announcing, room=room, size=20)
            assert joining + sum(new) == announcing
            assert 0 <= joining <= room
            assert all(2 <= n <= 20 for n in new), (announcing, room, new)
    assert share_out(2, room=1, size=20) == (0, [2])
    assert share_out(4, room=3, size=20) == (2, [2])
    assert share_out(1, room=5, size=20) == (1, [])
    assert share_out(45, room=0, size=20) == (0, [15, 15, 15])
    assert share_out(7, room=0, size=3) == (0, [3, 2, 2])


@pytest.mark.parametrize(("size", "after"), [(2, 5), (1, 5), (20, -1)])
def test_a_digest_policy_that_makes_no_sense_is_refused(size: int, after: float) -> None:
    with pytest.raises(ValueError, match="digest"):
        DigestPolicy(size=size, after=timedelta(seconds=after))


@pytest.mark.parametrize(("per_second", "burst"), [(0, 2), (-1, 2), (1, 0.5)])
def test_a_pace_that_makes_no_sense_is_refused(per_second: float, burst: float) -> None:
    with pytest.raises(ValueError, match="pace"):
        Pace(per_second=per_second, burst=burst)


def test_a_retry_goes_where_its_first_attempt_may_have_gone() -> None:
    """A notice first tried in the island's thread (a quiet channel) and tried again while a
    burst crowds the channel: it may be in the thread already, so it goes (and looks) there
    again instead of being recorded as only shown while a post of it exists (found by the
    database outage test)."""
    assert route(Notice.STOP_REQUESTED, in_digest=False, crowded=True) == Route.SHOWN
    assert route(Notice.STOP_REQUESTED, in_digest=False, crowded=True, retry=True) == Route.THREAD
    assert route(Notice.READY, in_digest=False, crowded=True, retry=True) == Route.THREAD
    assert route(Notice.READY, in_digest=True, crowded=False, retry=True) == Route.DIRECT


def test_an_island_of_its_own_is_crowded_only_while_digests_are_posted_in_its_channel() -> None:
    later = [Notice.SCHEDULED, Notice.READY]
    assert crowded(later, digests_posting=True)
    assert not crowded(later, digests_posting=False)
    # a notice that must be in the channel keeps the island's notices there, in order
    assert not crowded([Notice.READY, Notice.CLOCK_REQUESTED], digests_posting=True)
    assert not crowded([Notice.ANNOUNCE, Notice.READY], digests_posting=True)


@pytest.mark.parametrize(
    ("malformed", "unreachable", "rewordable", "to_owner", "expected"),
    [
        (True, False, True, False, Fallback.REWORD),  # too long, blocks: plain text
        (True, False, False, False, Fallback.REFUSED),  # already plain and short: nothing helps
        (False, True, True, False, Fallback.TO_OWNER),  # the channel is gone: the owner
        (False, True, True, True, Fallback.REFUSED),  # the owner's own conversation refuses
        (True, True, False, False, Fallback.TO_OWNER),
        (False, False, True, False, Fallback.REFUSED),  # refused for another reason
    ],
)
def test_after_a_refusal_for_good_a_notice_is_reworded_rerouted_or_recorded_as_refused(
    malformed: bool, unreachable: bool, rewordable: bool, to_owner: bool, expected: Fallback
) -> None:
    got = after_refusal(
        malformed=malformed, unreachable=unreachable, rewordable=rewordable, to_owner=to_owner
    )
    assert got == expected
