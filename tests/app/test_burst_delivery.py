"""Delivering a burst while the channel's messages are still on their way: the owners of
islands whose digest is out are told while later digests wait in the channel's queue; an
island with a root message of its own, in a channel a burst is crowding, tells its owner
directly instead of queueing behind the digests; once the burst is over, the channel is quiet
again and an island's notices are threaded as always. The chat is a notifier whose digest
posts hang until the test lets them go (a channel far behind), and whose channels take a
post every two seconds (its ``pace``: four islands at once are a burst)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app.notices import Announcement, NoticeRefused, Posted
from bot.domain.notice_routes import DigestPolicy, Pace
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.tables import OutboxMessage
from tests.app.reconcile_world import World
from tests.memory_notifier import MemoryNotifier


class SlowChannel(MemoryNotifier):
    """Digests: posted only once ``gate`` is set, as a channel's queue would hold them."""

    def __init__(self, db: Database, *, free: int = 0) -> None:
        """``free``: digests posted before the gate holds the next ones."""
        super().__init__()
        self.islands = IslandStore(db)
        self.gate = threading.Event()
        self.digests = 0
        self.free = free

    def pace(self) -> Pace:
        return Pace(per_second=0.5, burst=1)

    def announce_together(
        self, channel: str, announcements: Sequence[Announcement], *, join: str | None
    ) -> Posted:
        assert self.digests < self.free or self.gate.wait(30)
        self.digests += 1
        return Posted(channel, join or f"digest-{self.digests}")


def delivered(world: World, island_id: int) -> bool:
    """Every notice of the island so far is out (none on its way to the chat)."""
    with world.db.engine.connect() as conn:
        unsent = conn.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.island_id == island_id, OutboxMessage.sent_at.is_(None)
            )
        ).all()
    return not unsent


def routes(world: World, island_id: int, kind: str) -> list[str]:
    return [a.route for a in world.notifier.items if a.island_id == island_id and a.kind == kind]


def test_the_owners_of_a_digest_that_is_out_are_told_while_the_next_digests_wait(
    world: World,
) -> None:
    slow = SlowChannel(world.db, free=1)  # the first digest goes out, the second waits
    world.notifier = slow
    small = DigestPolicy(size=3)
    world.settings = replace(
        world.settings, delivery=replace(world.settings.delivery, digest=small)
    )
    world.engine = world.new_engine()
    ids = [world.start(user=f"U0TEAM{n}") for n in range(6)]  # two digests of three
    world.until(lambda: slow.digests == 1)
    first = {i.id for i in IslandStore(world.db).many(ids) if i.chat_thread == "digest-1"}
    assert len(first) == 3
    world.until(lambda: all(routes(world, i, "ready") == ["direct"] for i in first), timeout=30)
    assert slow.digests == 1 and not slow.gate.is_set()  # the second digest is still waiting
    slow.gate.set()
    world.until(lambda: all(routes(world, i, "ready") == ["direct"] for i in ids), timeout=30)
    assert slow.digests == 2


def test_an_island_alone_in_a_crowded_channel_tells_its_owner_directly(world: World) -> None:
    slow = SlowChannel(world.db)
    world.notifier = slow
    quick = DigestPolicy(window=timedelta(seconds=1))
    world.settings = replace(
        world.settings, delivery=replace(world.settings.delivery, digest=quick)
    )
    world.engine = world.new_engine()
    alone = world.start(user="U0ALONE")
    # a root message of its own, and what followed it in its thread while the channel was quiet
    world.until(lambda: bool(routes(world, alone, "announce")) and delivered(world, alone))
    quiet = len(slow.items)  # what went out before the burst (the channel quiet then)
    burst = [world.start(user=f"U0TEAM{n}") for n in range(4)]
    world.until(lambda: all(world.state(i) == "ready" for i in [alone, *burst]), timeout=30)
    # the digest is still on its way (the channel's queue): the island alone was told directly
    world.until(lambda: routes(world, alone, "ready") == ["direct"])
    assert not slow.gate.is_set() and slow.digests == 0
    crowding = [a for a in slow.items[quiet:] if a.island_id == alone and a.kind == "scheduled"]
    assert all(a.route == "shown" for a in crowding)
    # the burst's owners are told beside their digest, which is still on its way
    world.until(lambda: all(routes(world, i, "ready") == ["direct"] for i in burst))
    assert slow.digests == 0
    slow.gate.set()
    world.until(lambda: slow.digests == 1)
    assert [a.in_digest for a in slow.items if a.island_id == alone] == [False] * len(
        [a for a in slow.items if a.island_id == alone]
    )
    # the burst is over (its digest too old to take more): the channel is quiet, and an
    # island's news is in its thread again
    time.sleep(2.5)
    later = world.start(user="U0LATER")
    world.until(lambda: bool(routes(world, later, "ready")), timeout=30)
    assert routes(world, later, "ready") == ["thread"]
    assert routes(world, later, "announce") == ["thread"]


