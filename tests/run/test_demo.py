"""The demo's whole bot (console chat, kubesim, the database under test) answering commands
whose outcome depends on how the cluster and the team write things."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.run.demo import Demo
from kubesim import parse_nodes
from tests.demoworld import FAST, demo_on, start


def answers(demo: Demo, user: str = "alice") -> list[str]:
    return [e.text for e in demo.chat.snapshot() if e.kind == "ephemeral" and e.user == user]


def test_capacity_reads_node_memory_in_any_of_the_api_servers_forms(
    db_url: str, tmp_path: Path
) -> None:
    """Issue 21, defect 11: ``64e9``, ``1Pi`` or ``129500m`` on a node broke the answer."""
    nodes = parse_nodes(
        "dev-1:branch=dev,memory=64Gi;dev-2:branch=dev,memory=64e9;"
        "dev-3:branch=dev,memory=129500m;weekly-1:branch=weekly,memory=1Pi"
    )
    with demo_on(db_url, tmp_path, sim=replace(FAST, nodes=nodes)) as (demo, _sim):
        demo.handle("@alice /island capacity")
        (answer,) = [a for a in answers(demo) if "Capacity" in a]
    free_dev = (64 * 2**30 + 64 * 10**9 + 130) / 2**30
    assert f"dev: 0 live, 3 ready nodes with {free_dev:.1f} GiB of memory free" in answer
    assert f"weekly: 0 live, 1 ready nodes with {2**50 / 2**30:.1f} GiB" in answer
    assert "could not be read" not in answer
    assert re.search(r"\d+ of \d+ port blocks free", answer)


def test_a_start_time_is_typed_and_shown_in_the_teams_time_zone(
    db_url: str, tmp_path: Path
) -> None:
    """Issue 21, defect 12: with ISLANDBOT_TIMEZONE=Asia/Shanghai, the seed's
    ``2021-09-18 23:30:07`` is 15:30:07 UTC, and every clock shown says where it is."""
    with demo_on(db_url, tmp_path, timezone="Asia/Shanghai") as (demo, _sim):
        n = start(demo, "alice", 'dev at="2021-09-18 23:30:07"')
        wanted = datetime(2021, 9, 18, 15, 30, 7, tzinfo=UTC) - datetime.now(UTC)
        assert abs(demo.islands.get(n).clock_offset_s - wanted.total_seconds()) < 60
        shown = r"2021-09-18 23:3\d:\d\d Asia/Shanghai"
        assert demo.chat.wait_for(
            lambda events: any(
                re.search(rf"is ready on .*Clock: {shown}\.", e.text) for e in events
            ),
            30,
        ), [e.text for e in demo.chat.snapshot()]
        cards = [e.text for e in demo.chat.snapshot() if e.kind in ("post", "update")]
        assert any(re.search(rf"Clock: {shown}$", card, re.MULTILINE) for card in cards), cards
        demo.handle(f"@alice /island time {n}")
        assert re.search(rf"clock reads {shown}, ", answers(demo)[-1]), answers(demo)
