"""Lark failing the bot, as Lark fails: a 429 with ``x-ogw-ratelimit-reset``, a minute's
outage answered with 503s that are not JSON, a token revoked under the bot, a chat that
refuses for good (the bot removed from it), and a whole team starting at once under Lark's
limit of five messages a second per chat. Nothing accepted is lost, nothing is posted twice,
and an expected failure is one warning line, not a traceback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.storage.database import Database
from tests.fakelark import FakeLark
from tests.larkworld import GROUP, LarkWorld, lark_world


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[LarkWorld]:
    with lark_world(db, tmp_path) as w:
        yield w


def ready_replies(world: LarkWorld, island_id: int) -> list[str]:
    island = world.island(island_id)
    return [t for t in world.thread(island) if f"island #{island_id} is ready" in t]


def wait_ready_once(world: LarkWorld, timeout: float = 40) -> int:
    (island,) = world.started()
    world.until(lambda: ready_replies(world, island.id), timeout)
    return island.id


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert tracebacks == []


def test_a_429_is_waited_out_in_place(world: LarkWorld, caplog: pytest.LogCaptureFixture) -> None:
    world.fake.fail("create", times=2, status=429)  # the root card's first two tries
    world.say("ou_alice", "start dev")
    n = wait_ready_once(world)
    creates = [c for c in world.fake.calls if c.kind == "create" and c.query]
    assert len(world.fake.messages(GROUP)) >= 2  # the user's message and the one card
    cards = [m for m in world.fake.messages(GROUP) if m["msg_type"] == "interactive"]
    assert len(cards) == 1 and len(creates) >= 3
    assert len(ready_replies(world, n)) == 1
    no_tracebacks(caplog)


def test_lark_down_for_a_while_loses_nothing_and_posts_nothing_twice(
    world: LarkWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    world.fake.outage(12)  # 503, not JSON, the token endpoint too
    world.say("ou_alice", "start dev")  # accepted: the bot's own HTTP server answers
    n = wait_ready_once(world, timeout=60)
    world.until(lambda: "**ready**" in world.texts(GROUP)[0], 30)
    cards = [m for m in world.fake.messages(GROUP) if m["msg_type"] == "interactive"]
    assert len(cards) == 1
    assert len(ready_replies(world, n)) == 1
    assert any("not JSON" in r.getMessage() for r in caplog.records)
    no_tracebacks(caplog)


def test_a_revoked_token_is_replaced(world: LarkWorld) -> None:
    world.say("ou_alice", "start dev")
    n = wait_ready_once(world)
    before = world.fake.token_requests
    world.fake.revoke_tokens()  # rotated secret, expired early: every token so far refused
    world.say("ou_alice", f"status {n}")
    world.told("ou_alice", f"island #{n} on")
    assert world.fake.token_requests > before  # a new one (calls racing it may fetch more)


def test_a_chat_that_refuses_for_good_gets_the_owner_told_directly(
    world: LarkWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.fake.leave(GROUP)  # the bot removed from the group after the command came in
    world.say("ou_alice", "start dev")
    world.told("ou_alice", "is ready", timeout=40)  # the ready reply, to her directly
    why = world.told("ou_alice", "could not post in this channel")
    assert "(230002)" in why and "add me to it" in why
    card = world.until(lambda: "**ready**" in world.texts("ou_alice")[0])  # the card: hers
    assert card and "[Stop]" in world.texts("ou_alice")[0]
    assert "**ready**" not in "".join(world.texts(GROUP))
    refused = [r for r in caplog.records if "telling its owner directly" in r.getMessage()]
    assert refused and all(r.levelname == "WARNING" for r in refused)
    no_tracebacks(caplog)


def test_a_team_starting_at_once_in_one_chat_keeps_to_lark_s_limit(
    db: Database, tmp_path: Path
) -> None:
    people = [f"ou_tester{i}" for i in range(6)]
    fake = FakeLark(people=people, chats={GROUP: set(people)})
    with lark_world(db, tmp_path, lark=fake, env={"ISLANDBOT_MAX_ISLANDS_PER_USER": "2"}) as world:
        threads = [
            threading.Thread(target=world.say, args=(p, "start dev"))
            for p in people
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        islands = world.started(12)
        assert len(islands) == 12
        for island in islands:
            world.until(lambda i=island: len(ready_replies(world, i.id)) == 1, 60)  # type: ignore[misc]
        owners = sorted(i.owner_id for i in islands)
        assert owners == sorted(people * 2)
        # the bot's pace (4 a second, no burst) is under Lark's five in any second; requests
        # that reach the fake bunched together by a loaded machine may still be refused, and
        # are retried in place: a few at most, and every island told once
        assert fake.rate_limited <= 3
        for island in islands:
            assert len(ready_replies(world, island.id)) == 1
