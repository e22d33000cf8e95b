"""Weeks of uptime, simulated (issue 21): the whole bot (``tests.slackworld``: kubesim, the fake
Slack over HTTP, the bot's own HTTP server, its scheduled loop) lives through working days and
quiet stretches, its time source moved forward past the islands' expiry, the clock requests'
expiry and the outbox's and intake's clean-up, several times, on SQLite and MariaDB.

Faithful to both clocks: the bot's time source (``Tuning.clock``) is moved forward, and what
the database's clock judged (a notice sent, a request seen, a claim, a backoff) is moved back
by as much, as it would have aged (leases and heartbeats are not: the process lives on and
renews them). Housekeeping runs after each stretch of time, as the loop runs it every ten
minutes.

Each working day: two islands started (one command delivered twice, as a duplicate delivery);
the day's first post fails (``internal_error``), and a clock request's message reaches Slack
but its answer comes too late, so both are tried again looking for their keys in the channel
first (where a repeated key does harm: an old message would be taken for the new one); a clock
request on each island, one rejected by its owner with the button, one left to expire; then a
day passes: the islands expire and stop, the request expires. Some days are followed by a quiet
week, after which housekeeping has forgotten every notice (defect 5: SQLite then handed out
the old ids again, so the old keys ``outbox-{id}``).

Afterwards, over the whole run: no notice key posted twice, every notice written delivered
exactly once and where it belongs (its island's root message, thread, or request message),
none lost nor given up; every request acted on once and no distinct request taken for a
duplicate; each unanswered clock request expired once and shown expired once. Bounded: about a
minute per backend."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, select

from bot.app.reconcile.deliver import DeliveryPolicy
from bot.domain.buttons import ButtonAction
from bot.domain.time_source import utcnow
from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry, ClockRequest, Delivery, Island, OutboxMessage
from tests import fakeslack
from tests.fakeslack import FakeSlack
from tests.slackworld import SlackWorld, slack_world

CHANNEL = "C0TEAM"
ANN, BEN, CAT = ("U0ANN", "ann"), ("U0BEN", "ben"), ("U0CAT", "cat")
DAY = timedelta(days=1)
# the quiet stretch after each working day: a week or more forgets every notice (7 days kept)
QUIET = (timedelta(0), timedelta(days=8), timedelta(0), timedelta(days=2), timedelta(days=8))
# what the database's clock judged, aged as simulated time passes
AGED: dict[Table, tuple[str, ...]] = {
    OutboxMessage.__table__: ("sent_at", "given_up_at", "next_attempt_at", "claim_until"),  # type: ignore[dict-item]
    Delivery.__table__: ("seen_at", "done_at", "claim_until"),  # type: ignore[dict-item]
}
ANSWER_TIMEOUT_S = 2  # one Slack Web API call
EXPIRED_TEXT = "Expired without a decision"
REJECTED_TEXT = "Rejected by <@U0ANN>"


class SimulatedTime:
    """The bot's time source, ``offset`` ahead of the real one."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass
class Run:
    """What the test saw over the whole run."""

    notices: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # every outbox row seen
    forgotten: list[dict[str, int]] = field(default_factory=list)  # housekeeping's answers
    sent_twice: int = 0  # command deliveries sent again on purpose
    starts: Counter[str] = field(default_factory=Counter)  # start commands per owner
    asks: int = 0  # clock requests asked


def key_of(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return ((metadata or {}).get("event_payload") or {}).get("key")


def islands_shown(message: dict[str, Any]) -> set[str]:
    metadata = message.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return set(((metadata or {}).get("event_payload") or {}).get("islands") or {})


def rows(db: Database, query: Any) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(query).all())


def all_islands(db: Database) -> list[Any]:
    return rows(db, select(Island).order_by(Island.id))


def requests(db: Database) -> list[Any]:
    return rows(db, select(ClockRequest).order_by(ClockRequest.id))


def outbox(db: Database) -> list[Any]:
    return rows(db, select(OutboxMessage).order_by(OutboxMessage.id))


def age(db: Database, by: timedelta) -> None:
    """Every timestamp the database's clock wrote, ``by`` older."""
    with db.engine.begin() as conn:
        for table, columns in AGED.items():
            keys = list(table.primary_key.columns)
            for column in columns:
                col = table.c[column]
                for row in conn.execute(select(col, *keys).where(col.is_not(None))).all():
                    conn.execute(
                        table.update()
                        .where(*(k == row[i + 1] for i, k in enumerate(keys)))
                        .values({column: row[0] - by})
                    )


