"""``/island pool`` through the whole bot (the demo's wiring, its console chat, kubesim): anyone
sees the pools, only admins steer them, every step audited; a warm island is nobody's to
change; capacity counts warm islands apart."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.domain.pool import POOL_OWNER
from bot.infra.storage.tables import AuditEntry
from bot.run.demo import Demo
from tests.demoworld import demo_on, until


def told(demo: Demo, user: str) -> str:
    """The last answer meant for ``user`` alone."""
    return [e.text for e in demo.chat.snapshot() if e.kind == "ephemeral" and e.user == user][-1]


def warm(demo: Demo) -> list[int]:
    """The ready warm islands, once none is on its way in or out (else an empty list)."""
    pool = [i for i in demo.islands.live() if i.owner_id == POOL_OWNER]
    if any(i.state != "ready" for i in pool):
        return []
    return [i.id for i in pool]


def test_anyone_sees_the_pools_and_only_admins_steer_them(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path, pools={"dev": 2}, admins=frozenset({"carol"})) as (demo, _):
        until(lambda: len(warm(demo)) == 2)
        demo.handle("@alice /island pool")
        shown = told(demo, "alice")
        assert "dev: 2 ready, 0 starting of 2 (ISLANDBOT_POOLS)" in shown
        assert "today 0 handed out, 0 started fresh instead" in shown

        demo.handle("@alice /island pool dev size=5")
        assert "Only admins steer the warm pools: @carol." in told(demo, "alice")
        demo.handle("@alice /island pool refresh dev")
        assert "Only admins steer the warm pools" in told(demo, "alice")
        demo.handle("@carol /island pool dev size=lots")
        assert "'lots' is not a pool size" in told(demo, "carol")
        demo.handle("@carol /island pool nope size=1")
        assert "nope" in told(demo, "carol")

        demo.handle("@carol /island pool dev size=3")
        assert "The dev pool now keeps 3 warm islands" in told(demo, "carol")
        until(lambda: len(warm(demo)) == 3)
        demo.handle("@bob /island pool dev")
        assert "3 ready, 0 starting of 3 (set from chat by @carol)" in told(demo, "bob")

        demo.handle("@carol /island pool refresh dev")
        assert "3 warm islands started before now are being renewed" in told(demo, "carol")
        old = set(warm(demo))
        until(lambda: len(set(warm(demo)) - old) == 3, timeout=30)

        demo.handle("@carol /island pool dev size=default")
        assert "back to the deployment's size: 2" in told(demo, "carol")
        until(lambda: len(warm(demo)) == 2)
        demo.handle("@bob /island pool")
        assert "2 ready, 0 starting of 2 (ISLANDBOT_POOLS);" in told(demo, "bob")  # not carol's
        demo.handle("@bob /island pool weekly")
        assert "The weekly branch has no warm pool." in told(demo, "bob")

        with demo.bot.db.engine.connect() as conn:
            audited = conn.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.outcome).where(
                    AuditEntry.action.like("pool%")
                )
            ).all()
        steps = [
            tuple(a) for a in audited if a.action != "pool:fill" and a.action != "pool:recycle"
        ]
        assert steps == [
            ("alice", "pool", "ok"),
            ("alice", "pool:size", "refused"),
            ("alice", "pool:refresh", "refused"),
            ("carol", "pool:size", "ok"),
            ("bob", "pool", "ok"),
            ("carol", "pool:refresh", "ok"),
            ("carol", "pool:size", "ok"),
            ("bob", "pool", "ok"),
            ("bob", "pool", "ok"),
        ]


def test_a_warm_island_is_nobodys_and_capacity_counts_it_apart(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path, pools={"dev": 1}, admins=frozenset({"carol"})) as (demo, _):
        (island,) = until(lambda: warm(demo) or None)
        demo.handle(f"@carol /island stop {island}")
        assert f"#{island} is a warm dev island in its pool" in told(demo, "carol")
        demo.handle(f"@alice /island time {island} +1d")
        assert "warm dev island" in told(demo, "alice")
        demo.handle("@alice /island list")
        assert f"#{island}" not in told(demo, "alice")
        demo.handle("@alice /island capacity")
        assert "dev: 0 live, 1 warm ready to hand out at once" in told(demo, "alice")
        assert demo.islands.get(island).state == "ready"
