"""The whole team starts at once in one channel, through Slack's limits (the fake enforces
them): the channel sees a digest kept current instead of a wall of messages, each owner is
told "ready" with the ports and buttons directly, and Slack never has to say 429."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from sqlalchemy import select

from bot.domain.buttons import ButtonAction
from bot.domain.notice_routes import DIGEST_AFTER
from bot.infra.storage.database import Database
from bot.infra.storage.tables import OutboxMessage
from tests import fakeslack
from tests.slackworld import SlackWorld, slack_world
from tests.system.botprocs import check_announced

USERS = [f"U0T{n:03d}" for n in range(8)]


def burst(world: SlackWorld, users: list[str] = USERS) -> None:
    """``users`` each type ``/island start dev`` at the same moment."""
    gate = threading.Barrier(len(users))

    def start(user: str) -> None:
        gate.wait()
        world.command("start dev", user=user, user_name=user.lower())

    threads = [threading.Thread(target=start, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)


def _burst_until_all_ready(world: SlackWorld) -> None:
    burst(world)
    world.until(
        lambda: (
            len(world.islands()) == len(USERS)
            and all(i.state.value == "ready" and i.chat_thread for i in world.islands())
        ),
        timeout=60,
    )


def _payload(message: dict[str, object]) -> dict[str, object]:
    metadata = message.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return dict((metadata or {}).get("event_payload") or {})  # type: ignore[union-attr]


def test_a_burst_in_one_channel_makes_a_digest_and_tells_each_owner_directly(
    db: Database, tmp_path: Path
) -> None:
    with slack_world(db, tmp_path) as world:
        burst(world)
        world.until(lambda: len(world.islands()) == len(USERS))
        world.until(
            lambda: all(i.state.value == "ready" and i.chat_thread for i in world.islands()),
            timeout=60,
        )
        islands = world.islands()
        in_digest = [i for i in islands if i.chat_digest]
        # announced alone before the burst was seen: at most what the channel's queue takes
        # without holding an announcement back longer than a digest is worth
        pace = world.sender.pace()
        alone = int(pace.burst + DIGEST_AFTER.total_seconds() * pace.per_second)
        assert len(in_digest) >= len(USERS) - alone, [(i.id, i.chat_digest) for i in islands]
        digests = {i.chat_thread for i in in_digest}
        assert digests
        top = [m for m in world.fake.posts("C0TEAM") if m.get("thread_ts") in (None, m["ts"])]
        assert len(top) == len(islands) - len(in_digest) + len(digests)
        # each digest island's owner is told ready, with the ports and the island's buttons
        for island in in_digest:
            dm = world.until(
                lambda i=island: [
                    m
                    for m in world.fake.posts("D" + i.owner_id[1:])
                    if "is ready on" in str(m["text"]) and f"{i.id}" in str(m["text"])
                ]
            )
            assert len(dm) == 1
            actions = [b for b in dm[0]["blocks"] if b["type"] == "actions"]
            values = [e["action_id"] for e in actions[0]["elements"]]
            assert ButtonAction.STOP.value in values
            # nothing about it is threaded under the digest: the digest shows it
            assert not [
                m
                for m in world.fake.thread("C0TEAM", str(island.chat_thread))
                if str(island.id) in str(m["text"])
            ]
        # the digest comes to show every island in it ready
        for ts in digests:
            world.until(
                lambda ts=ts: (
                    (shown := [m for m in world.fake.posts("C0TEAM") if m["ts"] == ts])
                    and set(_payload(shown[0]).get("islands", {}).values()) == {"ready"}  # type: ignore[union-attr]
                    and len(_payload(shown[0])["islands"])
                    == sum(  # type: ignore[arg-type]
                        1 for i in in_digest if i.chat_thread == ts
                    )
                ),
                timeout=30,
            )
        assert world.fake.rate_limited == 0, world.fake.rate_limited_by


def test_a_stop_pressed_in_the_owners_direct_message_stops_the_island(
    db: Database, tmp_path: Path
) -> None:
    with slack_world(db, tmp_path, allowed_channels=frozenset({"C0TEAM"})) as world:
        _burst_until_all_ready(world)
        island = next(i for i in world.islands() if i.chat_digest)
        dm_channel = "D" + island.owner_id[1:]
        dm = world.until(
            lambda: [m for m in world.fake.posts(dm_channel) if "is ready on" in str(m["text"])]
        )[0]
        stop = next(
            e
            for b in dm["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == ButtonAction.STOP.value
        )
        # someone else's click in that conversation is refused by the island's permissions
        status, _, _ = world.send(
            fakeslack.button_click(
                stop["action_id"],
                stop["value"],
                user="U0T999",
                channel=dm_channel,
                response_url=world.fake.response_url("U0T999"),
            ),
            content_type=fakeslack.FORM,
        )
        assert status == 200
        assert "Only its owner or an admin may stop" in world.wait_answer("U0T999")
        assert world.island(island.id).state.value == "ready"
        status, _, _ = world.send(
            fakeslack.button_click(
                stop["action_id"], stop["value"], user=island.owner_id, channel=dm_channel
            ),
            content_type=fakeslack.FORM,
        )
        assert status == 200
        world.until(lambda: world.island(island.id).state.value in ("stopping", "stopped"))
        others = [i for i in world.islands() if i.id != island.id]
        assert all(i.state.value == "ready" for i in others)


def test_a_digest_the_channel_refuses_announces_each_island_on_its_own(
    db: Database, tmp_path: Path
) -> None:
    with slack_world(db, tmp_path) as world:
        world.fake.fail("chat.postMessage", error="not_in_channel", match="at once", count=1)
        _burst_until_all_ready(world)

        def notices() -> list[object]:
            with db.engine.connect() as conn:
                return list(conn.execute(select(OutboxMessage).order_by(OutboxMessage.id)).all())

        world.until(lambda: all(n.sent_at is not None for n in notices()), timeout=60)  # type: ignore[attr-defined]
        digests = [
            c
            for c in world.fake.calls
            if c.method == "chat.postMessage" and "at once" in str(c.params.get("text"))
        ]
        assert digests  # the first was refused: its islands were announced on their own
        islands = world.islands()
        assert [i for i in islands if not i.chat_digest]
        check_announced(islands, notices(), world.fake)  # each posted once, recorded so


def test_three_people_starting_seconds_apart_each_get_a_thread(
    db: Database, tmp_path: Path
) -> None:
    """Issue 21: alice, bob and carol start islands five and one seconds apart in a quiet
    channel. Three root messages wait a second at most in its paced queue (Slack takes about
    one a second after a short burst): no digest, least of all one of carol's island alone,
    and each "ready" is a threaded reply under its island's root message, not a DM."""
    people = ["U0ALICE", "U0BOB", "U0CAROL"]
    with slack_world(db, tmp_path) as world:
        began = time.monotonic()
        for user, at in zip(people, (0.0, 5.0, 6.0), strict=True):
            time.sleep(max(0.0, began + at - time.monotonic()))
            status, _, _ = world.command("start dev", user=user, user_name=user[2:].lower())
            assert status == 200
        world.until(
            lambda: (
                len(world.islands()) == 3
                and all(i.state.value == "ready" and i.chat_thread for i in world.islands())
            ),
            timeout=30,
        )
        islands = sorted(world.islands(), key=lambda i: i.id)
        assert [i.owner_id for i in islands] == people
        assert not [i.id for i in islands if i.chat_digest], "an island went into a digest"
        assert not [m for m in world.fake.posts("C0TEAM") if "at once" in str(m["text"])]
        top = [m for m in world.fake.posts("C0TEAM") if m.get("thread_ts") in (None, m["ts"])]
        assert sorted(str(m["ts"]) for m in top) == sorted(str(i.chat_thread) for i in islands)
        for island in islands:  # each announced in its own root message, ready in its thread
            root = next(m for m in top if m["ts"] == island.chat_thread)
            assert f"{island.id}" in str(root["text"])
            world.until(
                lambda i=island: [
                    m
                    for m in world.fake.thread("C0TEAM", str(i.chat_thread))
                    if "is ready on" in str(m["text"])
                ],
                timeout=20,
            )
        direct = {c: world.fake.posts(c) for c in world.fake.messages if c.startswith("D")}
        assert not any(direct.values()), direct
        assert world.fake.rate_limited == 0, world.fake.rate_limited_by