class DiesAfterTheDigest(SlowChannel):
    """The first digest is posted and recorded as the islands' root message (as the
    deliverer records it), then the delivery fails before the outbox records its
    announcements (a bot killed just then)."""

    def announce_together(
        self, channel: str, announcements: Sequence[Announcement], *, join: str | None
    ) -> Posted:
        digest = super().announce_together(channel, announcements, join=join)
        if self.digests == 1:
            ids = [a.island_id for a in announcements]
            self.islands.attach_digest(ids, channel, digest.ts)
            raise ConnectionError("the bot died before recording the digest's announcements")
        return digest


def test_announcements_tried_again_after_their_digest_was_recorded_are_shown(
    world: World,
) -> None:
    dies = DiesAfterTheDigest(world.db, free=10)
    world.notifier = dies
    world.engine = world.new_engine()
    ids = [world.start(user=f"U0TEAM{n}") for n in range(4)]
    world.until(lambda: all(routes(world, i, "ready") == ["direct"] for i in ids), timeout=30)
    world.until(lambda: not world.engine.outbox.pending(limit=100)[1])
    with world.db.engine.connect() as conn:
        announced = conn.execute(
            select(OutboxMessage.delivered_as, OutboxMessage.attempts).where(
                OutboxMessage.island_id.in_(ids), OutboxMessage.kind == "announce"
            )
        ).all()
    assert sorted(announced) == [("shown", 2)] * 4  # the digest shows them: none "posted"
    assert dies.digests == 1  # and no second digest was posted for them


def test_islands_started_one_at_a_time_share_no_digest_whatever_the_bots_clock(
    world: World,
) -> None:
    """Whether islands were started together is judged on the clock that recorded their starts
    (the bot's), not the database's: with the bot's clock a day ahead of it (a simulated week,
    tests/system/test_week_of_uptime.py; or a replica whose clock is off), islands started one
    at a time still each get a root message of their own."""
    group = SlowChannel(world.db, free=100)
    world.notifier = group
    quick = DigestPolicy(window=timedelta(seconds=1))
    world.settings = replace(
        world.settings, delivery=replace(world.settings.delivery, digest=quick)
    )
    world.engine = world.new_engine()
    world.clock.offset = timedelta(days=1)
    store = IslandStore(world.db)
    ids: list[int] = []
    for n in range(4):
        time.sleep(1.1)  # more than the young-digest window after the one before
        ids.append(world.start(user=f"U0ONE{n}"))
        world.until(lambda: bool(routes(world, ids[-1], "announce")) or group.digests > 0)
    assert group.digests == 0
    assert [i.chat_digest for i in store.many(ids)] == [False] * 4


class NoDigestHere(SlowChannel):
    """The channel refuses the digest for good: each island is announced on its own, and the
    second island's root message is refused too (nowhere it could go)."""

    def __init__(self, db: Database, *, free: int = 0) -> None:
        super().__init__(db, free=free)
        self.refused: int | None = None

    def announce_together(
        self, channel: str, announcements: Sequence[Announcement], *, join: str | None
    ) -> Posted:
        self.digests += 1
        self.refused = sorted(a.island_id for a in announcements)[1]
        raise NoticeRefused("digest refused", reason="msg_too_long")

    def announce(self, announcement: Announcement) -> Posted | None:
        if announcement.kind != "announce" or announcement.channel is None:
            return super().announce(announcement)
        if announcement.island_id == self.refused:
            raise NoticeRefused("root message refused", reason="msg_too_long")
        super().announce(announcement)
        return Posted(announcement.channel, f"alone-{announcement.island_id}")


def test_islands_announced_alone_when_their_digest_is_refused_are_recorded_as_they_went(
    world: World,
) -> None:
    """Each island announced on its own is recorded with its own root message and its
    announcement as posted; the one whose root message was refused too is recorded as
    refused (not as posted), and its later notices still go on."""
    alone = NoDigestHere(world.db, free=10)
    world.notifier = alone
    world.engine = world.new_engine()
    ids = [world.start(user=f"U0TEAM{n}") for n in range(4)]
    world.until(lambda: alone.digests >= 1)
    world.until(lambda: not world.engine.outbox.pending(limit=100)[1], timeout=30)
    with world.db.engine.connect() as conn:
        announced = dict(
            conn.execute(
                select(OutboxMessage.island_id, OutboxMessage.delivered_as).where(
                    OutboxMessage.island_id.in_(ids), OutboxMessage.kind == "announce"
                )
            ).all()
        )
    refused = sorted(ids)[1]
    assert announced == {i: "refused" if i == refused else "posted" for i in ids}
    islands = {i.id: i for i in IslandStore(world.db).many(ids)}
    assert {i: islands[i].chat_thread for i in ids if i != refused} == {
        i: f"alone-{i}" for i in ids if i != refused
    }
    assert islands[refused].chat_thread is None
    world.until(lambda: all(world.state(i) == "ready" for i in ids), timeout=30)
    world.until(lambda: bool(routes(world, refused, "ready")))  # its later notices go on


