"""/island through the whole bot: signed requests over HTTP in, the fake Slack Web API out,
kubesim and the database underneath, the lifecycle loop running."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.domain.buttons import ButtonAction, island_button_value
from bot.infra.storage.database import Database
from bot.infra.storage.tables import AuditEntry
from bot.run.chats import slack_bot
from tests import fakeslack
from tests.slackworld import ADMIN, SlackWorld, slack_world


def looked(db: Database, *, expect: int) -> list[AuditEntry] | None:
    """Audit entries of the commands that change nothing, oldest first, once there are
    ``expect`` of them."""
    with db.engine.connect() as conn:
        rows = list(
            conn.execute(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["list", "status", "logs", "capacity"]))
                .order_by(AuditEntry.id)
            ).all()
        )
    return rows if len(rows) == expect else None


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[SlackWorld]:
    with slack_world(db, tmp_path) as w:
        yield w


def test_start_posts_a_root_message_then_threaded_progress(world: SlackWorld) -> None:
    status, body, _ = world.command('start dev note="smoke <!channel> test"')
    assert status == 200 and body == ""
    (island,) = world.started()
    root = world.fake.posts("C0TEAM")[0]
    assert root["ts"] == island.chat_thread and root["thread_ts"] is None
    assert f"island #{island.id} on *dev*" in root["text"]
    ready = world.until(
        lambda: [m for m in world.fake.thread("C0TEAM", root["ts"]) if "is ready on" in m["text"]]
    )[0]
    assert ready["reply_broadcast"] is True
    assert "<@U0ALICE>" in ready["text"]
    island = world.island(island.id)
    for port in island.ports:
        assert str(port) in ready["text"]
    kinds = [m["text"] for m in world.fake.thread("C0TEAM", root["ts"])]
    assert "scheduled on node" in kinds[0]
    # the root message was brought up to date: ready, host, ports, buttons
    world.until(lambda: "*ready*" in world.fake.posts("C0TEAM")[0]["text"])
    blocks = world.fake.posts("C0TEAM")[0]["blocks"]
    fields = " ".join(
        f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", [])
    )
    assert island.host_ip in fields and str(island.first_port) in fields
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == [
        ButtonAction.STOP,
        ButtonAction.EXTEND,
        ButtonAction.LOGS,
    ]
    note = next(b for b in blocks if b["type"] == "context")["elements"][0]["text"]
    assert "&lt;!channel&gt;" in note and "<!channel>" not in note


def test_bad_input_is_answered_in_the_ack_and_changes_nothing(world: SlackWorld) -> None:
    for text in ("strat dev", "start prod", 'start dev note="x', "stop #x", "x" * 5000):
        status, body, _ = world.command(text)
        assert status == 200
        answer = json.loads(body)
        assert answer["response_type"] == "ephemeral"
        assert "Usage:" in answer["text"]
    assert world.islands() == []
    assert world.fake.count("chat.postMessage") == 0
    _, body, _ = world.command("start prod")
    assert "Known branches: dev, weekly" in json.loads(body)["text"]


def test_help_is_immediate(world: SlackWorld) -> None:
    _, body, _ = world.command("help")
    assert "/island start" in json.loads(body)["text"]


def test_a_retried_delivery_starts_one_island(world: SlackWorld) -> None:
    body = fakeslack.slash_command(
        "start dev", trigger_id="T-retry-1", response_url=world.fake.response_url("U0ALICE")
    )
    world.send(body)
    world.send(body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    world.send(body, headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"})
    world.started()
    world.until(lambda: world.island(world.islands()[0].id).state.value == "ready")
    assert len(world.islands()) == 1
    roots = [m for m in world.fake.posts("C0TEAM") if m["thread_ts"] is None]
    assert len(roots) == 1


def test_stop_by_owner_and_refusal_for_others(world: SlackWorld) -> None:
    world.command("start dev")
    (island,) = world.started()
    world.command(f"stop {island.id}", user="U0BOB", user_name="bob")
    refusal = world.wait_answer("U0BOB")
    assert f"Only its owner or an admin may stop island #{island.id}" in refusal
    assert "<@U0ALICE>" in refusal and f"<@{ADMIN}>" in refusal
    assert world.island(island.id).state.value != "stopping"
    world.command(f"stop #{island.id}")
    assert f"Stopping #{island.id}" in world.wait_answer("U0ALICE")
    world.until(lambda: world.island(island.id).state.value == "stopped")
    world.until(lambda: world.allocator.usage().held == 0)
    thread = world.until(
        lambda: [
            m["text"]
            for m in world.fake.thread("C0TEAM", str(island.chat_thread))
            if "is stopped" in m["text"]
        ]
    )
    assert thread
    texts = [m["text"] for m in world.fake.thread("C0TEAM", str(island.chat_thread))]
    assert any("<@U0ALICE> is stopping" in t for t in texts)
    # the stopped island's root message has no buttons left
    world.until(lambda: "*stopped*" in world.fake.posts("C0TEAM")[0]["text"])
    assert not [b for b in world.fake.posts("C0TEAM")[0]["blocks"] if b["type"] == "actions"]


def test_admin_may_stop_anyones_island(world: SlackWorld) -> None:
    world.command("start dev")
    (island,) = world.started()
    world.command(f"stop {island.id}", user=ADMIN, user_name="admin")
    assert "Stopping" in world.wait_answer(ADMIN)
    world.until(lambda: world.island(island.id).state.value == "stopped")


def test_extend_and_its_limit(world: SlackWorld) -> None:
    world.command("start dev ttl=1h")
    (island,) = world.started()
    before = world.island(island.id).expires_at
    world.command(f"extend {island.id} 4h")
    assert "now expires at" in world.wait_answer()
    after = world.island(island.id).expires_at
    assert 4 * 3600 - 5 <= (after - before).total_seconds() <= 4 * 3600 + 5
    world.command(f"extend {island.id} 2d")
    assert "may live at most 2d from now" in world.wait_answer(count=2)
    assert world.island(island.id).expires_at == after


def test_list_status_capacity(world: SlackWorld) -> None:
    world.command("start dev")
    world.command("start weekly", user="U0BOB", user_name="bob")
    started = world.started(2)  # the two starts run at once: either may get the lower id
    first = next(i for i in started if i.branch == "dev")
    second = next(i for i in started if i.branch == "weekly")
    world.command("list")
    table = world.wait_answer()
    assert table.startswith("Live islands: 2")
    blocks = world.fake.responses[-1]["blocks"]
    text = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert f"{first.id:>6}  dev" in text and f"{second.id:>6}  weekly" in text
    world.command("list mine")
    assert world.wait_answer(count=2).startswith("Your live islands: 1")
    world.command(f"status {first.id}")
    assert f"island #{first.id}" in world.wait_answer(count=3)
    world.command("capacity")
    capacity = world.wait_answer(count=4)
    assert "2 live islands" in capacity
    blocks = world.fake.responses[-1]["blocks"]
    assert "*dev*: 1 live, 2 ready nodes" in blocks[0]["text"]["text"]
    world.command("status 99999")
    assert "There is no island #99999." in world.wait_answer(count=5)
    # the commands that only look are in the audit log too, the refused one included
    looks = world.until(lambda: looked(world.db, expect=5))
    assert [(r.actor, r.action, r.island_id, r.outcome) for r in looks] == [
        ("U0ALICE", "list", None, "ok"),
        ("U0ALICE", "list", None, "ok"),
        ("U0ALICE", "status", first.id, "ok"),
        ("U0ALICE", "capacity", None, "ok"),
        ("U0ALICE", "status", 99999, "refused"),
    ]
    assert [r.detail.get("scope") for r in looks[:2]] == ["all", "mine"]
    assert looks[4].detail == {"refusal": "island_not_found", "about": {"island_id": 99999}}


def test_logs_short_in_a_message_long_as_a_file(world: SlackWorld) -> None:
    world.command("start dev")
    (island,) = world.started()
    world.until(lambda: world.island(island.id).state.value == "ready")
    world.command(f"logs {island.id} lines=5")
    answer = world.wait_answer()
    assert f"Last 5 lines of island #{island.id}'s log" in answer and "```" in answer
    pod = world.island(island.id).pod_name
    for i in range(400):  # a long log: lines as if the server had printed them
        world.sim.write_log("islands", pod, "altraserver", f"line {i:04d} " + "x" * 40)
    world.command(f"logs {island.id} lines=400")
    answer = world.wait_answer(count=2)
    assert "too long for a message" in answer
    (upload,) = world.until(lambda: world.fake.files)
    assert upload["thread_ts"] == island.chat_thread
    assert upload["content"].count("\n") == 400
    shown = answer.split("```")[1].splitlines()
    assert shown[-1].startswith("line 0399") and all(line.startswith("line ") for line in shown)
    logs = world.until(lambda: looked(world.db, expect=2))
    assert [(r.action, r.island_id, r.outcome, r.detail) for r in logs] == [
        ("logs", island.id, "ok", {"lines": 5, "previous": False}),
        ("logs", island.id, "ok", {"lines": 400, "previous": False}),
    ]


def test_buttons_extend_once_per_click_and_stop(world: SlackWorld) -> None:
    world.command("start dev")
    (island,) = world.started()
    value = island_button_value(island.id, world.island(island.id).expires_at)
    before = world.island(island.id).expires_at
    world.send(
        fakeslack.button_click(
            ButtonAction.EXTEND, value, response_url=world.fake.response_url("U0ALICE")
        )
    )
    world.send(
        fakeslack.button_click(
            ButtonAction.EXTEND, value, response_url=world.fake.response_url("U0ALICE")
        )
    )
    world.wait_answer(count=2)
    answers = world.answers()
    assert sum("was just extended" in a for a in answers) == 1
    assert (world.island(island.id).expires_at - before).total_seconds() == pytest.approx(
        4 * 3600, abs=5
    )
    world.send(
        fakeslack.button_click(
            ButtonAction.STOP, value, user="U0BOB", response_url=world.fake.response_url("U0BOB")
        )
    )
    assert "Only its owner or an admin" in world.wait_answer("U0BOB")
    world.send(
        fakeslack.button_click(
            ButtonAction.STOP, value, response_url=world.fake.response_url("U0ALICE")
        )
    )
    world.until(lambda: world.island(island.id).state.value in ("stopping", "stopped"))


def test_app_home_lists_mine_and_the_teams(world: SlackWorld) -> None:
    world.command("start dev")
    world.command("start dev", user="U0BOB", user_name="bob")
    mine = next(i for i in world.started(2) if i.owner_id == "U0ALICE")  # ids in either order
    world.send(fakeslack.home_opened("U0ALICE"), content_type=fakeslack.JSON)
    home = world.until(lambda: world.fake.homes.get("U0ALICE"))
    texts = json.dumps(home)
    assert home["type"] == "home" and "Your islands" in texts and "The team's islands" in texts
    buttons = [b for b in home["blocks"] if b["type"] == "actions"]
    assert len(buttons) == 1 and buttons[0]["block_id"] == f"island-{mine.id}"
    # a click in App Home: no channel, no response_url; the home view is published again
    world.fake.homes.clear()
    world.send(
        fakeslack.button_click(
            ButtonAction.STOP,
            island_button_value(mine.id, mine.expires_at),
            channel=None,
            response_url=None,
        )
    )
    world.until(lambda: world.island(mine.id).state.value in ("stopping", "stopped"))
    world.until(lambda: world.fake.homes.get("U0ALICE"))


def test_a_notice_whose_answer_was_lost_is_not_posted_twice(db: Database, tmp_path: Path) -> None:
    """Slack stored the reply but its answer never reached the bot (timeout): the outbox tries
    again, looks in the thread first, and finds it."""
    with slack_world(db, tmp_path, slack_timeout_s=1) as world:
        world.fake.fail("chat.postMessage", delay=2.5, count=1, match="is scheduled on node")
        world.command("start dev")
        island = world.until(lambda: [i for i in world.islands() if i.state.value == "ready"])[0]
        thread_ts = world.until(lambda: world.island(island.id).chat_thread)
        world.until(
            lambda: any("is ready on" in m["text"] for m in world.fake.thread("C0TEAM", thread_ts))
        )
        texts = [m["text"] for m in world.fake.thread("C0TEAM", thread_ts)]
        assert len(texts) == len(set(texts)), texts
        assert world.fake.count("conversations.replies") >= 1


def test_restart_gives_a_new_pod_with_the_same_id_and_ports(world: SlackWorld) -> None:
    world.command("start dev")
    (island,) = world.started()
    world.until(lambda: world.island(island.id).state.value == "ready")
    old_uid = world.kube.get_pod(island.pod_name).uid  # type: ignore[union-attr]
    world.command(f"restart {island.id}", user="U0BOB", user_name="bob")
    assert "Only its owner or an admin may restart" in world.wait_answer("U0BOB")
    world.command(f"restart {island.id}")
    assert "Restarting island" in world.wait_answer()
    world.until(
        lambda: (
            (pod := world.kube.get_pod(island.pod_name)) is not None
            and pod.uid != old_uid
            and world.island(island.id).state.value == "ready"
        )
    )
    after = world.island(island.id)
    assert after.first_port == island.first_port and after.restarts == 1
    thread = str(island.chat_thread)
    texts = world.until(
        lambda: (
            [
                t
                for m in world.fake.thread("C0TEAM", thread)
                if "is ready on" in (t := m["text"]) or "is restarting" in t
            ]
            if sum("is ready on" in m["text"] for m in world.fake.thread("C0TEAM", thread)) == 2
            else None
        )
    )
    assert "is ready on" in texts[0] and "is restarting" in texts[1] and "is ready" in texts[2]


def test_the_same_delivery_to_two_replicas_starts_one_island(world: SlackWorld) -> None:
    """Socket Mode spreads deliveries over connections and Slack retries may land on another
    replica: two replicas of the bot sharing the database see the same command at once."""
    replica = slack_bot(world.settings, tuning=world.tuning).start()
    assert replica.server is not None
    other = replica.server
    try:
        body = fakeslack.slash_command("start dev", trigger_id="T-two-replicas")
        headers = {"Content-Type": fakeslack.FORM, **fakeslack.sign(body)}
        urls = [f"{world.server.url}/slack/events", f"{other.url}/slack/events"] * 3

        def send(url: str) -> int:
            request = urllib.request.Request(url, data=body.encode(), headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)

        with ThreadPoolExecutor(len(urls)) as pool:
            assert list(pool.map(send, urls)) == [200] * len(urls)
        world.started()
        time.sleep(1.0)  # time for a wrongly repeated start to show
        assert len(world.islands()) == 1
        assert len([m for m in world.fake.posts("C0TEAM") if m["thread_ts"] is None]) == 1
    finally:
        replica.stop()


def test_a_very_long_trigger_id_still_works_once(world: SlackWorld) -> None:
    body = fakeslack.slash_command("start dev", trigger_id="T" + "9" * 300)
    world.send(body)
    world.send(body, headers={"X-Slack-Retry-Num": "1"})
    (island,) = world.started()
    assert island.state.value in ("requested", "creating", "scheduled", "running", "ready")
    time.sleep(0.5)
    assert len(world.islands()) == 1


def test_an_island_started_where_the_bot_cannot_post_is_announced_to_its_owner(
    world: SlackWorld,
) -> None:
    """The channel is gone (or the bot was removed from it): the root message and the
    island's thread go to the owner's direct conversation with the bot, and the owner is told
    why; nothing is lost."""
    world.command("start dev", channel="C0GONE1")
    (island,) = world.started()
    assert island.chat_channel == "D0ALICE"  # the conversation's id, not the user's
    root = world.fake.posts("D0ALICE")[0]
    assert root["ts"] == island.chat_thread and f"island #{island.id}" in root["text"]
    assert "could not post in this channel (channel_not_found)" in world.wait_answer()
    world.until(lambda: world.island(island.id).state.value == "ready")
    world.until(
        lambda: any("is ready on" in m["text"] for m in world.fake.thread("D0ALICE", root["ts"]))
    )
    world.until(lambda: "*ready*" in world.fake.posts("D0ALICE")[0]["text"])  # kept current
