"""Requests Slack did not sign, signed wrongly, or too old get 401 and reach nothing; channels
and roles are enforced by user id; a full work pool refuses instead of hanging."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry
from tests import fakeslack
from tests.slackworld import SlackWorld, slack_world


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[SlackWorld]:
    with slack_world(db, tmp_path, loop=False) as w:
        yield w


def looked(db: Database, *, expect: int) -> list[AuditEntry] | None:
    """Audit entries of stops and logs, oldest first, once there are ``expect`` of them."""
    with db.engine.connect() as conn:
        rows = list(
            conn.execute(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["stop", "logs"]))
                .order_by(AuditEntry.id)
            ).all()
        )
    return rows if len(rows) == expect else None


def _nothing_happened(world: SlackWorld) -> None:
    time.sleep(0.3)  # give a wrongly accepted request the time to do something
    assert world.islands() == []
    assert world.fake.count("chat.postMessage") == 0
    assert world.fake.responses == []


def test_unsigned_request_is_refused(world: SlackWorld) -> None:
    status, body, _ = world.send(fakeslack.slash_command("start dev"), signed=False)
    assert status == 401
    assert json.loads(body) == {"error": "invalid request"}
    _nothing_happened(world)


def test_wrong_secret_is_refused(world: SlackWorld) -> None:
    body = fakeslack.slash_command("start dev")
    status, _, _ = world.send(body, signed=False, headers=fakeslack.sign(body, secret="nope"))
    assert status == 401
    _nothing_happened(world)


def test_tampered_body_is_refused(world: SlackWorld) -> None:
    body = fakeslack.slash_command("list")
    headers = fakeslack.sign(body)
    status, _, _ = world.send(fakeslack.slash_command("start dev"), signed=False, headers=headers)
    assert status == 401
    _nothing_happened(world)


def test_replayed_old_request_is_refused(world: SlackWorld) -> None:
    body = fakeslack.slash_command("start dev")
    old = fakeslack.sign(body, timestamp=int(time.time()) - 301)
    status, _, _ = world.send(body, signed=False, headers=old)
    assert status == 401
    _nothing_happened(world)


def test_a_correctly_signed_request_gets_through(world: SlackWorld) -> None:
    status, body, _ = world.command("help")
    assert status == 200 and "/island start" in json.loads(body)["text"]


def test_unsigned_button_click_and_event_are_refused(world: SlackWorld) -> None:
    status, _, _ = world.send(fakeslack.button_click("island_stop", "1:1"), signed=False)
    assert status == 401
    status, _, _ = world.send(fakeslack.home_opened(), content_type=fakeslack.JSON, signed=False)
    assert status == 401
    _nothing_happened(world)
    assert world.fake.homes == {}


def test_a_forged_button_value_is_harmless(world: SlackWorld) -> None:
    for value in ("", "x", "1:", "-1:5", "99999999999:1", "<script>", "1:1:1"):
        world.send(
            fakeslack.button_click(
                "island_stop", value, response_url=world.fake.response_url("U0ALICE")
            )
        )
    world.fake.wait_for(lambda: len(world.answers()) >= 7)
    assert all("no longer understand" in a or "There is no island" in a for a in world.answers())


def test_commands_from_other_channels_are_refused(db: Database, tmp_path: Path) -> None:
    with slack_world(db, tmp_path, loop=False, allowed_channels=frozenset({"C0TEAM"})) as w:
        status, body, _ = w.command("start dev", channel="C0RANDOM")
        assert status == 200
        assert "works in <#C0TEAM> only" in json.loads(body)["text"]
        time.sleep(0.3)
        assert w.islands() == []
        w.command("start dev", channel="C0TEAM")
        w.until(lambda: len(w.islands()) == 1)


def test_a_full_work_pool_still_accepts_and_the_intake_carries_it_out(
    db: Database, tmp_path: Path
) -> None:
    """The work pool is bounded; what does not fit waits in the durable intake (accepted,
    acknowledged at once) and is carried out when the pool has room."""
    with slack_world(db, tmp_path, loop=False, workers=1, max_pending=1) as w:
        w.fake.fail("chat.postMessage", status=429, retry_after=2, count=1)  # the first is slow
        w.command("start dev")
        acks = [w.command("list") for _ in range(3)]
        assert [status for status, _, _ in acks] == [200, 200, 200]
        assert all(body in ("", "{}") or "busy" not in body for _, body, _ in acks)
        w.until(lambda: len(w.islands()) == 1)
        deadline = time.monotonic() + 20
        while len(w.answers()) < 3 and time.monotonic() < deadline:
            w.front.recover()  # the job every replica runs every 2 s
            time.sleep(0.2)
        assert sum(a.startswith("Live islands: 1") for a in w.answers()) == 3


def test_requests_behind_a_busy_worker_are_queued_and_carried_out_without_recovery(
    db: Database, tmp_path: Path
) -> None:
    """A request is taken at acceptance only by an idle worker; those accepted while it is
    busy wait in the work pool's queue (not only in the intake, for the recovery job, which
    this world does not run) and are carried out as soon as it is free, once each."""
    with slack_world(db, tmp_path, loop=False, workers=1, max_pending=10) as w:
        w.fake.fail("chat.postMessage", status=429, retry_after=2, count=1)  # the first is slow
        w.command("start dev")
        acks = [w.command("list") for _ in range(3)]
        assert [status for status, _, _ in acks] == [200, 200, 200]
        w.until(lambda: len(w.answers()) >= 3, 20)
        time.sleep(0.5)
        assert sum(a.startswith("Live islands: 1") for a in w.answers()) == 3
        assert len(w.islands()) == 1


def test_buttons_obey_the_channel_rule_and_the_logs_button_is_audited(
    db: Database, tmp_path: Path
) -> None:
    """A button is a command too: refused outside the allowed channels (issue 15, defect 9),
    and Logs is audited as `/island logs` is."""
    with slack_world(db, tmp_path, allowed_channels=frozenset({"C0TEAM"})) as w:
        w.command("start dev", channel="C0TEAM")
        (island,) = w.started()
        w.until(lambda: w.island(island.id).state.value == "ready", 30)
        value = f"{island.id}:{int(w.island(island.id).expires_at.timestamp())}"
        respond = w.fake.response_url("U0ALICE")
        w.send(
            fakeslack.button_click("island_stop", value, channel="C0RANDOM", response_url=respond)
        )
        assert "works in <#C0TEAM> only" in w.wait_answer()
        w.send(
            fakeslack.button_click("island_logs", value, channel="C0RANDOM", response_url=respond)
        )
        assert "works in <#C0TEAM> only" in w.wait_answer(count=2)
        assert w.island(island.id).state.value == "ready"  # the stop was not done
        w.send(fakeslack.button_click("island_logs", value, channel="C0TEAM", response_url=respond))
        assert f"island #{island.id}'s log" in w.wait_answer(count=3)
        entries = w.until(lambda: looked(db, expect=3))
        assert [(e.action, e.island_id, e.outcome) for e in entries] == [
            ("stop", island.id, "refused"),
            ("logs", island.id, "refused"),
            ("logs", island.id, "ok"),
        ]