class SlowRootMessages(SlowChannel):
    """An island's own root message: posted only once ``roots`` is set (the channel's queue
    holding it back); digests and everything else at once."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, free=100)
        self.roots = threading.Event()

    def announce(self, announcement: Announcement) -> Posted | None:
        if announcement.kind == "announce" and not announcement.in_digest:
            assert self.roots.wait(30)
        return super().announce(announcement)


def test_people_starting_while_the_channel_posts_are_told_at_once(world: World) -> None:
    """A root message on its way does not hold up the deliveries behind it: the islands
    started meanwhile, behind a queue that long, are bound for a digest and their owners
    told directly while it is still on its way; then the digest and the thread follow."""
    slow = SlowRootMessages(world.db)
    world.notifier = slow
    world.engine = world.new_engine()
    try:
        first = world.start(user="U0FIRST")
        world.until(lambda: world.state(first) == "ready", timeout=30)  # its root message hangs
        later = [world.start(user=f"U0TEAM{n}") for n in range(3)]
        world.until(lambda: all(routes(world, i, "ready") == ["direct"] for i in later), timeout=30)
        assert routes(world, first, "announce") == [] and slow.digests == 0  # both waiting
        assert not world.engine.deliverer.settle(0.1)  # the root message's part goes on
    finally:
        slow.roots.set()
    assert world.engine.deliverer.settle(10)
    # its owner's "ready" to them directly too: it came while the digest was being posted
    world.until(lambda: routes(world, first, "ready") == ["direct"], timeout=30)
    world.until(lambda: slow.digests == 1, timeout=30)
    assert {i.chat_thread for i in IslandStore(world.db).many(later)} == {"digest-1"}
    assert routes(world, first, "announce") == ["thread"]


class SlackPaced(SlowChannel):
    """A channel at Slack's pace; digests go out at once."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, free=100)

    def pace(self) -> Pace:
        return Pace(per_second=0.9, burst=2)


@pytest.mark.parametrize(("people", "digested"), [(2, False), (4, True)])
def test_islands_ready_as_they_are_announced_count_their_ready_too(
    world: World, people: int, digested: bool
) -> None:
    """Islands already ready when they are announced (a warm pool's, or a delivery that was
    away): each root message would be followed at once by its "ready", two posts an island.
    At Slack's pace four such root messages alone would go out within 2.2 s, but the last
    owner's "ready" would wait 6.7 s behind them: four share a digest and are told directly;
    two (4 posts, 2.2 s) keep root messages and threads of their own."""
    slack = SlackPaced(world.db)
    world.notifier = slack
    world.engine = world.new_engine()
    world.engine.inline_delivery = False  # nothing delivered until every island is ready
    ids = [world.start(user=f"U0TEAM{n}") for n in range(people)]
    world.until(lambda: all(world.state(i) == "ready" for i in ids), timeout=30)
    world.engine.inline_delivery = True
    world.until(lambda: all(routes(world, i, "ready") for i in ids), timeout=30)
    threads = {i.chat_thread for i in IslandStore(world.db).many(ids)}
    if digested:
        assert threads == {"digest-1"} and slack.digests == 1
        assert all(routes(world, i, "ready") == ["direct"] for i in ids)
    else:
        assert threads == {f"thread-{i}" for i in ids} and slack.digests == 0
        assert all(routes(world, i, "ready") == ["thread"] for i in ids)


def test_a_round_with_nothing_it_may_post_in_the_channel_wakes_nobody(world: World) -> None:
    """An island whose announcement is backing off (the chat failed it): the rounds after
    leave it alone, hand the channel nothing and wake no delivery (a round that did would
    spin the delivery loop while the notice waits)."""
    slack = SlackPaced(world.db)
    world.notifier = slack
    world.engine = world.new_engine()
    deliverer = world.engine.deliverer
    wakes: list[int] = []
    deliverer.on_part_done = lambda: wakes.append(1)
    slack.fail_next = 1
    island = world.start(user="U0ALONE")
    world.engine.deliver()  # its announcement fails: it backs off (2 s or so)
    assert deliverer.settle(10)
    wakes.clear()
    for _ in range(20):
        world.engine.deliver()
        assert deliverer.settle(10)
    assert wakes == []
    world.until(lambda: routes(world, island, "announce") == ["thread"], timeout=30)
