"""A chat that refuses for good (issue 21, defect 7): the whole bot, through the real
``slack_sdk``, against the fake Slack answering as Slack does (HTTP 200, ``ok: false``).

- Ann's "ready" is refused ``msg_too_long`` however it is posted: it is recorded as refused
  and counted, once, not tried again, and her island's later notices arrive in its thread,
  in order, at once (not a day later).
- Ben's channel is archived after his island is ready (``is_archived`` for every call naming
  it): his island's later notices come to him directly, in order, saying where they could
  not go.
- Cat's root message is refused ``invalid_blocks`` while it carries blocks: it is posted as
  plain text, and her island's thread goes on under it.

Loopback only, no randomness; bounded: about 20 seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.infra import metrics
from bot.infra.storage.database import Database
from bot.infra.storage.tables import OutboxMessage
from tests.slackworld import slack_world
from tests.system.botprocs import key_of

OWNERS = {"U0ANN": "C0TEAM", "U0BEN": "C0SIDE", "U0CAT": "C0PLAIN"}


def outbox(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def all_done(db: Database, kinds: set[str] | None = None) -> bool:
    rows = [r for r in outbox(db) if kinds is None or r.kind in kinds]
    return bool(rows) and all(r.sent_at is not None or r.given_up_at is not None for r in rows)


def refused(reason: str, outcome: str) -> float:
    labels = {"reason": reason, "outcome": outcome}
    return metrics.REGISTRY.get_sample_value("islandbot_notices_refused_total", labels) or 0.0


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m["text"]) for m in messages]


@pytest.mark.slow
def test_a_chat_that_refuses_for_good_holds_up_no_islands_later_notices(
    db: Database, tmp_path: Path
) -> None:
    before = {
        ("msg_too_long", "failed"): refused("msg_too_long", "failed"),
        ("is_archived", "rerouted"): refused("is_archived", "rerouted"),
        ("invalid_blocks", "reworded"): refused("invalid_blocks", "reworded"),
    }
    with slack_world(db, tmp_path) as w:
        fake = w.fake
        fake.refuse("msg_too_long", match="<@U0ANN> island")  # her ready, as it is or plain
        fake.refuse("invalid_blocks", match="<@U0CAT>'s island", with_blocks=True)  # her root
        for user, channel in OWNERS.items():
            w.command("start dev", user=user, user_name=user[3:].lower(), channel=channel)
        w.until(lambda: len(w.islands()) == 3)
        ids = {i.owner_id: i.id for i in w.islands()}
        w.until(lambda: all(i.state.value == "ready" for i in w.islands()), 30)
        w.until(lambda: all_done(db, {"announce", "ready"}), 20)
        ann, ben, cat = (w.island(ids[u]) for u in OWNERS)
        assert ben.chat_channel == "C0SIDE" and ben.chat_thread is not None
        fake.refuse("is_archived", channel="C0SIDE")  # Ben's channel archived meanwhile
        for user, island_id in ids.items():
            w.command(f"stop {island_id}", user=user, user_name=user[3:].lower())
        w.until(lambda: all(i.state.value == "stopped" for i in map(w.island, ids.values())))
        w.until(lambda: all_done(db), 20)  # a backed-off notice would hold its island longer

        rows = outbox(db)
        given_up = [(r.island_id, r.kind, r.delivered_as) for r in rows if r.given_up_at]
        assert given_up == [(ann.id, "ready", "refused")]  # recorded, and nothing else
        (ready,) = [r for r in rows if r.island_id == ann.id and r.kind == "ready"]
        assert ready.attempts == 1 and "msg_too_long" in str(ready.last_error)
        assert [(m, e) for m, e, _p in fake.refused if e == "msg_too_long"] == [
            ("chat.postMessage", "msg_too_long")
        ]  # refused once: not tried again, not backed off like a 503

        # Ann's island's later notices, in its thread, in order
        thread = fake.thread("C0TEAM", str(ann.chat_thread))
        told = [t for t in texts(thread) if "stopping" in t or "is stopped" in t]
        assert len(told) == 2 and "stopping" in told[0] and "is stopped" in told[1], told
        assert not [t for t in texts(thread) if "is ready" in t]

        # Ben's: his ready in his channel's thread, then the rest to him directly, in order
        assert any("is ready" in t for t in texts(fake.thread("C0SIDE", str(ben.chat_thread))))
        direct = texts(fake.posts("D0BEN"))
        assert len(direct) == 2, direct
        assert all(t.startswith("(This could not be posted in <#C0SIDE>") for t in direct)
        assert "stopping" in direct[0] and "is stopped" in direct[1]
        later = [f"outbox-{r.id}" for r in rows if r.island_id == ben.id][-2:]
        assert [key_of(m) for m in fake.posts("D0BEN")] == later  # each once, by its key

        # Cat's root message as plain text, her island's thread under it
        (root,) = [
            m
            for _at, how, m in fake.written
            if how == "chat.postMessage" and m["ts"] == cat.chat_thread
        ]
        assert root["blocks"] is None and "<@U0CAT>'s island" in str(root["text"])
        replies = texts(fake.thread("C0PLAIN", str(cat.chat_thread)))
        assert any("is ready" in t for t in replies) and "is stopped" in replies[-1]

    assert refused("msg_too_long", "failed") == before["msg_too_long", "failed"] + 1
    assert refused("is_archived", "rerouted") == before["is_archived", "rerouted"] + 2
    assert refused("invalid_blocks", "reworded") == before["invalid_blocks", "reworded"] + 1
