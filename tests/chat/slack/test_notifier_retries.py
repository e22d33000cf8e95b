"""A retried notice for an island's owner (issue 21): its first attempt may have gone to the
owner directly (the channel crowded by a burst then) and the bot died before recording it.
The retry, routed to the island's thread, first looks in the owner's direct conversation:
found there, it is not posted in the thread as well. The real ``slack_sdk`` against the fake
Web API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.app.notices import Announcement
from bot.chat.notifier import ChatNotifier
from bot.chat.pacing import ChannelQueues
from bot.chat.slack.sender import SlackSender, web_client
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from tests import fakeslack
from tests.app.test_refused_notices import islands
from tests.fakeslack import FakeSlack
from tests.system.botprocs import key_of


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with fakeslack.serving() as f:
        yield f


def ready(island_id: int, thread: str, *, retry: bool) -> Announcement:
    return Announcement(
        key="outbox-42",
        island_id=island_id,
        kind="ready",
        text=f"<@U0ANN> island {island_id} is ready",
        owner_id="U0ANN",
        channel="C0TEAM",
        thread_ts=thread,
        broadcast=False,
        status_line="ready",
        retry=retry,
        route="thread",
    )


@pytest.mark.parametrize("told_before", [True, False], ids=["told before", "not told"])
def test_a_retried_notice_told_to_its_owner_before_is_not_posted_in_the_thread_too(
    fake: FakeSlack, db: Database, told_before: bool
) -> None:
    slack = SlackSender(
        web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url),
        queues=ChannelQueues(rate=50.0, burst=3.0, idle_s=1),
    )
    (ann,) = islands(db, "U0ANN")
    root = slack.post("C0TEAM", "root", key="outbox-1")
    IslandStore(db).attach_thread(ann, "C0TEAM", root)
    notifier = ChatNotifier(
        slack,
        IslandStore(db),
        requests=ClockRequests(db),
        port_names=("game", "query", "admin"),
        extend_step=timedelta(hours=2),
    )
    if told_before:  # the first attempt, the channel crowded: to the owner directly
        slack.post("U0ANN", "ready, told directly", key="outbox-42")
    try:
        notifier.announce(ready(ann, root, retry=True))
    finally:
        notifier.close()
    in_thread = [m for m in fake.thread("C0TEAM", root) if key_of(m) == "outbox-42"]
    everywhere = [m for m in fake.posts() if key_of(m) == "outbox-42"]
    assert len(everywhere) == 1
    assert len(in_thread) == (0 if told_before else 1)
