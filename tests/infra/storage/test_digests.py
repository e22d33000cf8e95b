"""Digests in storage: which islands a digest shows, which digest is still young and not
full, islands only bound for a digest, recent starts (SQLite and MariaDB)."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.records import StartRequest
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from tests.infra.storage.test_allocation import T0, FakeClock, make_allocator


def start(db: Database, n: int, clock: FakeClock, channel: str = "C0TEAM") -> int:
    allocator = make_allocator(db, last=30299, max_live=100, clock=clock)
    allocated = allocator.allocate(
        StartRequest(
            owner_id=f"U0D{n:03d}",
            owner_name=f"d{n}",
            branch="dev",
            ttl=timedelta(hours=8),
            chat_channel=channel,
        )
    )
    return allocated.island_id


def test_a_digest_is_young_until_full_or_old_and_islands_only_bound_do_not_count(
    db: Database,
) -> None:
    clock = FakeClock(T0)
    store = IslandStore(db, clock=clock)
    ids = [start(db, n, clock) for n in range(4)]
    assert store.started_since("C0TEAM", T0 - timedelta(seconds=1)) == 4
    assert store.started_since("C0OTHER", T0 - timedelta(seconds=1)) == 0
    store.bind_to_digest(ids[2:])  # bound for a digest, none posted yet
    assert store.open_digest("C0TEAM", since=T0 - timedelta(minutes=2), size=3) is None
    assert store.attach_digest(ids[:2], "C0TEAM", "1.000001") == 2
    assert store.open_digest("C0TEAM", since=T0 - timedelta(minutes=2), size=3) == (
        "1.000001",
        2,
    )
    assert store.open_digest("C0TEAM", since=T0 + timedelta(seconds=1), size=3) is None  # old
    assert store.attach_digest(ids[2:], "C0TEAM", "1.000001") == 2
    assert store.open_digest("C0TEAM", since=T0 - timedelta(minutes=2), size=3) is None  # full
    assert [i.id for i in store.in_digest("C0TEAM", "1.000001")] == ids
    assert all(i.chat_digest for i in store.many(ids))
    # a root message once recorded is never replaced
    assert store.attach_digest(ids[:1], "C0TEAM", "1.000009") == 0
    assert store.attach_thread(ids[0], "C0TEAM", "1.000009") is False


def test_an_islands_announcement_is_its_root_messages_key(db: Database) -> None:
    clock = FakeClock(T0)
    store = IslandStore(db, clock=clock)
    island_id = start(db, 1, clock)
    announced = store.announcement_id(island_id)
    assert announced is not None and announced > 0
    assert store.announcement_id(island_id + 1000) is None


def test_an_island_bound_for_a_digest_can_be_unbound_until_it_is_announced(
    db: Database,
) -> None:
    clock = FakeClock(T0)
    store = IslandStore(db, clock=clock)
    ids = [start(db, n, clock) for n in range(2)]
    store.bind_to_digest(ids)
    assert store.attach_digest(ids[1:], "C0TEAM", "1.000002") == 1  # announced meanwhile
    store.bind_to_digest(ids, bound=False)  # a digest of one is never made: on its own
    assert [i.chat_digest for i in store.many(ids)] == [False, True]
