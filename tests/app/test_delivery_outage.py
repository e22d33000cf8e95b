"""A notice delivered just as the database went away (issue 21, the notice's claim): its
outcome could not be recorded. The deliverer keeps it and records it first thing once the
database is back, so the notice is neither held for its claim's whole length (10 minutes, to
outlast the slowest post) nor posted a second time. MariaDB through the tests' TCP proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.app.notices import Announcement, Posted
from bot.domain.errors import DatabaseUnavailable
from bot.domain.lifecycle_rules import Notice
from bot.infra.storage.database import Database
from bot.infra.storage.tables import OutboxMessage
from tests import dbutil
from tests.app.test_refused_notices import deliverer, islands
from tests.memory_notifier import MemoryNotifier
from tests.tcpproxy import TcpProxy, database_behind_proxy


class CutAfterPosting(MemoryNotifier):
    """Posts each notice; the first "ready" is posted and then the database goes away."""

    def __init__(self, proxy: TcpProxy) -> None:
        super().__init__()
        self.proxy = proxy

    def announce(self, announcement: Announcement) -> Posted | None:
        posted = super().announce(announcement)
        if announcement.kind == Notice.READY.value and self.kinds(announcement.island_id) == [
            "ready"
        ]:
            self.proxy.outage(1.0)  # open connections reset, new ones refused for 1 s
        return posted


@pytest.fixture
def proxied(mysql_session_url: str) -> Iterator[tuple[Database, TcpProxy]]:
    wiper = dbutil.migrated(mysql_session_url)
    dbutil.wipe(wiper)
    wiper.dispose()
    with database_behind_proxy(mysql_session_url) as proxied_db:
        yield proxied_db


@pytest.mark.mysql
def test_a_posted_notice_the_database_could_not_record_is_recorded_when_it_is_back(
    proxied: tuple[Database, TcpProxy],
) -> None:
    db, proxy = proxied
    (ann,) = islands(db, "U0ANN")
    notifier = CutAfterPosting(proxy)
    delivery = deliverer(db, notifier)
    with pytest.raises(DatabaseUnavailable):
        delivery.deliver()  # ready posted; its "sent" not taken; the next claim fails
    assert notifier.kinds(ann) == ["ready"]
    deadline = 50
    while True:  # the database back within about a second: the next rounds go on
        try:
            delivery.deliver()
            break
        except DatabaseUnavailable:
            deadline -= 1
            assert deadline, "the database did not come back"
            time.sleep(0.1)
    delivery.deliver()
    assert notifier.kinds(ann) == ["ready", "stop_requested", "stopped"]  # ready once
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage.kind, OutboxMessage.delivered_as, OutboxMessage.attempts)
            .where(OutboxMessage.island_id == ann)
            .order_by(OutboxMessage.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("announce", "posted", 1),
        ("ready", "posted", 1),
        ("stop_requested", "posted", 1),
        ("stopped", "posted", 1),
    ]
    delivery.close()
