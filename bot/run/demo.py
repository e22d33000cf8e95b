"""The embedded demo: the real bot on its embedded defaults, with the console chat for Slack.

``Demo`` is the bot as ``islandbot run`` builds it (``bot.run.compose``: storage, Kubernetes
adapter, lifecycle loop, chat front, HTTP server), with a ``ConsoleChat`` as the chat and, unless
a cluster is named, kubesim started in this process. ``handle`` runs one console line:

    /island start dev          the command, as the current user
    @bob /island list          as bob (bob stays the current user)
    @bob                       switch to bob
    press 4                    press button [b4]
    home                       the current user's home page
    wait [SECONDS]             until every island has settled and every notice is out
    sleep SECONDS              pause (scripts)
    help, quit
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from bot.app.board_links import BoardLink
from bot.chat.console.chat import ConsoleChat
from bot.chat.front import ChatFront
from bot.chat.notifier import ChatNotifier
from bot.chat.output import Reply
from bot.domain.records import Caller
from bot.domain.states import IslandState
from bot.http.server import Address, WebServer
from bot.infra.storage.outbox import Outbox
from bot.run import compose
from bot.run.settings import Settings
from bot.words import demo_text
from kubesim import KubeSim, SimConfig  # the demo's own cluster; nothing else in bot/ imports it

CHANNEL = "C0DEMO"
CHANNEL_NAME = "islands"
FIRST_USER = "alice"
SETTLING = (
    IslandState.REQUESTED,
    IslandState.CREATING,
    IslandState.SCHEDULED,
    IslandState.RUNNING,
    IslandState.STOPPING,
)
_USER = re.compile(r"@([a-z0-9][a-z0-9._-]{0,39})(?:\s+(.*))?", re.DOTALL)
MAX_WAIT_S = 600.0
_FAULT = re.compile(r"memory-climb\s+([0-9]{1,9})", re.IGNORECASE | re.ASCII)
CLIMB_S = 30.0  # `fault memory-climb`: high (90 %) for about 4 s, two readings or more at 1 s
ANY_LOCAL_PORT = Address("127.0.0.1", 0)
DEMO_POOLS = {"dev": 2}  # the demo's warm pools unless ISLANDBOT_POOLS says otherwise


@dataclass
class Cluster:
    """Where the demo's islands run: kubesim in this process (``sim``), or a kubeconfig."""

    kubeconfig: Path
    sim: KubeSim | None = None  # stopped with the demo

    @classmethod
    def embedded(cls, state_dir: Path, *, boot_delay: float = 1.0) -> Cluster:
        """``boot_delay``: seconds an island server takes to answer once its container runs
        (a JVM island takes up to a minute: warm islands skip that wait)."""
        path = state_dir / "kubeconfig"
        config = SimConfig(register_islands=True, boot_delay=boot_delay)
        sim = KubeSim(config, kubeconfig_path=path).start()
        return cls(path, sim)

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()


