"""The whole bot, wired as ``islandbot run`` wires it, against fakes that speak the real
protocols: the database (SQLite or MariaDB), kubesim over HTTP through the ``kubernetes``
client, the fake Slack Web API over HTTP through ``slack_sdk``, and the bot's own HTTP server
receiving signed requests over HTTP. The lifecycle loop runs on its real scheduler."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app.clock_actions import ClockActions, ClockSettings
from bot.app.island_actions import ActionSettings, IslandActions
from bot.app.reconcile.engine import LifecycleEngine, LifecycleSettings
from bot.chat.front import FrontSettings
from bot.chat.notifier import ChatNotifier
from bot.chat.slack.listeners import SlackFront
from bot.chat.slack.sender import ChannelQueues, SlackSender, web_client
from bot.domain.lifecycle_rules import Limits
from bot.domain.permissions import Policy
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.records import IslandRecord
from bot.http.server import Address, WebServer
from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.kubernetes.templates import load_templates
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import Database
from bot.infra.storage.deliveries import Deliveries
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.lease import LeaderLease
from bot.run.loop import LifecycleService
from kubesim import KubeSim, NodeSpec, SimConfig, running
from tests import fakeslack
from tests.fakeslack import FakeSlack

NODES = (
    NodeSpec("dev-1", {"branch": "dev"}, address="127.0.0.2"),
    NodeSpec("dev-2", {"branch": "dev"}, address="127.0.0.3"),
    NodeSpec("weekly-1", {"branch": "weekly"}, memory="1Gi", address="127.0.0.4"),
)
SIM = SimConfig(nodes=NODES, create_delay=0.05, boot_delay=0.2, probe_period=0.05, grace_period=0.3)
ADMIN = "U0ADMIN"


class SlackWorld:
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
        channel_rate: float = 20.0,
        slack_timeout_s: int = 15,
        clock_request_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.db, self.sim, self.fake = db, sim, fake
        self.templates = load_templates()
        self.allocator = Allocator(
            db, layout=BlockLayout(PortRange(37000, 37299), 3), max_live_per_user=3
        )
        self.allocator.sync_layout()
        self.kube = Kube.connect(
            KubeSettings(namespace="islands", request_timeout_s=3, attempts=2, backoff_s=0.01),
            kubeconfig=sim.kubeconfig_path,
        )
        self.client = web_client(
            fakeslack.BOT_TOKEN, base_url=fake.api_url, timeout_s=slack_timeout_s
        )
        self.sender = SlackSender(self.client, queues=ChannelQueues(rate=channel_rate, burst=3))
        self.service: LifecycleService | None = None
        self.actions = IslandActions(
            db=db,
            allocator=self.allocator,
            templates=self.templates,
            kube=self.kube,
            policy=Policy(admins=frozenset({ADMIN}), allowed_channels=allowed_channels),
            settings=ActionSettings(
                default_ttl=timedelta(hours=8),
                max_ttl=timedelta(days=2),
                extend_step=timedelta(hours=4),
            ),
            poke=self.poke,
        )
        self.notifier = ChatNotifier(self.sender, self.actions, extend_step=timedelta(hours=4))
        self.engine = LifecycleEngine(
            db=db,
            kube=self.kube,
            templates=self.templates,
            allocator=self.allocator,
            notifier=self.notifier,
            settings=LifecycleSettings(
                limits=Limits(ready_timeout=timedelta(seconds=30)),
                ready_probe_interval=timedelta(seconds=1),
                probe_timeout_s=0.3,
            ),
        )
        if loop:
            self.service = LifecycleService(
                self.engine, LeaderLease(db), interval=timedelta(seconds=0.3)
            )
            self.service.start()
        self.clocks = ClockActions(
            db=db,
            kube=self.kube,
            policy=self.actions.policy,
            settings=ClockSettings(max_shift=timedelta(days=3650), request_ttl=clock_request_ttl),
        )
        self.front = SlackFront(
            actions=self.actions,
            clocks=self.clocks,
            sender=self.sender,
            deliveries=Deliveries(db),
            settings=FrontSettings(
                default_ttl=timedelta(hours=8),
                max_ttl=timedelta(days=2),
                extend_step=timedelta(hours=4),
                workers=workers,
                max_pending=max_pending,
            ),
        )
        self.app = self.front.build_app(signing_secret=fakeslack.SIGNING_SECRET, client=self.client)
        self.server = WebServer(slack=self.app, address=Address("127.0.0.1", 0)).start()

    def poke(self) -> None:
        if self.service is not None:
            self.service.poke()

    def close(self) -> None:
        self.server.stop()
        if self.service is not None:
            self.service.stop()
        self.front.pool.shutdown()
        self.kube.close()

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
def slack_world(db: Database, tmp_path: Path, **kw: Any) -> Iterator[SlackWorld]:
    fake_kw = {k: kw.pop(k) for k in ("fake_channel_rate",) if k in kw}
    with (
        running(SIM, kubeconfig_path=tmp_path / "kubeconfig") as sim,
        fakeslack.serving(FakeSlack(channel_rate=fake_kw.get("fake_channel_rate"))) as fake,
    ):
        world = SlackWorld(db, sim, fake, **kw)
        try:
            yield world
        finally:
            world.close()
