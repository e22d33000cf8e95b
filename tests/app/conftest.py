"""The ``world`` the reconcile tests run in (see ``reconcile_world``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.infra.storage.database import Database
from kubesim import running
from tests.app.reconcile_world import SIM, World


@pytest.fixture
def world(db: Database, tmp_path: Path) -> Iterator[World]:
    with running(SIM, kubeconfig_path=tmp_path / "kubeconfig") as sim:
        w = World(db, sim)
        yield w
        w.kube.close()
