"""The bot as it runs in production, for the fault tests: ``islandbot run`` processes (Slack
HTTP mode) on a real database, kubesim in its own process enforcing the shipped RBAC (the bot
authenticates as its service account), the fake Slack Web API in this process (so it outlives
every bot), and a driver that sends signed slash commands as Slack does: a request that got no
answer is sent again with ``X-Slack-Retry-Num``; one that was answered is never sent again.

Then ``check_settled``: what must hold once the last bot has settled everything."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes import config as kube_config
from sqlalchemy import func, select

from bot.domain.pool import POOL_OWNER
from bot.infra.storage.database import Database
from bot.infra.storage.tables import Delivery, Island, OutboxMessage, PortBlock
from bot.words import island_text
from kubesim.runner import kubeconfig
from tests import fakeslack
from tests.fakeslack import FakeSlack
from tests.kube_access import BOT_ACCOUNT, SHIPPED_RBAC
from tests.paths import ROOT

REFUSED = (island_text.BUSY, island_text.DATABASE_DOWN)  # answers that accepted nothing

ISLANDBOT = str(Path(sys.executable).parent / "islandbot")
# room for 250 islands of 1500Mi (the chaos test may keep some 150 live): a start that finds no
# room waits for it (ISLANDBOT_UNSCHEDULABLE_TIMEOUT, 10 min), which is not what these tests test
NODES = ";".join(
    f"dev-{i}:branch=dev,memory=128Gi,pods=200,ip=127.0.0.{i + 1}" for i in range(1, 4)
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """kubesim in its own process; ``bot_kubeconfig`` authenticates as the bot's service
    account (held to ``deploy/k8s/rbac.yaml``), ``admin`` is the test's own client."""

    proc: subprocess.Popen[str]
    bot_kubeconfig: Path
    admin: client.CoreV1Api
    url: str
    admin_token: str

    def audit(self) -> list[dict[str, Any]]:
        """What the API server changed, and for whom (its audit log: verb, path, userAgent,
        code, time), oldest first."""
        request = urllib.request.Request(
            f"{self.url}/kubesim/v1/audit", headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return list(json.loads(answer.read())["items"])

    def pods(self) -> dict[str, dict[str, Any]]:
        """Island pods by name (only those not being deleted)."""
        items = self.admin.list_namespaced_pod("islands").items
        return {p.metadata.name: p for p in items if p.metadata.deletion_timestamp is None}


@contextlib.contextmanager
def cluster(tmp_path: Path, *, boot_delay: float = 0.3, nodes: str = NODES) -> Iterator[Cluster]:
    admin_token, bot_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    (tmp_path / "admin.token").write_text(admin_token)
    (tmp_path / "bot.token").write_text(bot_token)
    admin_kubeconfig = tmp_path / "admin.kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubesim",
            "serve",
            "--kubeconfig",
            str(admin_kubeconfig),
            "--nodes",
            nodes,
            "--create-delay",
            "0.1",
            "--boot-delay",
            str(boot_delay),
            "--probe-period",
            "0.1",
            "--token-file",
            str(tmp_path / "admin.token"),
            "--service-account",
            f"{BOT_ACCOUNT}={tmp_path / 'bot.token'}",
            "--rbac",
            str(SHIPPED_RBAC),
        ],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "kubesim.log", "w"),  # noqa: SIM115 - the process keeps it
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("kubesim serving http://"), line
        url = line.split()[2]
        bot_kubeconfig = tmp_path / "bot.kubeconfig"
        bot_kubeconfig.write_text(yaml.safe_dump(kubeconfig(url, token=bot_token)))
        admin = client.CoreV1Api(kube_config.new_client_from_config(str(admin_kubeconfig)))
        yield Cluster(proc, bot_kubeconfig, admin, url, admin_token)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Bot:
    """One ``islandbot run`` process; ``start`` again after a kill (same port)."""

    env: dict[str, str]
    port: int
    log: Path
    skew_s: float = 0.0  # run with the wall clock this far off (tests/system/skewed.py)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Bot:
        self.starts += 1
        env = {**self.env, "ISLANDBOT_HTTP_ADDRESS": f"127.0.0.1:{self.port}"}
        command = (
            [sys.executable, "-m", "tests.system.skewed", str(self.skew_s), "run"]
            if self.skew_s
            else [ISLANDBOT, "run"]
        )
        with open(self.log, "a") as log:
            log.write(f"---- start {self.starts}\n")
            log.flush()
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=log, cwd=ROOT, start_new_session=True
            )
        return self

    def up(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/healthz", timeout=1) as answer,
            ):
                if answer.status == 200:
                    return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def bot_env(db_url: str, cluster: Cluster, fake: FakeSlack, ports: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ISLANDBOT_", "SLACK_"))}
    return {
        **clean,
        "ISLANDBOT_DATABASE_URL": db_url,
        "ISLANDBOT_KUBECONFIG": str(cluster.bot_kubeconfig),
        "ISLANDBOT_NAMESPACE": "islands",
        "ISLANDBOT_PORT_RANGE": ports,
        "ISLANDBOT_RECONCILE_INTERVAL": "1s",
        "ISLANDBOT_READY_PROBE_INTERVAL": "1s",
        "ISLANDBOT_LEASE_TTL": "2s",
        "ISLANDBOT_MAX_ISLANDS_PER_USER": "3",
        "ISLANDBOT_LOG_LEVEL": "WARNING",
        "ISLANDBOT_SLACK_API_URL": fake.api_url,
        "SLACK_BOT_TOKEN": fakeslack.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": fakeslack.SIGNING_SECRET,
    }


@dataclass
class Sent:
    """One slash command as Slack delivered it, and what came of it."""

    user: str
    text: str
    channel: str
    answered: bool = False  # some delivery of it got a 200 that accepted it
    refused: bool = False  # it got a 200 that turned it away (busy, the database down)
    deliveries: int = 0
    answer: str = ""


class Driver:
    """Sends signed slash commands to the bots, as Slack does (retries unanswered ones)."""

    def __init__(self, fake: FakeSlack, bots: Sequence[Bot], *, retries: int = 40) -> None:
        self.fake = fake
        self.bots = list(bots)
        self.retries = retries
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._turn = 0

    def command(self, user: str, text: str, channel: str) -> Sent:
        """Deliver until answered (or out of retries); returns the record."""
        record = Sent(user, text, channel)
        with self._lock:
            self.sent.append(record)
        body = fakeslack.slash_command(
            text,
            user=user,
            user_name=user.lower(),
            channel=channel,
            response_url=self.fake.response_url(user),
        )
        for attempt in range(self.retries + 1):
            with self._lock:
                bot = self.bots[self._turn % len(self.bots)]  # a load balancer's round robin
                self._turn += 1
            headers = {"Content-Type": fakeslack.FORM, **fakeslack.sign(body)}
            if attempt:
                headers["X-Slack-Retry-Num"] = str(attempt)
                headers["X-Slack-Retry-Reason"] = "http_error"
            record.deliveries += 1
            request = urllib.request.Request(
                bot.url + "/slack/events", data=body.encode(), headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=3) as response:
                    text_back = response.read().decode()
                    if response.status == 200:  # final: Slack never sends an answered one again
                        record.answer = text_back
                        record.refused = any(r in text_back for r in REFUSED)
                        record.answered = not record.refused
                        return record
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.25)
        return record

    def answered(self, verb: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.answered and s.text.split()[0] == verb]

    def refused(self, verb: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.refused and s.text.split()[0] == verb]