def quiet(w: SlackWorld) -> bool:
    """Every notice out, every request done."""
    unsent = [r for r in outbox(w.db) if r.sent_at is None]
    assert all(r.given_up_at is None for r in outbox(w.db)), "a notice was given up"
    pending = rows(w.db, select(Delivery.key).where(Delivery.state != "done"))
    return not unsent and not pending


def settle(w: SlackWorld, run: Run, *, timeout: float = 20) -> None:
    w.until(lambda: quiet(w), timeout)
    for r in outbox(w.db):  # an id could repeat (defect 5): a row is the notice it carries
        run.notices[(r.id, r.island_id, r.kind, r.created_at)] = r


def time_passes(w: SlackWorld, clock: SimulatedTime, span: timedelta) -> None:
    """``span`` later, on both clocks."""
    age(w.db, span)
    clock.offset += span


def housekeeping(w: SlackWorld, run: Run) -> None:
    settle(w, run)
    run.forgotten.append(w.engine.housekeeping())


def start(w: SlackWorld, run: Run, user: tuple[str, str], *, twice: bool = False) -> int:
    known = {i.id for i in all_islands(w.db)}
    body = fakeslack.slash_command(
        "start dev", user=user[0], user_name=user[1], response_url=w.fake.response_url(user[0])
    )
    for _ in range(2 if twice else 1):
        status, _answer, _s = w.send(body)
        assert status == 200
    run.starts[user[0]] += 1
    run.sent_twice += twice
    new = w.until(lambda: [i.id for i in all_islands(w.db) if i.id not in known], 10)
    assert len(new) == 1, new
    return int(new[0])


def ask_clock(w: SlackWorld, run: Run, island_id: int) -> Any:
    answers = len(w.answers(CAT[0]))
    w.command(f"time {island_id} +1d", user=CAT[0], user_name=CAT[1])
    assert "decides" in w.wait_answer(CAT[0], answers + 1)
    run.asks += 1
    return w.until(
        lambda: [r for r in requests(w.db) if r.island_id == island_id and r.chat_ts], 10
    )[0]


def shown(w: SlackWorld, ts: str, text: str) -> bool:
    return any(m["ts"] == ts and text in str(m["text"]) for m in w.fake.posts(CHANNEL))


def working_day(w: SlackWorld, clock: SimulatedTime, run: Run) -> None:
    w.fake.fail("chat.postMessage", error="internal_error")  # the day's first post fails
    ann = start(w, run, ANN, twice=True)
    ben = start(w, run, BEN)
    w.until(lambda: {w.island(i).state.value for i in (ann, ben)} == {"ready"}, 30)
    settle(w, run)
    # a request's message reaches Slack, but the answer comes too late
    w.fake.fail("chat.postMessage", delay=ANSWER_TIMEOUT_S + 1, match=f"move island #{ben}'s")
    rejected, left = ask_clock(w, run, ann), ask_clock(w, run, ben)
    w.send(
        fakeslack.button_click(
            ButtonAction.CLOCK_REJECT,
            str(rejected.id),
            user=ANN[0],
            message_ts=rejected.chat_ts,
            response_url=w.fake.response_url(ANN[0]),
        )
    )
    w.until(lambda: shown(w, rejected.chat_ts, REJECTED_TEXT))
    settle(w, run)
    time_passes(w, clock, DAY)  # the islands (8 hours) and the request (1 hour) expire
    w.until(lambda: {w.island(i).state.value for i in (ann, ben)} == {"stopped"}, 30)
    w.until(lambda: shown(w, left.chat_ts, EXPIRED_TEXT))
    housekeeping(w, run)


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[tuple[SlackWorld, SimulatedTime]]:
    clock = SimulatedTime()
    with slack_world(
        db,
        tmp_path,
        # the subject is time, not Slack's pace (tests/system/test_slack_outage.py has that)
        slack=FakeSlack(channel_rate=None, tiers=None),
        channel_rate=50,
        slack_timeout_s=ANSWER_TIMEOUT_S,
        port_range="37400-37489",  # its own: other Slack worlds may run beside it
        clock=clock,
        clock_requests_every=timedelta(seconds=0.5),
        delivery=DeliveryPolicy(
            backoff_base=timedelta(seconds=0.1), backoff_cap=timedelta(seconds=0.5)
        ),
    ) as w:
        yield w, clock


