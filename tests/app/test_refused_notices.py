"""A notice that can never be delivered does not hold up its island (issue 21, defect 7): one
the chat refuses for good (``NoticeRefused``) or one our own code fails on (a bug, not a chat
that is down) is recorded as such at once, logged (the bug with its traceback) and counted,
and the island's later notices go out in order in the same round; a chat failing for now
still backs off, the island's later notices waiting behind it. Real outbox (SQLite and
MariaDB), the deliverer, an in-memory notifier that fails as told."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app.notices import Announcement, NoticeRefused, Posted
from bot.app.reconcile.deliver import Deliverer, DeliveryPolicy
from bot.domain.lifecycle_rules import Notice
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.records import StartRequest
from bot.domain.time_source import utcnow
from bot.infra import metrics
from bot.infra.storage import outbox
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.outbox import Outbox
from bot.infra.storage.tables import OutboxMessage
from tests.memory_notifier import MemoryNotifier

LATER = [
    (Notice.READY, {"host": "127.0.0.2"}),
    (Notice.STOP_REQUESTED, {"by": "U0ANN"}),
    (Notice.STOPPED, {}),
]


class Failing(MemoryNotifier):
    """Raises ``failure()`` for every attempt at the notices of ``kind`` of ``island``."""

    def __init__(self, island: int, kind: Notice, failure: type[Exception] | Exception) -> None:
        super().__init__()
        self.island, self.kind, self.failure = island, kind.value, failure
        self.attempts = 0

    def announce(self, announcement: Announcement) -> Posted | None:
        if announcement.island_id == self.island and announcement.kind == self.kind:
            self.attempts += 1
            if isinstance(self.failure, Exception):
                raise self.failure
            raise self.failure("'NoneType' object is not subscriptable")
        return super().announce(announcement)


def islands(db: Database, *owners: str) -> list[int]:
    """Islands started in one channel, each with its announcement and ``LATER`` queued."""
    allocator = Allocator(
        db, layout=BlockLayout(PortRange(36000, 36089), 3), max_live_per_user=5, clock=utcnow
    )
    allocator.sync_layout()
    ids = []
    for owner in owners:
        request = StartRequest(
            owner_id=owner,
            owner_name=owner.lower(),
            branch="dev",
            ttl=timedelta(hours=8),
            chat_channel="C0TEAM",
        )
        island_id = allocator.allocate(request).island_id
        with db.engine.begin() as conn:
            outbox.add(conn, island_id, LATER, at=utcnow())
        ids.append(island_id)
    return ids


def deliverer(db: Database, notifier: MemoryNotifier) -> Deliverer:
    return Deliverer(
        outbox=Outbox(db),
        notifier=notifier,
        port_names=("game", "query", "admin"),
        clock=utcnow,
        policy=DeliveryPolicy(digest=None),
        islands=IslandStore(db),
        requests=ClockRequests(db),
    )


def outcome(db: Database, island_id: int, kind: Notice) -> tuple[str | None, str | None, bool]:
    with db.engine.connect() as conn:
        row = conn.execute(
            select(OutboxMessage).where(
                OutboxMessage.island_id == island_id, OutboxMessage.kind == kind.value
            )
        ).one()
    return row.delivered_as, row.last_error, row.given_up_at is not None


def counted(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_bug_of_ours_on_one_notice_is_logged_with_its_traceback_and_holds_nothing_up(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    (ann,) = islands(db, "U0ANN")
    notifier = Failing(ann, Notice.READY, TypeError)
    before = counted("islandbot_notice_errors_total", error="TypeError")
    with caplog.at_level(logging.WARNING, logger="bot.app.reconcile.deliver"):
        deliverer(db, notifier).deliver()
    # the island's later notices went out, in order, in the same round
    assert notifier.kinds(ann) == ["stop_requested", "stopped"]
    assert outcome(db, ann, Notice.READY) == (
        "failed",
        "TypeError: 'NoneType' object is not subscriptable",
        True,
    )
    assert counted("islandbot_notice_errors_total", error="TypeError") == before + 1
    (logged,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged.levelno == logging.ERROR and logged.exc_info is not None  # its traceback
    deliverer(db, notifier).deliver()
    assert notifier.attempts == 1  # recorded as failed: not tried again


def test_a_notice_the_chat_refuses_for_good_is_recorded_and_its_island_goes_on(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    ann, ben = islands(db, "U0ANN", "U0BEN")
    # both in one digest: their notices go in waves, to each owner or only shown
    IslandStore(db).attach_digest([ann, ben], "C0TEAM", "1800000000.000001")
    refusal = NoticeRefused("chat.postMessage: msg_too_long", reason="msg_too_long")
    notifier = Failing(ann, Notice.READY, refusal)
    before = counted("islandbot_notices_refused_total", reason="msg_too_long", outcome="failed")
    with caplog.at_level(logging.WARNING, logger="bot.app.reconcile.deliver"):
        deliverer(db, notifier).deliver()
    assert notifier.kinds(ann) == ["stop_requested", "stopped"]
    assert notifier.kinds(ben) == ["ready", "stop_requested", "stopped"]
    assert outcome(db, ann, Notice.READY) == ("refused", "chat.postMessage: msg_too_long", True)
    after = counted("islandbot_notices_refused_total", reason="msg_too_long", outcome="failed")
    assert after == before + 1
    (logged,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged.levelno == logging.WARNING and logged.exc_info is None
    assert "msg_too_long" in logged.getMessage()


def test_a_chat_failing_for_now_still_backs_off_and_the_island_waits_behind_it(
    db: Database,
) -> None:
    (ann,) = islands(db, "U0ANN")
    notifier = Failing(ann, Notice.READY, ConnectionError)
    deliverer(db, notifier).deliver()
    assert notifier.kinds(ann) == []  # its later notices wait, in order
    assert outcome(db, ann, Notice.READY) == (
        None,
        "'NoneType' object is not subscriptable",
        False,
    )
    _now, pending = Outbox(db).pending(limit=10)
    assert pending == []  # backing off: not read, its island's later notices neither


@pytest.mark.parametrize("in_digest", [False, True], ids=["own thread", "digest"])
def test_a_notice_that_cannot_even_be_worded_is_recorded_as_failed_and_holds_nothing_up(
    db: Database, in_digest: bool
) -> None:
    """A bug of ours before the notifier is reached (the notice's words): recorded as failed
    at once, not left claimed (for the claim's 10 minutes, then again, forever)."""
    (ann,) = islands(db, "U0ANN")
    if in_digest:
        IslandStore(db).attach_digest([ann], "C0TEAM", "1800000000.000001")
    with db.engine.begin() as conn:  # a failure of a kind this version has no words for
        outbox.add(conn, ann, [(Notice.FAILED, {"kind": "no_such_kind"})], at=utcnow())
        outbox.add(conn, ann, [(Notice.EXPIRED, {})], at=utcnow())
    notifier = MemoryNotifier()
    deliverer(db, notifier).deliver()
    assert outcome(db, ann, Notice.FAILED)[0] == "failed"
    assert outcome(db, ann, Notice.FAILED)[2] is True  # given up: never tried again
    assert notifier.kinds(ann)[-1] == "expired"  # the island's later notice went on
