"""The outbox in storage: a notice's id is never handed out twice, also after housekeeping
has forgotten every notice (SQLite and MariaDB)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from bot.domain.lifecycle_rules import Notice
from bot.infra.storage import outbox
from bot.infra.storage.database import Database
from bot.infra.storage.heartbeat import Heartbeat
from bot.infra.storage.outbox import Outbox
from bot.infra.storage.tables import OutboxMessage
from tests.infra.storage.test_allocation import T0, FakeClock, make_allocator, req


def claim(box: Outbox, notice_id: int, **kwargs: Any) -> bool:
    """One notice claimed (``claim_many`` of one)."""
    return box.claim_many([notice_id], **kwargs) == [notice_id]


def sent(box: Outbox, notice_id: int, *, by: str, delivered_as: str = "posted") -> bool:
    """One notice recorded as sent (``sent_many`` of one); False when the claim was lost."""
    return box.sent_many([notice_id], by=by, delivered_as=delivered_as) == 1


KEEP = timedelta(days=7)  # what the service keeps sent notices for (``outbox_retention``)


def queue(db: Database, island_id: int, n: int) -> list[int]:
    """Queue ``n`` notices for the island; their ids."""

    def write(conn: Connection) -> None:
        outbox.add(conn, island_id, [(Notice.EXTENDED, {"n": i}) for i in range(n)], at=T0)

    db.run(write, what="queue")
    return ids(db)


def ids(db: Database) -> list[int]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(OutboxMessage.id).order_by(OutboxMessage.id)).scalars())


def deliver_all(box: Outbox) -> None:
    _, pending = box.pending(limit=100)
    for notice in pending:
        assert claim(box, notice.id, by="test", ttl=timedelta(minutes=1), fence=None)
        assert sent(box, notice.id, by="test")


def age_sent(db: Database, *, by: timedelta) -> None:
    """Move every sent notice's ``sent_at`` back (forget compares it to the database's clock)."""
    with db.engine.begin() as conn:
        for notice_id, sent_at in conn.execute(select(OutboxMessage.id, OutboxMessage.sent_at)):
            conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == notice_id)
                .values(sent_at=sent_at - by)
            )


def test_ids_of_forgotten_notices_are_never_handed_out_again(db: Database) -> None:
    island_id = make_allocator(db, clock=FakeClock()).allocate(req()).island_id
    box = Outbox(db)
    old = queue(db, island_id, 3)
    deliver_all(box)
    age_sent(db, by=KEEP + timedelta(days=1))  # a quiet week: every notice sent 8 days ago
    assert box.forget(keep=KEEP, keep_deliveries=timedelta(days=2))["notices"] == len(old)
    assert ids(db) == []
    new = queue(db, island_id, 3)
    # a notice's key is ``outbox-{id}``: a repeated id would match an old message in the chat
    assert not set(new) & set(old), f"ids {sorted(set(new) & set(old))} handed out again"
    assert min(new) > max(old)


def test_a_notice_claimed_by_a_process_that_died_is_free_within_a_heartbeat(db: Database) -> None:
    """The leader died while delivering (SIGKILL): its claim (10 minutes in production) no longer
    holds the notice up once its heartbeat has ended; a live claimer's claim still does."""
    island_id = make_allocator(db, clock=FakeClock()).allocate(req()).island_id
    first, second = queue(db, island_id, 2)
    beat = timedelta(seconds=1)
    dead = Heartbeat(db, instance="host/1/dead", ttl=beat)
    dead.beat()  # then SIGKILLed: it never beats again
    living = Heartbeat(db, instance="host/2/living", ttl=beat).start()
    gone, here = Outbox(db, worker=dead.name), Outbox(db, worker=living.name)
    hold = timedelta(minutes=1)
    assert claim(gone, first, by="old", ttl=hold, fence=None)
    assert claim(here, second, by="new", ttl=hold, fence=None)
    assert not claim(here, first, by="new", ttl=hold, fence=None)  # it may be posting it now
    time.sleep(beat.total_seconds() + 0.3)
    _, pending = here.pending(limit=10)
    free = {n.id: n.claim_until is None for n in pending}
    assert free == {first: True, second: False}  # a live claimer's claim still holds
    assert claim(here, first, by="new", ttl=hold, fence=None)
    assert not sent(gone, first, by="old")  # had it come back to life, its answer is refused
    assert sent(here, first, by="new")
    living.stop()
