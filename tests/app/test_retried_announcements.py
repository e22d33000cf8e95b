"""An announcement tried again after the bot died between posting it and recording it (issue
21): it goes where its first attempt went, whatever is being announced with it now. Posted
on its own, it is found in the channel and recorded, never put into a digest of the burst that
started meanwhile; posted in a digest, that digest is found by the key it was planned with,
however the islands announced now would be shared out; posted on its own after the channel
refused its digest, never in that digest when the channel would take it now. Either way each
island's announcement is in exactly one message. The real ``slack_sdk`` against the fake Web
API, which enforces Slack's per-channel posting rate."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.chat.notifier import ChatNotifier
from bot.chat.pacing import ChannelQueues
from bot.chat.slack.sender import SlackSender, web_client
from bot.domain.notice_routes import DigestPolicy
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.islands import IslandStore
from tests import fakeslack
from tests.app.reconcile_world import World
from tests.fakeslack import FakeSlack


class DiesAfterPosting(SlackSender):
    """Posts as the bot does; once, right after posting a message whose key ``dies_on``
    accepts, fails as a bot killed then would: the post is in the channel, its record is not."""

    def __init__(self, *args: Any, dies_on: Callable[[str], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dies_on = dies_on
        self.died: str | None = None

    def post(self, channel: str, text: str, **kwargs: Any) -> str:
        ts = super().post(channel, text, **kwargs)
        key = kwargs.get("key")
        if self.died is None and key is not None and self.dies_on(key):
            self.died = key
            raise ConnectionError("the bot died after posting, before recording the post")
        return ts


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with fakeslack.serving() as f:
        yield f


def in_slack(world: World, fake: FakeSlack, dies_on: Callable[[str], bool]) -> DiesAfterPosting:
    """The world's notices go to the fake Slack through the real notifier; digests as soon as a
    channel's queue would hold an announcement back a second (three islands at most each)."""
    sender = DiesAfterPosting(
        web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url),
        queues=ChannelQueues(rate=1.0, burst=3.0, idle_s=1),
        dies_on=dies_on,
    )
    world.notifier = ChatNotifier(
        sender,
        IslandStore(world.db),
        requests=ClockRequests(world.db),
        port_names=("game", "query", "admin"),
        extend_step=timedelta(hours=2),
    )
    policy = DigestPolicy(after=timedelta(seconds=1), size=3)
    world.settings = replace(
        world.settings, delivery=replace(world.settings.delivery, digest=policy)
    )
    world.engine = world.new_engine()
    return sender


def shown_in(fake: FakeSlack, channel: str) -> dict[int, list[str]]:
    """Each island -> the keys of the channel's root messages (its own, or digests) showing
    it, as Slack holds them now."""
    shown: dict[int, list[str]] = {}
    for message in fake.posts(channel):
        if message.get("thread_ts") not in (None, message.get("ts")):
            continue  # a reply in a thread
        metadata = message.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        payload = (metadata or {}).get("event_payload") or {}
        for island in payload.get("islands", {}):
            shown.setdefault(int(island), []).append(str(payload.get("key")))
    return shown


def announced(world: World, fake: FakeSlack, ids: list[int]) -> bool:
    """Every island's announcement recorded, and shown in the channel (a digest is brought up
    to date with the islands recorded into it a moment after)."""
    return (
        all(i.chat_thread is not None for i in IslandStore(world.db).many(ids))
        and not any(n.kind.value == "announce" for n in world.engine.outbox.pending(limit=100)[1])
        and set(ids) <= set(shown_in(fake, "C0TEAM"))
    )


def test_an_announcement_posted_alone_is_not_put_into_the_burst_that_started_meanwhile(
    world: World, fake: FakeSlack
) -> None:
    sender = in_slack(world, fake, dies_on=lambda key: key.startswith("outbox-"))
    first = world.start(user="U0FIRST")
    world.until(lambda: sender.died is not None)  # its root message posted, not recorded
    burst = [world.start(user=f"U0TEAM{n}") for n in range(4)]
    try:
        world.until(lambda: announced(world, fake, [first, *burst]), timeout=40)
        ids = [first, *burst]
        shown = shown_in(fake, "C0TEAM")
        assert sorted(shown) == sorted(ids)
        assert all(len(keys) == 1 for keys in shown.values()), shown
        assert shown[first] == [sender.died]  # its own, found and recorded
        record = IslandStore(world.db).get(first)
        assert not record.chat_digest
        assert all(keys[0].startswith("digest-") for i, keys in shown.items() if i != first)
    finally:
        world.notifier.close()  # type: ignore[attr-defined]


def test_a_digest_tried_again_is_found_by_the_key_it_was_planned_with(
    world: World, fake: FakeSlack
) -> None:
    """Five islands at once: digests of three and two. The bot dies after posting the first;
    one more island starts before it is tried again. Had its islands been shared out again,
    one would have joined the second digest (a young one with room) and the others opened a
    new digest with the newcomer: all three shown twice."""
    sender = in_slack(world, fake, dies_on=lambda key: key.startswith("digest-"))
    burst = [world.start(user=f"U0TEAM{n}") for n in range(5)]
    world.until(lambda: sender.died is not None)
    later = world.start(user="U0LATE")
    try:
        world.until(lambda: announced(world, fake, [*burst, later]), timeout=40)
        shown = shown_in(fake, "C0TEAM")
        assert sorted(shown) == sorted([*burst, later])
        assert all(len(keys) == 1 for keys in shown.values()), shown
        store = IslandStore(world.db)
        died_in = [i for i, keys in shown.items() if keys == [sender.died]]
        assert len(died_in) == 3  # the digest that was posted shows the three it was posted for
        assert len({store.get(i).chat_thread for i in died_in}) == 1
        assert all(store.get(i).chat_digest for i in died_in)
    finally:
        world.notifier.close()  # type: ignore[attr-defined]


def test_islands_announced_alone_after_their_digest_was_refused_are_never_put_back_into_it(
    world: World, fake: FakeSlack
) -> None:
    """The channel refuses the first digest (too long); its islands are announced on their own
    and the bot dies right after the first of those posts. The channel would take the digest
    now: tried again, they are still announced on their own, the first found where it went."""
    sender = in_slack(world, fake, dies_on=lambda key: key.startswith("outbox-"))
    burst = [world.start(user=f"U0TEAM{n}") for n in range(5)]
    fake.refuse("msg_too_long", key=f"digest-{min(burst)}")
    world.until(lambda: sender.died is not None)
    fake.stop_refusing()
    try:
        world.until(lambda: announced(world, fake, burst), timeout=40)
        shown = shown_in(fake, "C0TEAM")
        assert sorted(shown) == sorted(burst)
        assert all(len(keys) == 1 for keys in shown.values()), shown
        alone = [i for i, keys in shown.items() if keys[0].startswith("outbox-")]
        assert len(alone) == 3  # the refused digest's three, each on its own
        assert f"digest-{min(burst)}" not in {k for keys in shown.values() for k in keys}
        store = IslandStore(world.db)
        assert not any(store.get(i).chat_digest for i in alone)
    finally:
        world.notifier.close()  # type: ignore[attr-defined]
