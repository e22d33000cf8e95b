"""The ``world`` the reconcile tests run in (see ``reconcile_world``): each test once against an
open cluster and, on SQLite, once more with the bot held to the RBAC we ship."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.storage.database import Database
from tests.app.reconcile_world import SIM, World
from tests.kube_access import ACCESS, cluster


@pytest.fixture(params=ACCESS)
def world(request: pytest.FixtureRequest, db: Database, tmp_path: Path) -> Iterator[World]:
    if request.param == "rbac" and db.engine.dialect.name != "sqlite":
        pytest.skip("the shipped RBAC is tried on SQLite; MariaDB runs against an open cluster")
    with cluster(SIM, tmp_path / "kubeconfig", access=request.param) as sim:
        w = World(db, sim)
        yield w
        w.kube.close()
