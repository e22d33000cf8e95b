"""The demo's wiring (``bot.demo.Demo``) for tests: kubesim in-process with fast timings,
the console chat recording everything, the database under test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.chat.console.chat import ConsoleChat
from bot.run.demo import CHANNEL, CHANNEL_NAME, Cluster, Demo
from bot.run.settings_env import load_settings
from kubesim import KubeSim, NodeSpec, SimConfig, running

NODES = (
    NodeSpec("dev-1", {"branch": "dev"}, address="127.0.0.2"),
    NodeSpec("dev-2", {"branch": "dev"}, address="127.0.0.3"),
    NodeSpec("weekly-1", {"branch": "weekly"}, memory="2Gi", address="127.0.0.4"),
)
FAST = SimConfig(
    nodes=NODES, create_delay=0.05, boot_delay=0.2, probe_period=0.05, grace_period=0.3
)
PORTS = "38000-38299"


@contextmanager
def demo_on(
    db_url: str,
    tmp_path: Path,
    *,
    sim: SimConfig = FAST,
    chat: ConsoleChat | None = None,
    **overrides: Any,
) -> Iterator[tuple[Demo, KubeSim]]:
    """A started demo on ``db_url``; ``overrides`` replace settings (sub-second timings);
    ``chat``: the console chat to use (one of a test's own, e.g. slow to answer)."""
    settings = load_settings(
        {
            "ISLANDBOT_DATABASE_URL": db_url,
            "ISLANDBOT_PORT_RANGE": PORTS,
            "ISLANDBOT_LEASE_TTL": "2s",
        }
    )
    settings = replace(
        settings,
        reconcile_interval=timedelta(seconds=0.3),
        ready_probe_interval=timedelta(seconds=1),
        **overrides,
    )
    kubeconfig = tmp_path / "kubeconfig"
    with running(sim, kubeconfig_path=kubeconfig) as kubesim:
        chat = chat or ConsoleChat(write=None, names={CHANNEL: CHANNEL_NAME})
        demo = Demo(settings, chat, cluster=Cluster(kubeconfig)).start()
        try:
            yield demo, kubesim
        finally:
            demo.stop()


def start(demo: Demo, user: str = "alice", args: str = "dev") -> int:
    """``/island start <args>`` as ``user``; the new island's id (ids are never reused, so
    on MariaDB they go on from earlier tests)."""
    before = {i.id for i in demo.islands.live(owner_id=user)}
    demo.handle(f"@{user} /island start {args}")
    (new,) = {i.id for i in demo.islands.live(owner_id=user)} - before
    return new


def until(check: Any, timeout: float = 20, every: float = 0.05) -> Any:
    """``check()``'s first true value, asked every ``every`` s; the test fails after
    ``timeout`` s without one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail("condition not met in time")
