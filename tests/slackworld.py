"""The whole bot, built by the composition root as ``islandbot run`` builds it, against fakes
that speak the real protocols: the database (SQLite or MariaDB), kubesim over HTTP through the
``kubernetes`` client, the fake Slack Web API over HTTP through ``slack_sdk``, and the bot's own
HTTP server receiving signed requests over HTTP. The lifecycle loop runs on its real scheduler."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app.reconcile.deliver import DeliveryPolicy
from bot.chat.front import ChatFront
from bot.chat.slack.sender import SlackSender
from bot.domain.records import IslandRecord
from bot.domain.time_source import Clock, utcnow
from bot.http.server import WebServer
from bot.infra.kubernetes.client import KubeSettings
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.run.chats import slack_bot
from bot.run.compose import Tuning
from bot.run.loop import LifecycleService
from bot.run.settings import Settings
from bot.run.settings_env import load_settings
from kubesim import KubeSim, NodeSpec, SimConfig
from tests import fakeslack
from tests.fakeslack import FakeSlack
from tests.kube_access import SHIPPED_RBAC, cluster

NODES = (
    NodeSpec("dev-1", {"branch": "dev"}, address="127.0.0.2"),
    NodeSpec("dev-2", {"branch": "dev"}, address="127.0.0.3"),
    NodeSpec("weekly-1", {"branch": "weekly"}, memory="1Gi", address="127.0.0.4"),
)
SIM = SimConfig(nodes=NODES, create_delay=0.05, boot_delay=0.2, probe_period=0.05, grace_period=0.3)
ADMIN = "U0ADMIN"


def world_settings(
    db: Database,
    sim: KubeSim,
    fake: FakeSlack,
    *,
    allowed_channels: frozenset[str] = frozenset(),
    workers: int = 8,
    clock_request_ttl: timedelta = timedelta(hours=1),
    port_range: str = "37000-37299",
    language: str = "en",
) -> Settings:
    """What ``islandbot run`` would read from its environment in this world."""
    settings = load_settings(
        {
            "ISLANDBOT_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "ISLANDBOT_KUBECONFIG": str(sim.kubeconfig_path),
            "ISLANDBOT_PORT_RANGE": port_range,
            "ISLANDBOT_ADMINS": ADMIN,
            "ISLANDBOT_ALLOWED_CHANNELS": ",".join(sorted(allowed_channels)),
            "ISLANDBOT_MAX_TTL": "2d",
            "ISLANDBOT_READY_TIMEOUT": "30s",
            "ISLANDBOT_READY_PROBE_INTERVAL": "1s",
            "ISLANDBOT_HTTP_ADDRESS": "127.0.0.1:0",
            "ISLANDBOT_SLACK_API_URL": fake.api_url,
            "ISLANDBOT_SLACK_WORKERS": str(workers),
            "SLACK_BOT_TOKEN": fakeslack.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": fakeslack.SIGNING_SECRET,
            "ISLANDBOT_LANGUAGE": language,
        }
    )
    return replace(
        settings,
        reconcile_interval=timedelta(seconds=0.3),
        clock_request_ttl=clock_request_ttl,
    )


class SlackWorld:
    """The bot from ``bot.run.chats.slack_bot``, faster than in production (``Tuning``)."""

    def __init__(
        self,
        db: Database,
        sim: KubeSim,
        fake: FakeSlack,
        *,
        allowed_channels: frozenset[str] = frozenset(),
        loop: bool = True,
        workers: int = 8,
        max_pending: int = 500,
        channel_rate: float = 0.9,  # as in production: a little under Slack's pace
        slack_timeout_s: int = 15,
        clock_request_ttl: timedelta = timedelta(hours=1),
        delivery: DeliveryPolicy | None = None,
        clock: Clock = utcnow,
        clock_requests_every: timedelta = timedelta(seconds=5),
        port_range: str = "37000-37299",
        language: str = "en",
    ) -> None:
        self.db, self.sim, self.fake = db, sim, fake
        self.settings = world_settings(
            db,
            sim,
            fake,
            allowed_channels=allowed_channels,
            workers=workers,
            clock_request_ttl=clock_request_ttl,
            port_range=port_range,
            language=language,
        )
        self.tuning = Tuning(
            kube=KubeSettings(namespace="islands", request_timeout_s=3, attempts=2, backoff_s=0.01),
            probe_timeout_s=0.3,
            max_pending=max_pending,
            channel_rate=channel_rate,
            channel_burst=2,
            slack_timeout_s=slack_timeout_s,
            delivery=delivery or DeliveryPolicy(),
            clock=clock,
            clock_requests_every=clock_requests_every,
        )
        self.bot = slack_bot(self.settings, tuning=self.tuning)
        assert self.bot.front is not None and self.bot.server is not None
        self.front: ChatFront = self.bot.front
        self.server: WebServer = self.bot.server
        sender = self.front.sender
        assert isinstance(sender, SlackSender)
        self.sender = sender
        self.client = sender.client
        self.templates = self.bot.templates
        self.allocator = self.bot.allocator
        self.kube = self.bot.kube
        self.actions = self.bot.actions
        self.clocks = self.bot.clocks
        self.engine = self.bot.engine
        self.service: LifecycleService | None = self.bot.service if loop else None
        if loop:
            self.bot.start()
        else:  # no lifecycle loop; the process beats, as every bot does (its chat calls ask)
            self.bot.heartbeat.start()
            self.bot.started.append("heartbeat")
            self.server.start()

    def close(self) -> None:
        self.bot.stop()

    # ---- talking to the bot as Slack does ----------------------------------------------------

    def send(
        self,
        body: str,
        *,
        content_type: str = fakeslack.FORM,
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> tuple[int, str, float]:
        """POST to /slack/events; returns (status, body, seconds until the answer)."""
        all_headers = {"Content-Type": content_type, **(fakeslack.sign(body) if signed else {})}
        all_headers.update(headers or {})
        request = urllib.request.Request(
            f"{self.server.url}/slack/events",
            data=body.encode(),
            headers=all_headers,
            method="POST",
        )
        began = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode(), time.monotonic() - began
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), time.monotonic() - began

    def command(self, text: str, **kw: Any) -> tuple[int, str, float]:
        kw.setdefault("response_url", self.fake.response_url(kw.get("user", "U0ALICE")))
        return self.send(fakeslack.slash_command(text, **kw))

    def answers(self, user: str = "U0ALICE") -> list[str]:
        """What was said to ``user`` through response_url, in order."""
        return [
            str(r.get("text")) for r in list(self.fake.responses) if r["path"].endswith(f"/{user}")
        ]

    def wait_answer(self, user: str = "U0ALICE", count: int = 1, timeout: float = 20) -> str:
        self.fake.wait_for(lambda: len(self.answers(user)) >= count, timeout)
        return self.answers(user)[count - 1]

    def server_clock(self, island_id: int) -> float:
        """The island server's clock, read over TCP with its ``TIME`` command."""
        island = self.island(island_id)
        port = max(island.ports)
        with socket.create_connection((str(island.host_ip), port), timeout=3) as conn:
            conn.sendall(b"TIME\n")
            line = conn.makefile().readline()
        return float(line.split()[1])

    def island(self, island_id: int) -> IslandRecord:
        return IslandStore(self.db).get(island_id)

    def islands(self) -> list[IslandRecord]:
        return IslandStore(self.db).live()

    def until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        try:
            return self.fake.wait_for(check, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def describe(self) -> str:
        """What the world looks like, for a failing test's message."""
        islands = [(i.id, i.state.value, i.failure_reason) for i in IslandStore(self.db).live()]
        posts = [(m["ts"], m["thread_ts"], str(m["text"])[:80]) for m in self.fake.posts()]
        stats = self.service.stats if self.service is not None else None
        logs = {
            i.id: self.sim.container_logs("islands", i.pod_name, "altraserver")[-6:]
            for i in IslandStore(self.db).live()
            if i.state.value == "failed"
        }
        return f"islands: {islands}\nposts: {posts}\nloop: {stats}\nlogs of failed: {logs}"

    def started(self, count: int = 1) -> list[IslandRecord]:
        """Wait for ``count`` islands with a root message; return them, lowest id first."""
        return self.until(
            lambda: (
                [i for i in self.islands() if i.chat_thread]
                if len([i for i in self.islands() if i.chat_thread]) >= count
                else None
            )
        )


@contextmanager
def slack_world(
    db: Database,
    tmp_path: Path,
    *,
    access: str = "open",
    rbac: Path = SHIPPED_RBAC,
    slack: FakeSlack | None = None,
    **kw: Any,
) -> Iterator[SlackWorld]:
    """``access``: ``rbac`` holds the bot to the RBAC in ``rbac`` (the one we ship; see
    ``tests.kube_access``). ``slack``: the fake Slack to serve (default: Slack's published
    limits, enforced)."""
    with (
        cluster(SIM, tmp_path / "kubeconfig", access=access, rbac=rbac) as sim,
        fakeslack.serving(slack or FakeSlack()) as fake,
    ):
        world = SlackWorld(db, sim, fake, **kw)
        try:
            yield world
        finally:
            world.close()