def traffic(
    driver: Driver,
    db: Database,
    rng: random.Random,
    stop: threading.Event,
    channels: Sequence[str],
) -> None:
    """A start from a new user every so often, and now and then an owner's stop (of an island
    ``db``, the test's own connection, shows ready)."""
    users = 0
    asked_to_stop: set[int] = set()
    with ThreadPoolExecutor(6) as pool:
        while not stop.is_set():
            if rng.random() < 0.3:
                with db.engine.connect() as conn:
                    live = [
                        (i.id, i.owner_id)
                        for i in conn.execute(
                            select(Island.id, Island.owner_id).where(Island.state == "ready")
                        )
                        if i.id not in asked_to_stop and i.owner_id != POOL_OWNER  # an owner's
                    ]
                if live:
                    island_id, owner = rng.choice(sorted(live))
                    asked_to_stop.add(island_id)
                    pool.submit(driver.command, owner, f"stop {island_id}", rng.choice(channels))
            users += 1
            pool.submit(driver.command, f"U0CHAOS{users:04d}", "start dev", rng.choice(channels))
            stop.wait(rng.uniform(0.2, 1.0))


def key_of(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return ((metadata or {}).get("event_payload") or {}).get("key")


def unsettled(db: Database) -> dict[str, int]:
    """What is not at rest yet: requests not carried out, islands moving, notices unsent."""
    with db.engine.connect() as conn:
        unfinished = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.state != "done")
        ).scalar_one()
        moving = conn.execute(
            select(func.count())
            .select_from(Island)
            .where(Island.state.not_in(["ready", "stopped"]))
        ).scalar_one()
        unsent = conn.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.given_up_at.is_(None))
        ).scalar_one()
    return {"requests": unfinished, "islands": moving, "notices": unsent}


