"""People by their names, as Lark knows them: an island's owner in ``list`` and on the board is
"Alice", not ``ou_alice``; an app not allowed to read names says so once and shows ids."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from bot.infra.storage.database import Database
from tests.fakelark import FakeLark
from tests.larkworld import lark_world


def test_an_owner_is_named_as_lark_names_them(db: Database, tmp_path: Path) -> None:
    fake = FakeLark(names={"ou_alice": "Alice Zhang 张"})
    with lark_world(db, tmp_path, lark=fake) as world:
        world.say("ou_alice", "help", chat="ou_alice")  # her first request: her name is read
        world.told("ou_alice", "gives you your own game-server island")
        time.sleep(0.2)  # the lookup lands in the cache even when slower than the request
        world.say("ou_alice", "start dev")
        (island,) = world.started()
        assert world.island(island.id).owner_name == "Alice Zhang 张"
        world.say("ou_bob", "list all")
        table = world.told("ou_bob", "Live islands")
        assert "```" in table and "Alice Zhang" in table
        world.say("ou_alice", f"status {island.id}")
        world.told("ou_alice", f"island #{island.id} on")
        looked_up = [c.path for c in fake.calls if c.kind == "user" and "ou_alice" in c.path]
        assert len(looked_up) <= 2  # once (again if the first met a stale token), then known


def test_without_the_contact_scope_ids_stand_for_names(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with lark_world(db, tmp_path, lark=FakeLark(names=None)) as world:
        world.say("ou_alice", "start dev")
        world.until(lambda: any("will not tell" in r.getMessage() for r in caplog.records))
        world.say("ou_bob", "start dev")
        islands = world.started(2)
        assert {i.owner_name for i in islands} == {"ou_alice", "ou_bob"}
        warned = [r for r in caplog.records if "will not tell people's names" in r.getMessage()]
        assert len(warned) == 1 and warned[0].levelname == "WARNING" and not warned[0].exc_info
        looked_up = {c.path.rsplit("/", 1)[-1] for c in world.fake.calls if c.kind == "user"}
        assert looked_up == {"ou_alice"}  # refused: no lookup of bob's name after alice's
