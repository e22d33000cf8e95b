"""Every Block Kit layout stays within Slack's limits in every language the bot speaks, with
the longest inputs people can give (names, notes, branches, many islands): a Chinese text is
shorter in characters but not always, and a cut must never break a message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.records import (
    BranchCapacity,
    CapacityReport,
    ClockRecord,
    IslandRecord,
    PortUsage,
)
from bot.domain.states import IslandState
from bot.words import catalogue, layouts
from bot.words.catalogue import speaking
from tests import blockkit

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PORTS = {"app-common-port": 30000, "remote-msg-port": 30001, "server-port": 30002}
LONG_NOTE = "复现结算界面卡死的问题，" * 40  # 480 characters of a person's note
LONG_NAME = "王" * 80


def island(n: int, state: IslandState = IslandState.READY, *, digest: bool = False) -> IslandRecord:
    return IslandRecord(
        id=100000 + n,
        pod_name=f"island-u{n}-dev-{100000 + n}",
        owner_id=f"U0B{n:04d}",
        owner_name=LONG_NAME,
        branch="release-candidate-2026-12-with-a-long-name"[: 20 + n % 20],
        state=state,
        first_port=30000 + 3 * n,
        port_count=3,
        created_at=NOW,
        expires_at=NOW + timedelta(days=6, hours=23, minutes=59, seconds=59),
        host_ip="127.0.0.2" if state == IslandState.READY else None,
        node="node-with-a-long-name-in-the-cluster-01",
        chat_channel="C0TEAM",
        chat_thread="1.000001",
        chat_digest=digest,
        note=LONG_NOTE,
        clock_offset_s=-(3650 * 86400 - 1),
        failure_reason="镜像拉取失败：" + "x" * 3000 if state == IslandState.FAILED else None,
    )


def request(state: str) -> ClockRecord:
    return ClockRecord(
        id=7,
        island_id=100001,
        requested_by="U0BOB",
        requested_at=NOW,
        from_offset_s=0,
        to_offset_s=3650 * 86400 - 1,
        kind="shift",
        target_at=None,
        state=state,
        decided_by="U0ALICE" if state not in ("pending", "expired") else None,
        decided_at=NOW if state not in ("pending", "expired") else None,
        applied_at=NOW if state == "applied" else None,
        failure_reason="集群拒绝了这次改时间：" + "y" * 3000 if state == "failed" else None,
        expires_at=NOW + timedelta(hours=1),
        chat_channel="C0TEAM",
        chat_ts="1.000002",
    )


def layouts_to_check() -> Iterator[tuple[str, list[Any], bool]]:
    """(what, blocks, a Home view)"""
    states = list(IslandState)
    many = [island(n, states[n % len(states)]) for n in range(120)]
    memory = (2**31 - 1, 2**31)
    for state in states:
        text, blocks = layouts.root_message(
            island(1, state),
            ports=PORTS,
            clock=NOW,
            extend_step=timedelta(hours=4),
            now=NOW,
            tz=UTC,
            memory=memory,
        )
        yield f"root {state}", blocks, False
        _, card = text, blocks
        yield f"owner notice {state}", layouts.owner_notice("x" * 5000, card)[1], False
        yield (
            f"status {state}",
            layouts.status_blocks(
                island(1, state),
                ports=PORTS,
                clock=NOW,
                extend_step=timedelta(days=6, hours=23),
                now=NOW,
                tz=UTC,
                memory=memory,
            )[1],
            False,
        )
    yield "digest", layouts.digest_message([island(n, digest=True) for n in range(60)])[1], False
    yield "table", layouts.islands_table("在线的岛", many, ports={}, now=NOW)[1], False
    report = CapacityReport(
        ports=PortUsage(blocks=3333, held=3000, excluded=10, free=323),
        live_islands=3000,
        branches=tuple(
            BranchCapacity(f"branch-{n:02d}-with-a-long-name", 100, 40, 2**40, 50, 50)
            for n in range(60)
        ),
        cluster_error="无法读取节点：" + "z" * 4000,
    )
    yield "capacity", layouts.capacity_blocks(report)[1], False
    yield (
        "home",
        layouts.home_view(
            board="看板链接 " * 400,
            mine=many[:60],
            team=many,
            ports={i.id: PORTS for i in many},
            extend_step=timedelta(hours=4),
            now=NOW,
            memory={i.id: memory for i in many},
        )["blocks"],
        True,
    )
    for state in ("pending", "applying", "applied", "rejected", "expired", "superseded", "failed"):
        yield (
            f"clock request {state}",
            layouts.clock_request_message(request(state), owner_id="U0ALICE", tz=UTC, now=NOW)[1],
            False,
        )


@pytest.mark.parametrize("language", catalogue.languages())
def test_every_layout_fits_slacks_limits(language: str) -> None:
    with speaking(language):
        checked = list(layouts_to_check())
    wrong = {what: blockkit.problems(blocks, view=view) for what, blocks, view in checked}
    assert {what: p for what, p in wrong.items() if p} == {}
    assert len(checked) > 30


def test_the_checker_sees_what_slack_refuses() -> None:
    button = {"type": "button", "text": {"type": "plain_text", "text": "续" * 76}, "value": "1"}
    assert blockkit.problems([{"type": "actions", "elements": [button]}])
    assert blockkit.problems(
        [{"type": "header", "text": {"type": "plain_text", "text": "岛" * 151}}]
    )
    assert blockkit.problems([{"type": "section", "text": {"type": "mrkdwn", "text": "岛" * 3001}}])
    assert blockkit.problems([{"type": "divider"}] * 51)
    assert not blockkit.problems([{"type": "divider"}] * 51, view=True)
