"""Island clocks end to end: Slack commands and buttons in, libfaketime's file written through
exec into kubesim's pods, the server's clock read back over TCP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.domain.buttons import ButtonAction
from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry
from kubesim import running
from kubesim.runtime import host_libfaketime
from tests import fakeslack
from tests.kube_access import ACCESS
from tests.slackworld import ADMIN, SIM, SlackWorld, slack_world

DAY = 86400


@pytest.fixture(params=ACCESS)
def world(request: pytest.FixtureRequest, db: Database, tmp_path: Path) -> Iterator[SlackWorld]:
    """Each test against an open cluster and, on SQLite, with the bot held to the shipped RBAC
    (exec for the clock file, the pod annotation, logs, create and delete)."""
    if request.param == "rbac" and db.engine.dialect.name != "sqlite":
        pytest.skip("the shipped RBAC is tried on SQLite; MariaDB runs against an open cluster")
    with slack_world(db, tmp_path, access=request.param) as w:
        yield w


def ready(world: SlackWorld, text: str = "start dev", user: str = "U0ALICE") -> int:
    world.command(text, user=user, user_name=user.lower())
    island = world.until(lambda: [i for i in world.islands() if i.owner_id == user])[0]
    world.until(lambda: world.island(island.id).state.value == "ready", 30)
    return island.id


def offset_now(world: SlackWorld, island_id: int) -> float:
    return world.server_clock(island_id) - time.time()


def wait_offset(world: SlackWorld, island_id: int, expected: float, tolerance: float = 5) -> None:
    """The server re-reads its clock file every second: wait for it to show ``expected``."""
    world.until(lambda: abs(offset_now(world, island_id) - expected) <= tolerance, 15)


def clicks(world: SlackWorld, action: str, request_id: int, user: str) -> None:
    world.send(
        fakeslack.button_click(
            action, str(request_id), user=user, response_url=world.fake.response_url(user)
        )
    )


def request_messages(world: SlackWorld) -> list[dict[str, object]]:
    return [m for m in world.fake.posts("C0TEAM") if "asks to move island" in str(m["text"])]


def thread_texts(world: SlackWorld, island_id: int) -> list[str]:
    island = world.island(island_id)
    return [m["text"] for m in world.fake.thread("C0TEAM", str(island.chat_thread))]


needs_libfaketime = pytest.mark.skipif(
    host_libfaketime() is None, reason="Debian's libfaketime is needed to read clocks via exec"
)


@needs_libfaketime
def test_start_at_and_owner_shift(world: SlackWorld) -> None:
    island_id = ready(world, 'start dev at="2021-09-18 23:30:07"')
    start_offset = datetime(2021, 9, 18, 23, 30, 7, tzinfo=UTC).timestamp() - time.time()
    assert abs(offset_now(world, island_id) - start_offset) < 60
    before = world.island(island_id).clock_offset_s
    world.command(f"time {island_id} +2d")
    answer = world.wait_answer()
    assert "clock is now at" in answer, answer
    assert world.island(island_id).clock_offset_s == before + 2 * DAY
    wait_offset(world, island_id, before + 2 * DAY)
    pod = world.sim.get("pods", "islands", world.island(island_id).pod_name)
    assert pod is not None
    mirrored = pod["metadata"]["annotations"]["islandbot.io/clock-offset-seconds"]
    assert int(mirrored) == before + 2 * DAY  # the pod says it too (the database decides)
    world.until(lambda: any("moved island" in t for t in thread_texts(world, island_id)))
    shifted = next(
        m
        for m in world.fake.thread("C0TEAM", str(world.island(island_id).chat_thread))
        if "moved island" in m["text"]
    )
    assert shifted["reply_broadcast"] is True  # the whole channel sees it
    assert "2021-09-18 23:3" in shifted["text"] and "(+2d)" in shifted["text"]
    world.command(f"time {island_id}")
    assert "2021-09-2" in world.wait_answer(count=2) and "Set by <@U0ALICE>" in world.answers()[1]


@needs_libfaketime
def test_someone_elses_shift_is_a_request_the_owner_decides(world: SlackWorld) -> None:
    island_id = ready(world)
    world.command(f"time {island_id} -90m", user="U0BOB", user_name="bob")
    assert "<@U0ALICE> (or an admin) decides" in world.wait_answer("U0BOB")
    assert world.island(island_id).clock_offset_s == 0
    request_msg = world.until(
        lambda: [m for m in world.fake.posts("C0TEAM") if "asks to move island" in m["text"]]
    )[0]
    assert "<@U0ALICE>" in request_msg["text"] and "<@U0BOB>" in request_msg["text"]
    (request,) = world.clocks.history(island_id)
    clicks(world, ButtonAction.CLOCK_APPROVE, request.id, "U0BOB")  # the asker may not decide
    assert "Only the owner of island" in world.wait_answer("U0BOB", count=2)
    clicks(world, ButtonAction.CLOCK_APPROVE, request.id, "U0ALICE")
    world.until(lambda: world.island(island_id).clock_offset_s == -5400)
    wait_offset(world, island_id, -5400)
    world.until(
        lambda: "Approved by <@U0ALICE> and applied" in str(request_messages(world)[0]["text"])
    )
    blocks = request_messages(world)[0]["blocks"]
    assert isinstance(blocks, list) and not [b for b in blocks if b["type"] == "actions"]
    clicks(
        world, ButtonAction.CLOCK_APPROVE, request.id, "U0ALICE"
    )  # a late second click does nothing
    assert "already applied" in world.wait_answer("U0ALICE", count=1)
    assert world.island(island_id).clock_offset_s == -5400


@needs_libfaketime
def test_reject_supersede_expire_and_history(db: Database, tmp_path: Path) -> None:
    with slack_world(db, tmp_path, clock_request_ttl=timedelta(seconds=2)) as world:
        island_id = ready(world)
        world.command(f"time {island_id} +1d", user="U0BOB", user_name="bob")
        world.wait_answer("U0BOB")
        world.command(f"time {island_id} +3d", user="U0CAROL", user_name="carol")
        world.wait_answer("U0CAROL")
        first, second = sorted(world.clocks.history(island_id), key=lambda r: r.id)
        assert first.state == "superseded" and second.state == "pending"
        world.until(  # the first one's message says what became of it, when it is posted
            lambda: any(
                "Superseded by a newer request" in str(m["text"]) for m in request_messages(world)
            )
        )
        clicks(world, ButtonAction.CLOCK_REJECT, second.id, ADMIN)
        world.until(lambda: world.clocks.get(second.id).state == "rejected")
        world.command(f"time {island_id} now", user="U0BOB", user_name="bob")
        world.wait_answer("U0BOB", count=2)
        time.sleep(2.1)
        world.front.expire_clock_requests()
        states = [r.state for r in world.clocks.history(island_id)]
        assert states == ["expired", "rejected", "superseded"]
        world.until(
            lambda: "Expired without a decision" in str(request_messages(world)[-1]["text"])
        )
        assert world.island(island_id).clock_offset_s == 0
        world.command(f"time {island_id} history")
        history = world.wait_answer()
        assert history.count("<@U0") >= 3 and "expired" in history and "superseded" in history
        with db.engine.connect() as conn:
            actions = (
                conn.execute(select(AuditEntry.action).where(AuditEntry.action.like("clock:%")))
                .scalars()
                .all()
            )
        assert {"clock:request", "clock:reject", "clock:expire"} <= set(actions)


def test_bad_clock_input_changes_nothing(world: SlackWorld) -> None:
    _, body, _ = world.command("time 1 tomorrow")
    assert "is not a clock change" in json.loads(body)["text"]
    island_id = ready(world)
    world.command(f"time {island_id} +20000d")
    assert "at most 3650d away from real time" in world.wait_answer()
    assert world.island(island_id).clock_offset_s == 0
    assert world.clocks.history(island_id) == []


@needs_libfaketime
def test_a_failed_write_leaves_the_offset_and_says_so(world: SlackWorld) -> None:
    island_id = ready(world)
    pod = world.island(island_id).pod_name
    world.sim.fail_requests(f"/pods/{pod}/exec", status=500, count=10)
    world.command(f"time {island_id} +1h")
    assert "was not changed" in world.wait_answer()
    assert world.island(island_id).clock_offset_s == 0
    assert world.clocks.history(island_id)[0].state == "failed"
    world.until(lambda: any("failed" in t and "clock" in t for t in thread_texts(world, island_id)))


@needs_libfaketime
def test_a_restarted_island_keeps_its_clock(world: SlackWorld) -> None:
    island_id = ready(world)
    world.command(f"time {island_id} +5d")
    world.wait_answer()
    old = world.kube.get_pod(world.island(island_id).pod_name)
    assert old is not None
    world.command(f"restart {island_id}")
    world.until(
        lambda: (
            (p := world.kube.get_pod(world.island(island_id).pod_name)) is not None
            and p.uid != old.uid
            and world.island(island_id).state.value == "ready"
        ),
        30,
    )
    wait_offset(world, island_id, 5 * DAY, tolerance=10)


@needs_libfaketime
def test_shift_under_the_real_libfaketime(db: Database, tmp_path: Path) -> None:
    """The island server runs as a real process under Debian's libfaketime."""
    config = SIM.__class__(**{**SIM.__dict__, "server_mode": "process"})
    with (
        running(config, kubeconfig_path=tmp_path / "kubeconfig") as sim,
        fakeslack.serving() as fake,
    ):
        world = SlackWorld(db, sim, fake)
        try:
            island_id = ready(world)
            world.command(f"time {island_id} +3d")
            assert "clock is now at" in world.wait_answer()
            wait_offset(world, island_id, 3 * DAY)
            world.command(f"time {island_id} now")
            world.wait_answer(count=2)
            wait_offset(world, island_id, 0)
        finally:
            world.close()
