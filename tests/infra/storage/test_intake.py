"""The durable intake's claims (issue 21, defect 6 and "a process's claims die with it"): a
claim made by a process that keeps a heartbeat lives while the process does, up to its cap; it
dies with the process, however long its cap."""

from __future__ import annotations

import time
from datetime import timedelta

from bot.infra.storage.database import Database
from bot.infra.storage.heartbeat import Heartbeat
from bot.infra.storage.intake import Intake

BEAT = timedelta(seconds=1)
CAP = timedelta(minutes=15)


def test_a_live_workers_claim_is_not_taken_however_long_it_works(db: Database) -> None:
    a = Heartbeat(db, instance="host/1/a", ttl=BEAT).start()
    b = Heartbeat(db, instance="host/2/b", ttl=BEAT).start()
    mine, theirs = Intake(db, heartbeat=a), Intake(db, heartbeat=b)
    assert mine.accept("cmd:1", "command", {"text": "status 1"})
    assert mine.claim("cmd:1", ttl=CAP) is not None
    time.sleep(2.5 * BEAT.total_seconds())  # past several heartbeats: ``a`` keeps beating
    assert theirs.unfinished(older_than=timedelta(0)) == []
    assert theirs.claim("cmd:1", ttl=CAP) is None
    a.stop()
    b.stop()


def test_a_dead_workers_claims_go_within_a_heartbeat_whatever_their_cap(db: Database) -> None:
    dead = Heartbeat(db, instance="host/1/dead", ttl=BEAT)
    dead.beat()  # it beat once, then was SIGKILLed: it never beats again, nor stops
    alive = Heartbeat(db, instance="host/2/alive", ttl=BEAT).start()
    gone, here = Intake(db, heartbeat=dead), Intake(db, heartbeat=alive)
    assert gone.accept("cmd:1", "command", {"text": "start dev"})
    first = gone.claim("cmd:1", ttl=CAP)
    assert first is not None
    assert here.unfinished(older_than=timedelta(0)) == []  # its worker may still be alive
    time.sleep(BEAT.total_seconds() + 0.3)
    assert here.unfinished(older_than=timedelta(0)) == ["cmd:1"]
    again = here.claim("cmd:1", ttl=CAP)
    assert again is not None and again.attempts == 2 and again.ticket != first.ticket
    alive.stop()


def test_a_graceful_stop_lets_the_claims_go_at_once(db: Database) -> None:
    leaving = Heartbeat(db, instance="host/1/leaving", ttl=timedelta(minutes=1)).start()
    staying = Heartbeat(db, instance="host/2/staying", ttl=BEAT).start()
    assert Intake(db, heartbeat=leaving).accept("cmd:1", "command", {"text": "start dev"})
    assert Intake(db, heartbeat=leaving).claim("cmd:1", ttl=CAP) is not None
    leaving.stop()
    assert Intake(db, heartbeat=staying).claim("cmd:1", ttl=CAP) is not None
    staying.stop()


def test_without_a_heartbeat_a_claim_lives_until_its_ttl(db: Database) -> None:
    intake = Intake(db)
    assert intake.accept("cmd:1", "command", {"text": "start dev"})
    assert intake.claim("cmd:1", ttl=timedelta(seconds=1)) is not None
    assert intake.claim("cmd:1", ttl=timedelta(seconds=1)) is None
    time.sleep(1.2)
    assert intake.unfinished(older_than=timedelta(0)) == ["cmd:1"]


def test_a_request_given_back_after_a_fault_is_taken_up_after_its_wait_not_its_cap(
    db: Database,
) -> None:
    """Its work met a fault expected to pass (a database blip, the cluster away) while its
    worker lives on: the claim would hold until its 15-minute cap; given back, any replica
    takes it up again once the wait is over (and only then)."""
    a = Heartbeat(db, instance="host/1/a", ttl=BEAT).start()
    mine, theirs = Intake(db, heartbeat=a), Intake(db)
    assert mine.accept("cmd:1", "command", {"text": "start dev"})
    first = mine.claim("cmd:1", ttl=CAP)
    assert first is not None
    assert mine.release(first.ticket, after=timedelta(seconds=1))
    assert theirs.claim("cmd:1", ttl=CAP) is None  # not yet
    time.sleep(1.2)
    assert theirs.unfinished(older_than=timedelta(0)) == ["cmd:1"]
    again = theirs.claim("cmd:1", ttl=CAP)
    assert again is not None and again.attempts == 2
    assert not mine.release(first.ticket, after=timedelta(0))  # no longer its claim
    a.stop()


def test_a_request_taken_when_accepted_is_a_claim_like_any_other(db: Database) -> None:
    """``take``: accepted and claimed in one write; a retry of it is not taken again, and its
    worker's death lets it go to another replica, its attempt counted."""
    dead = Heartbeat(db, instance="host/1/dead", ttl=BEAT)
    dead.beat()  # SIGKILLed right after taking it
    alive = Heartbeat(db, instance="host/2/alive", ttl=BEAT).start()
    gone, here = Intake(db, heartbeat=dead), Intake(db, heartbeat=alive)
    taken = gone.take(gone.ticket("cmd:1"), "command", {"text": "start dev"}, ttl=CAP)
    assert taken is not None and taken.attempts == 1 and taken.payload == {"text": "start dev"}
    again_sent = gone.ticket("cmd:1")
    assert gone.take(again_sent, "command", {"text": "start dev"}, ttl=CAP) is None  # a retry
    assert not here.accept("cmd:1", "command", {"text": "start dev"})
    assert here.claim("cmd:1", ttl=CAP) is None  # its worker may still be alive
    time.sleep(BEAT.total_seconds() + 0.3)
    assert here.unfinished(older_than=timedelta(0)) == ["cmd:1"]
    again = here.claim("cmd:1", ttl=CAP)
    assert again is not None and again.attempts == 2 and again.ticket != taken.ticket
    alive.stop()
