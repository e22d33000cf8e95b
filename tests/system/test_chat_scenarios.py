"""End to end through each chat: one scenario, run through the console demo and through the
Lark adapter (HTTP callbacks into the bot's server, its messages through ``lark-oapi`` into the
fake Open API), on SQLite and MariaDB, against kubesim. The scenarios talk to a team by roles
(``tests.chatdrivers``): what people type, what they are told alone, the channel's root
messages, the islands' threads, the buttons they press; mentions read ``@owner`` in both."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.infra.storage.database import Database
from bot.words.formatting import utc_time
from tests.chatdrivers import CHATS, Team, answers, clock_near, server_clock, team_on

pytestmark = pytest.mark.timeout(120)

PORT_NAMES = ("app-common-port", "remote-msg-port", "server-port")
BUTTONS = "[Stop]  [Extend 4h]  [Logs]"


@pytest.fixture(params=CHATS)
def team(request: pytest.FixtureRequest, db: Database, tmp_path: Path) -> Iterator[Team]:
    with team_on(request.param, db, tmp_path) as t:
        yield t


def test_two_people_start_at_once_and_every_port_answers(team: Team) -> None:
    both = [
        threading.Thread(target=team.says, args=("owner", "start dev")),
        threading.Thread(target=team.says, args=("other", "start weekly")),
    ]
    for t in both:
        t.start()
    for t in both:
        t.join(30)
    team.until(lambda: len([i for i in team.islands() if i.chat_thread]) == 2)
    for record in team.islands():
        team.ready(record.id)
    team.settle()
    by_role = {team.role(i.owner_id): i for i in team.islands()}
    assert sorted(by_role) == ["other", "owner"]
    for role, branch, host in (("owner", "dev", "127.0.0."), ("other", "weekly", "127.0.0.4")):
        record = by_role[role]
        assert record.branch == branch and str(record.host_ip).startswith(host)
        (reply,) = [t for t in team.thread(record.id) if "is ready" in t]
        assert f"@{role} island #{record.id} is ready on {record.host_ip}: " in reply
        ports = ", ".join(f"{n} {p}" for n, p in zip(PORT_NAMES, record.ports, strict=True))
        assert ports in reply
        for port in record.ports:
            answers(record, port)
        root = team.showing(record.id, "ready")
        lines = root.splitlines()
        assert lines[0] == f"@{role}'s island #{record.id} on {branch}: ready"
        assert f"Host: {record.host_ip} (node {record.node})" in lines
        assert f"Ports: {ports}" in lines
        assert lines[-1] == BUTTONS
    assert len(team.channel()) == 2  # a root message each, nothing else


def test_refusals_change_nothing(team: Team) -> None:
    team.says("other", "start qa")
    assert team.until(lambda: team.private("other"))[0].startswith(
        "There is no branch 'qa'. Known branches: dev, weekly."
    )
    assert team.islands() == []
    ids = [team.start("owner") for _ in range(3)]
    team.says("owner", "start dev")
    refusal = team.told("owner", "the limit is")
    refs = ", ".join(f"#{i}" for i in ids)
    assert f"You already have 3 live islands ({refs}); the limit is 3 per person" in refusal
    assert [i.id for i in team.islands()] == ids
    team.says("other", f"stop {ids[0]}")
    assert team.told("other", "may stop") == (
        f"Only its owner or an admin may stop island #{ids[0]}: @owner, @admin."
    )
    team.settle()
    assert [(i.id, i.state) for i in team.islands()] == [(i, "ready") for i in ids]
    assert len(team.channel()) == 3  # the refusals were told to the person alone


def test_buttons_are_for_the_owner_and_admins(team: Team) -> None:
    n = team.start("owner")
    team.ready(n)
    team.until(lambda: team.shown(n).endswith(BUTTONS))
    team.press("other", n, "Stop")  # not theirs
    assert team.told("other", "may stop") == (
        f"Only its owner or an admin may stop island #{n}: @owner, @admin."
    )
    assert team.island(n).state == "ready"

    before = team.island(n).expires_at
    team.press("owner", n, "Extend")
    after = team.island(n).expires_at
    assert after - before == timedelta(hours=4)
    assert team.told("owner", "now expires at") == f"Island #{n} now expires at {utc_time(after)}."
    team.until(lambda: f"Expires: {utc_time(after)}" in team.shown(n))  # rewritten in place

    team.press("admin", n, "Stop")  # an admin may
    team.until(lambda: team.island(n).state == "stopped", timeout=30)
    root = team.showing(n, "stopped")
    assert "[" not in root  # a stopped island offers no buttons
    thread = team.until(lambda: (t := team.thread(n)) and t[-1] == f"Island #{n} is stopped." and t)
    assert f"@admin is stopping island #{n}." in thread
    assert f"@owner extended island #{n} by 4h: it now expires at {utc_time(after)}." in thread
    assert team.told("admin", "Stopping") == f"Stopping #{n}."


def test_clock_start_at_owner_shift_approved_and_rejected_requests(team: Team) -> None:
    n = team.start("owner", 'dev at="2030-01-01 12:00"')
    team.ready(n)
    began = datetime(2030, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    record = team.island(n)
    assert abs(clock_near(record, began, 60) - began) < 60  # 2030, plus the uptime

    team.says("owner", f"time {n} +1d")  # the owner's own shift applies at once
    assert team.told("owner", "clock is now at").startswith(f"Island #{n}'s clock is now at ")
    team.until(
        lambda: any(t.startswith(f"@owner moved island #{n}'s clock ") for t in team.thread(n))
    )
    expected = began + 86400  # +1d: a day ahead of the island's clock
    assert abs(clock_near(record, expected, 60) - expected) < 60
    shifted = team.island(n).clock_offset_s

    team.says("other", f"time {n} +2d")
    assert team.told("other", "Your request") == (
        f"Your request to move island #{n}'s clock is in the channel; @owner (or an admin) decides."
    )
    request = team.message(f"@owner: @other asks to move island #{n}'s clock to +2d (now ")
    team.press("other", request, "Approve")  # the asker may not decide
    assert team.told("other", "may decide") == (
        f"Only the owner of island #{n} or an admin may decide: @owner, @admin."
    )
    assert team.island(n).clock_offset_s == shifted
    team.press("owner", request, "Approve")
    team.until(lambda: team.shown(request).endswith("Approved by @owner and applied."))
    team.until(lambda: team.island(n).clock_offset_s == shifted + 2 * 86400)
    moved = f"@other (approved by @owner) moved island #{n}'s clock "
    team.until(lambda: any(t.startswith(moved) and t.endswith("(+2d).") for t in team.thread(n)))
    expected = began + 3 * 86400
    assert abs(clock_near(record, expected, 60) - expected) < 60

    team.says("other", f"time {n} +5d")
    request = team.message(f"@owner: @other asks to move island #{n}'s clock to +5d (now ")
    team.press("owner", request, "Reject")
    team.until(lambda: "Rejected by @owner" in team.shown(request))
    time.sleep(2)  # the server re-reads its clock file every second
    assert team.island(n).clock_offset_s == shifted + 2 * 86400
    assert abs(server_clock(record) - expected) < 60  # unchanged, not 5 days on