class Demo:
    """The bot as ``bot.run.compose`` builds it, with ``chat`` as its chat."""

    def __init__(
        self,
        settings: Settings,
        chat: ConsoleChat,
        *,
        cluster: Cluster,
        http_address: Address = ANY_LOCAL_PORT,
    ) -> None:
        self.chat = chat
        self.cluster = cluster
        self.user = FIRST_USER
        self.bot = compose.build(
            replace(
                settings,
                kubeconfig=cluster.kubeconfig,
                kube_context=None,
                http_address=str(http_address),
                metrics_interval=timedelta(seconds=1),  # a memory warning shows within seconds
            ),
            chat=chat,
            tuning=compose.Tuning(api_url_from_server=True),
        )
        assert self.bot.front is not None and self.bot.server is not None
        self.front: ChatFront = self.bot.front
        self.server: WebServer = self.bot.server
        self.settings = self.bot.settings
        self.islands = self.bot.islands
        self.outbox = Outbox(self.bot.db)
        self._stopped = threading.Event()
        self.timeouts = 0  # `wait` lines that gave up

    def start(self) -> Demo:
        self.bot.start()
        return self

    def board_link(self, user: str = FIRST_USER) -> BoardLink:
        """A link to the team board for ``user``, as `/island board` would give them."""
        assert self.bot.board is not None
        return self.bot.board.links.for_caller(Caller(user, user))

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.bot.stop()

    # ---- the console ----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A word from the demo itself, to the current user."""
        self.chat.ephemeral(CHANNEL, self.user, text)

    def handle(self, line: str) -> bool:
        """Run one console line; False when it asks to quit."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line.startswith("@"):
            match = _USER.fullmatch(line)
            if match is None:
                self.say(demo_text.demo_bad_user(line.split()[0]))
                return True
            self.user = match.group(1)
            return self.handle(match.group(2) or "")
        word, _, rest = line.partition(" ")
        word = word.lower()
        if word in {"quit", "exit"}:
            return False
        verbs: dict[str, Callable[[str], None]] = {
            "/island": self.command,
            "press": self.press,
            "wait": self.wait,
            "sleep": self.sleep,
            "home": self.home,
            "fault": self.fault,
            "help": self.help,
            "?": self.help,
        }
        run = verbs.get(word)
        if run is None:
            self.say(demo_text.demo_unknown_line(line))
        else:
            run(rest.strip())
        return True

    def help(self, _rest: str) -> None:
        self.say(demo_text.demo_help())

    def fault(self, text: str) -> None:
        """``fault memory-climb ID``: the island's memory climbs to its limit over 20 s, where
        the cluster OOMKills it (the embedded cluster's fault; its owner is warned first)."""
        self.chat.typed(self.user, f"fault {text}".rstrip(), CHANNEL)
        match = _FAULT.fullmatch(text.strip())
        island_id = int(match.group(1)) if match is not None else None
        if island_id is None:
            self.say(demo_text.demo_bad_fault(text))
            return
        sim = self.cluster.sim
        if sim is None:
            self.say(demo_text.demo_no_fault_here())
            return
        try:
            pod = self.islands.get(island_id).pod_name
            sim.memory_climb(self.settings.namespace, pod, CLIMB_S)
        except Exception as exc:  # no such island, or its pod is not running
            self.say(demo_text.demo_fault_failed(island_id, exc))
            return
        self.say(demo_text.demo_memory_climbing(island_id, CLIMB_S))

    def home(self, _rest: str) -> None:
        self.chat.typed(self.user, "home", CHANNEL)
        self.front.publish_home(self.user)

    def sleep(self, text: str) -> None:
        seconds = _seconds(text)
        if seconds is None:
            self.say(demo_text.demo_bad_seconds("sleep", text))
        else:
            time.sleep(seconds)

    def command(self, text: str, *, user: str | None = None, settle_s: float = 30.0) -> None:
        """``/island <text>`` as ``user`` (default: the current user); returns when its work
        is done (at most ``settle_s``), so that a script's lines take effect in order."""
        who = user or self.user
        self.chat.typed(who, f"/island {text}".rstrip(), CHANNEL)
        answer = self.front.command(
            Caller(who, who, CHANNEL), text, trigger=uuid.uuid4().hex, reply=Reply(who, CHANNEL)
        )
        if answer is not None:
            self.chat.ephemeral(CHANNEL, who, answer)
        self.front.pool.wait_idle(settle_s)

    def press(self, which: str, *, user: str | None = None) -> None:
        who = user or self.user
        number = which.removeprefix("b")
        button = self.chat.button(int(number)) if number.isdigit() and len(number) < 9 else None
        self.chat.typed(who, f"press {which}", CHANNEL)
        if button is None:
            self.chat.ephemeral(CHANNEL, who, demo_text.demo_no_button(which))
            return
        self.front.button(
            Caller(who, who, button.channel or CHANNEL),
            button.action_id,
            button.value,
            trigger=uuid.uuid4().hex,
            reply=Reply(who, button.channel or CHANNEL),
            in_home=button.channel is None,
        )
        self.front.pool.wait_idle(30)

    def wait(self, text: str) -> None:
        seconds = _seconds(text) if text else 120.0
        if seconds is None:
            self.say(demo_text.demo_bad_seconds("wait", text))
            return
        if not self.settle(seconds):
            self.timeouts += 1
            self.say(demo_text.demo_not_settled(seconds, self.unsettled()))

    # ---- settling -------------------------------------------------------------------------------

    def unsettled(self) -> list[int]:
        """Islands still on their way somewhere (starting or stopping, warm ones included)."""
        return self.islands.in_states(SETTLING)

    def pools_filling(self) -> bool:
        """A warm pool is not full yet (its islands not all started, or not ready)."""
        return self.bot.pools is not None and self.bot.pools.filling()

    def settle(self, timeout: float) -> bool:
        """Wait until no island is starting or stopping and every notice is out."""
        deadline = time.monotonic() + min(timeout, MAX_WAIT_S)
        while time.monotonic() < deadline:
            if (
                self.front.pool.wait_idle(max(0.0, deadline - time.monotonic()))
                and not self.unsettled()
                and not self.pools_filling()
                and self.outbox.unsent() == 0
                and self._roots_current()
            ):
                return True
            self.bot.service.poke()
            time.sleep(0.1)
        return False

    def _roots_current(self) -> bool:
        """No root message (or digest) is waiting to be rewritten."""
        notifier = self.bot.engine.notifier
        return not isinstance(notifier, ChatNotifier) or notifier.roots.idle(timeout=0.5)


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= MAX_WAIT_S else None