@pytest.mark.slow
def test_weeks_of_uptime_repeat_no_key_and_lose_or_double_nothing(
    world: tuple[SlackWorld, SimulatedTime], caplog: pytest.LogCaptureFixture
) -> None:
    w, clock = world
    run = Run()
    with caplog.at_level(logging.INFO, logger="bot.chat.front"):
        for stretch in QUIET:
            working_day(w, clock, run)
            if stretch:
                time_passes(w, clock, stretch)
                housekeeping(w, run)
    duplicates = [r for r in caplog.records if r.getMessage().startswith("duplicate delivery")]
    db = w.db

    # the simulation did what it is for: the clean-ups forgot notices and request keys, and
    # after each quiet week, every notice
    assert sum(1 for f in run.forgotten if f["notices"]) >= 2, run.forgotten
    assert sum(1 for f in run.forgotten if f["deliveries"]) >= 2, run.forgotten

    # no key posted twice: not a notice's (outbox-{id}), not a digest's
    posted = [m for _at, method, m in list(w.fake.written) if method == "chat.postMessage"]
    keys = Counter(k for m in posted if (k := key_of(m)) is not None)
    assert not [k for k, n in keys.items() if n > 1], f"keys posted twice: {keys}"
    # each day's two posts tried again looked for their keys in the channel first
    assert w.fake.count("conversations.history") >= 2 * len(QUIET)

    # every notice written, delivered exactly once, where it belongs; none lost nor given up
    notices = sorted(run.notices.values(), key=lambda n: (n.created_at, n.id))
    ids = Counter(n.id for n in notices)
    assert not [i for i, n in ids.items() if n > 1], f"outbox ids handed out again: {ids}"
    assert all(n.sent_at is not None and n.given_up_at is None for n in notices)
    islands = {i.id: i for i in all_islands(db)}
    asked = {r.id: r for r in requests(db)}
    by_key = {key_of(m): m for m in posted}
    # each island announced in a root message of its own, not in an older one that carried
    # the same key (taken for it: "already posted")
    roots = Counter(i.chat_thread for i in islands.values())
    assert [t for t, n in roots.items() if n > 1 or t is None] == [], sorted(
        (i.chat_thread, i.id) for i in islands.values()
    )
    for n in notices:
        if n.delivered_as != "posted":
            assert (n.kind, n.delivered_as) in {("scheduled", "superseded")}, n
            continue
        island = islands[n.island_id]
        message = by_key.get(f"outbox-{n.id}")
        assert message is not None, f"notice {n.id} ({n.kind}, island {n.island_id}) lost"
        if n.kind == "announce":
            assert message["ts"] == island.chat_thread, (n, message)
            assert islands_shown(message) == {str(island.id)}, (n, message)
        elif n.kind == "clock_requested":
            request = asked[n.detail["request"]]
            assert message["ts"] == request.chat_ts and request.island_id == island.id, n
        else:
            assert message["thread_ts"] == island.chat_thread, (n, message)
    for island in islands.values():
        kinds = [n.kind for n in notices if n.island_id == island.id and n.delivered_as]
        assert kinds[0] == "announce" and kinds.count("announce") == 1, (island.id, kinds)
        assert kinds.count("ready") == kinds.count("expired") == 1, (island.id, kinds)
        assert kinds[-1] == "stopped" and island.state == "stopped", (island.id, kinds)

    # every request carried out once, none taken for another's duplicate
    assert Counter(i.owner_id for i in islands.values()) == run.starts
    assert len(duplicates) == run.sent_twice, [r.getMessage() for r in duplicates]
    assert len(asked) == run.asks == 2 * len(QUIET)

    # each request: posted once; rejected, or expired once and shown expired once
    expiries = Counter(
        e.detail["request"]
        for e in rows(db, select(AuditEntry).where(AuditEntry.action == "clock:expire"))
    )
    updates = [m for _at, method, m in list(w.fake.written) if method == "chat.update"]
    assert len({r.chat_ts for r in asked.values()}) == len(asked)
    for r in asked.values():
        assert r.state in ("expired", "rejected"), r
        assert sum(1 for m in posted if m["ts"] == r.chat_ts) == 1
        shown_expired = sum(
            1 for m in updates if m["ts"] == r.chat_ts and EXPIRED_TEXT in m["text"]
        )
        if r.state == "expired":
            assert expiries[r.id] == 1 and shown_expired == 1, (r, expiries, shown_expired)
        else:
            assert r.decided_by == ANN[0] and expiries[r.id] == 0 and shown_expired == 0, r
    assert Counter(r.state for r in asked.values()) == {
        "expired": len(QUIET),
        "rejected": len(QUIET),
    }
