"""What the board keeps and reads: an hour of memory samples (older ones go as new ones come),
its signing secret (made once, the same for every process), an island's history without the
looks, and people's names. SQLite and MariaDB."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, update

from bot.domain.memory_watch import MemoryPolicy, MemoryReading
from bot.domain.records import Audit, Outcome
from bot.domain.time_source import utcnow
from bot.infra.storage.audit import AuditLog
from bot.infra.storage.board_reads import BoardReads
from bot.infra.storage.database import Database, create_database
from bot.infra.storage.memory import MemoryStore
from bot.infra.storage.secrets import ServerSecrets
from bot.infra.storage.tables import Island, MemorySample
from tests.infra.storage.test_allocation import FakeClock, make_allocator, req


def ready_island(db: Database) -> int:
    island_id = make_allocator(db, clock=FakeClock()).allocate(req()).island_id
    db.run(
        lambda c: c.execute(update(Island).where(Island.id == island_id).values(state="ready")),
        what="ready",
    )
    return island_id


def test_an_hour_of_samples_is_kept_and_older_ones_go(db: Database) -> None:
    island_id = ready_island(db)
    store = MemoryStore(db)
    now = utcnow().replace(microsecond=0)
    for age in (timedelta(hours=2), timedelta(minutes=59), timedelta(minutes=30), timedelta(0)):
        reading = MemoryReading(island_id, 1000 + int(age.total_seconds()), 4000, now - age)
        store.record([(reading, "server")], policy=MemoryPolicy())
    kept = store.samples(island_id, since=now - timedelta(hours=1))
    assert [used for _, used, _ in kept] == [1000 + 59 * 60, 1000 + 30 * 60, 1000]
    assert all(limit == 4000 for _, _, limit in kept)
    total = db.run(
        lambda c: c.execute(select(func.count()).select_from(MemorySample)).scalar(), what="n"
    )
    assert total == 3  # the two-hour-old one was deleted, not just left out


def test_the_same_sample_read_twice_is_kept_once(db: Database) -> None:
    island_id = ready_island(db)
    store = MemoryStore(db)
    reading = MemoryReading(island_id, 1234, 4000, utcnow())
    store.record([(reading, "server")], policy=MemoryPolicy())
    store.record([(reading, "server")], policy=MemoryPolicy())
    assert len(store.samples(island_id, since=utcnow() - timedelta(hours=1))) == 1


def test_the_board_secret_is_made_once_and_shared(db: Database, db_url: str) -> None:
    got: list[bytes] = []
    others = [create_database(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(others))

    def make(d: Database) -> None:
        barrier.wait(10)  # all four ask at once: most find no secret and race to insert it
        got.append(ServerSecrets(d).get_or_make("board"))

    try:
        threads = [threading.Thread(target=make, args=(d,)) for d in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    finally:
        for d in others:
            d.dispose()
    assert len(got) == 4 and len(set(got)) == 1 and len(got[0]) == 32
    assert ServerSecrets(db).get_or_make("board") == got[0]
    assert ServerSecrets(db).get_or_make("another") != got[0]


def test_an_island_s_history_leaves_out_looks_and_refusals(db: Database) -> None:
    island_id = ready_island(db)
    log = AuditLog(db)
    log.append(Audit("U1ALICE", "status", island_id=island_id))
    log.append(Audit("U2BOB", "stop", Outcome.REFUSED, island_id=island_id))
    log.append(Audit("U1ALICE", "extend", island_id=island_id, detail={"to": "x"}))
    history = BoardReads(db).history(island_id)
    assert [h.action for h in history] == ["start", "extend"]
    assert history[0].actor == "U1ALICE" and history[1].detail == {"to": "x"}
    assert BoardReads(db).names(["U1ALICE", "NOBODY", ""]) == {"U1ALICE": "Alice"}