def settled(db: Database) -> bool:
    """Every request carried out, every island at rest, every notice sent."""
    return not any(unsettled(db).values())


class Settling:
    """Waits for everything to settle, noting when each part was last seen unsettled (seconds
    after ``since``): where a slow settle spent its time."""

    def __init__(self, db: Database, since: float, fake: FakeSlack | None = None) -> None:
        """``fake``: the chat, to tell how many posts the busiest conversation took while
        settling (at Slack's pace, a floor on how long settling takes)."""
        self.db, self.since, self.fake = db, since, fake
        self.last: dict[str, float] = {}
        self.at_start: dict[str, int] = {}
        self.started_s = 0.0
        self.posts_before: Counter[str] = Counter()
        self.posts_after: Counter[str] = Counter()

    def _posts(self) -> Counter[str]:
        if self.fake is None:
            return Counter()
        return Counter({c: len(self.fake.posts(c)) for c in list(self.fake.messages)})

    def wait(self, timeout: float) -> float:
        """Seconds after ``since`` when everything had settled (or the timeout ran out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = unsettled(self.db)
            if not self.at_start:
                self.at_start = left
                self.started_s = round(time.monotonic() - self.since, 1)
                self.posts_before = self._posts()
            now = time.monotonic() - self.since
            for part, count in left.items():
                if count:
                    self.last[part] = round(now, 1)
            if not any(left.values()):
                break
            time.sleep(0.25)
        self.posts_after = self._posts() - self.posts_before
        return time.monotonic() - self.since

    def report(self) -> dict[str, object]:
        busiest = self.posts_after.most_common(1)
        return {
            "traffic_ended_s": self.started_s,
            "unsettled_when_traffic_ended": self.at_start,
            "settled_s_by_part": self.last,
            "busiest_conversation_posts_while_settling": busiest[0][1] if busiest else 0,
        }


def check_settled(
    db: Database, fake: FakeSlack, cluster: Cluster, driver: Driver
) -> dict[str, int]:
    """The invariants of issue 15 once everything has settled; returns the counts."""
    with db.engine.connect() as conn:
        islands = list(conn.execute(select(Island).order_by(Island.id)).all())
        notices = list(conn.execute(select(OutboxMessage).order_by(OutboxMessage.id)).all())
        held = list(conn.execute(select(PortBlock).where(PortBlock.island_id.is_not(None))).all())
        deliveries = Counter(conn.execute(select(Delivery.state)).scalars())
    starts = driver.answered("start")
    stops = driver.answered("stop")
    by_owner = Counter(i.owner_id for i in islands)
    warm = [i for i in islands if i.owner_id == POOL_OWNER]  # a warm pool's, nobody's yet
    people = [i for i in islands if i.owner_id != POOL_OWNER]
    # no acknowledged command lost, none done twice: each user started exactly one island
    assert sorted(s.user for s in starts) == sorted({s.user for s in starts})
    missing = [s.user for s in starts if by_owner[s.user] != 1]
    assert not missing, f"acknowledged starts without exactly one island: {missing}"
    done_anyway = [s.user for s in driver.refused("start") if by_owner[s.user]]
    assert not done_anyway, f"starts turned away that started an island: {done_anyway}"
    assert len(people) <= len(driver.sent)
    assert all(i.chat_channel is None and i.claimed_at is None for i in warm)
    stopped = {i.id for i in islands if i.state == "stopped"}
    for stop in stops:
        island_id = int(stop.text.split()[1])
        assert island_id in stopped, f"acknowledged stop of island {island_id} not done"
    assert all(i.state in ("ready", "stopped") for i in islands), [
        (i.id, i.state, i.failure_reason) for i in islands if i.state not in ("ready", "stopped")
    ]
    assert set(deliveries) <= {"done"}, deliveries
    readies = check_announced(
        people, [n for n in notices if n.island_id not in {i.id for i in warm}], fake
    )
    assert not [n for n in notices if n.island_id in {i.id for i in warm}]  # warm ones say nothing
    # nothing leaked: a pod for each live island and no other, a block for each, no other
    live = {i.pod_name for i in islands if i.state != "stopped"}
    assert set(cluster.pods()) == live
    assert sorted(b.island_id for b in held) == sorted(
        i.id for i in islands if i.state != "stopped"
    )
    return {
        "commands_sent": len(driver.sent),
        "deliveries": sum(s.deliveries for s in driver.sent),
        "starts_acknowledged": len(starts),
        "stops_acknowledged": len(stops),
        "islands": len(people),
        "claimed_from_pool": sum(1 for i in people if i.claimed_at is not None),
        "warm_at_end": len([i for i in warm if i.state == "ready"]),
        "ready_replies": readies,
        "notices": len(notices),
        "in_digests": sum(1 for i in islands if i.chat_digest),
        "superseded": sum(1 for n in notices if n.delivered_as == "superseded"),
    }


def check_announced(islands: Sequence[Any], notices: Sequence[Any], fake: FakeSlack) -> int:
    """Every island announced once and every notice delivered once, in its island's order:
    posted (in its thread, or to its owner when the island is in a digest), or recorded as
    only shown in its root message / digest, or superseded by a later one before it went
    out. Returns how many ready notices were posted."""
    posts = [m for channel in list(fake.messages) for m in fake.posts(channel)]
    keys = Counter(k for m in posts if (k := key_of(m)) is not None)
    doubled = {
        k: [
            (m.get("channel"), m.get("thread_ts"), str(m.get("text"))[:60])
            for m in posts
            if key_of(m) == k
        ]
        for k, n in keys.items()
        if n > 1
    }
    assert not doubled, f"notices posted twice (where, what): {doubled}"
    assert all(n.given_up_at is None and n.sent_at is not None for n in notices)
    posted = {f"outbox-{n.id}" for n in notices if n.delivered_as in (None, "posted")}
    found = {k for k in keys if k.startswith("outbox-")}
    assert found == posted, (
        f"posted but not recorded so: {sorted(found - posted)}; recorded posted but not in "
        f"Slack: {sorted(posted - found)}; notices: "
        f"{[(n.id, n.island_id, n.kind, n.delivered_as, n.attempts) for n in notices]}"
    )
    by_ts = {m["ts"]: m for m in posts}
    readies = 0
    for island in islands:
        assert island.chat_thread in by_ts, f"island {island.id} has no root message"
        root_key = key_of(by_ts[island.chat_thread])
        assert root_key is not None
        own = [n for n in notices if n.island_id == island.id]
        later = [f"outbox-{n.id}" for n in own[1:] if n.delivered_as in (None, "posted")]
        if island.chat_digest:
            assert root_key.startswith("digest-"), (island.id, root_key)
            assert own[0].delivered_as == "shown"
            dm = fake.posts("D" + island.owner_id[1:])
            told = [m for m in dm if key_of(m) in set(later)]
        else:
            assert root_key == f"outbox-{own[0].id}", (island.id, root_key)
            # in its thread; or, while a burst crowded the channel, to its owner directly
            dm = [m for m in fake.posts("D" + island.owner_id[1:]) if key_of(m) in set(later)]
            threaded = [m for m in posts if m.get("thread_ts") == island.chat_thread]
            told = sorted(threaded + dm, key=lambda m: float(m["ts"]))
        assert [key_of(m) for m in told] == later, island.id
        for n in own:
            if n.delivered_as == "superseded":
                assert n.kind in ("scheduled", "unschedulable"), (island.id, n.kind)
        ready = sum("is ready on" in str(m["text"]) for m in told)
        assert ready == (1 if island.ready_at is not None else 0), (island.id, ready)
        readies += ready
    return readies
