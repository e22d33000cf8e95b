"""One team, two chats: the same scenario driven through the console demo (``tests.demoworld``)
or through the Lark adapter over HTTP callbacks (``tests.larkworld``), by a small protocol,
``Team``, that both implement.

People are named by role (``owner``, ``other``, ``admin``; ``Team.people`` maps each to the
chat's id: ``alice`` or ``ou_alice``), and every text a driver returns is normalised to read the
same in both chats: a mention of a person is ``@<role>`` (the console's ``@alice``, Lark's
``<at user_id="ou_alice"></at>`` and a card's ``<at id=ou_alice></at>``), Lark's bold marks are
dropped, a card's field reads ``Label: value`` as the console shows it, and a message's buttons
are its last line, ``[Stop]  [Extend 4h]  [Logs]``.

    team.says("other", "start qa")              what /island gets (console: /island start qa;
                                                Lark: @islandbot start qa in the group)
    team.private("other")                       what was said to them alone (console:
                                                "(to bob only)" and direct messages; Lark:
                                                their chat with the bot)
    team.channel()                              the channel's root messages, as last shown
    team.thread(island_id)                      the replies in the island's thread
    team.press("owner", island_id, "Extend")    a button on the island's root message (or on
                                                a message found with ``team.message``)
"""

from __future__ import annotations

import re
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.chat.notifier import ChatNotifier
from bot.domain.port_blocks import PortRange
from bot.domain.records import IslandRecord
from bot.infra.storage.database import Database
from bot.infra.storage.outbox import Outbox
from bot.run.compose import Bot
from bot.run.demo import CHANNEL, SETTLING, Demo
from tests.demoworld import FAST, demo_on
from tests.demoworld import until as demo_until
from tests.larkworld import ADMIN, GROUP, LarkWorld, lark_world, shown

CHATS = ("console", "lark")
ROLES = ("owner", "other", "admin")
Where = int | str  # an island (its root message) by id, or a message by ``Team.message``

_AT = re.compile(r'<at (?:user_id="([^"]+)"|id=([^>\s]+))></at>')  # Lark's mentions


class Team(ABC):
    """A team using islandbot through one chat; people by role (``ROLES``)."""

    chat: str  # one of CHATS
    people: Mapping[str, str]  # role -> the chat's id of that person

    # ---- what a driver implements --------------------------------------------------------

    @abstractmethod
    def says(self, person: str, text: str) -> None:
        """``person`` asks ``/island <text>``; returns once the bot has taken it in and its
        work is done (what it says may still be on its way: see ``told``)."""

    @abstractmethod
    def private(self, person: str) -> list[str]:
        """What the bot said to ``person`` alone, in order."""

    @abstractmethod
    def channel(self) -> list[str]:
        """The channel's root messages (islands' root messages, clock requests), in order,
        each as last shown."""

    @abstractmethod
    def thread(self, island_id: int) -> list[str]:
        """The replies in the island's thread, in order."""

    @abstractmethod
    def shown(self, where: Where) -> str:
        """A root message as last shown: the island's (by id) or one ``message`` found."""

    @abstractmethod
    def message(self, pattern: str, timeout: float = 20.0) -> str:
        """The last root message in the channel that contains ``pattern`` (waiting for one),
        as a handle for ``shown`` and ``press``."""

    @abstractmethod
    def press(self, person: str, where: Where, label: str) -> None:
        """``person`` presses the button whose label starts with ``label``; returns once the
        bot has taken it in and its work is done."""

    @abstractmethod
    def islands(self) -> list[IslandRecord]:
        """The live islands, lowest id first."""

    @abstractmethod
    def island(self, island_id: int) -> IslandRecord: ...

    @abstractmethod
    def until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        """``check()``'s first true value; the test fails after ``timeout`` s without one."""

    @abstractmethod
    def settle(self, timeout: float = 60.0) -> None:
        """Wait until no island is starting or stopping and every notice is out."""

    # ---- built on those --------------------------------------------------------------------

    def role(self, chat_id: str) -> str:
        """The role of the person with this id in the chat."""
        return next(role for role, known in self.people.items() if known == chat_id)

    def told(self, person: str, pattern: str, timeout: float = 20.0) -> str:
        """The last thing said to ``person`` alone that contains ``pattern`` (waiting)."""
        return str(
            self.until(
                lambda: next((t for t in reversed(self.private(person)) if pattern in t), None),
                timeout,
            )
        )

    def start(self, person: str, args: str = "dev") -> int:
        """``person`` starts an island (``start <args>``); its id once its root message is
        out (ids are never reused: on MariaDB they go on from earlier tests)."""
        owner = self.people[person]
        before = {i.id for i in self.islands() if i.owner_id == owner}

        def new() -> int | None:
            found = [i for i in self.islands() if i.owner_id == owner and i.id not in before]
            return found[0].id if found and found[0].chat_thread else None

        self.says(person, f"start {args}")
        return int(self.until(new))

    def showing(self, island_id: int, state: str, timeout: float = 20.0) -> str:
        """The island's root message once its first line shows ``state``."""

        def shown() -> str | None:
            text = self.shown(island_id)
            return text if text.splitlines()[0].endswith(f": {state}") else None

        return str(self.until(shown, timeout))

    def ready(self, island_id: int, timeout: float = 30.0) -> str:
        """The island's ready reply in its thread, once it is there and the island ready."""
        reply = self.until(
            lambda: next((t for t in self.thread(island_id) if " is ready on " in t), None),
            timeout,
        )
        self.until(lambda: self.island(island_id).state == "ready", timeout)
        return str(reply)


def settled(bot: Bot) -> bool:
    """No island starting or stopping, no work in hand, every notice out and no root message
    waiting to be rewritten (what ``Demo.settle`` waits for, for any chat's bot)."""
    assert bot.front is not None
    notifier = bot.engine.notifier
    return (
        bot.front.pool.wait_idle(5)
        and not bot.islands.in_states(SETTLING)
        and not (bot.pools is not None and bot.pools.filling())
        and Outbox(bot.db).unsent() == 0
        and (not isinstance(notifier, ChatNotifier) or notifier.roots.idle(timeout=0.5))
    )


def _bold_off(text: str) -> str:
    """Lark's bold (``**x**`` in a card, ``<b>x</b>`` in a text) as the console shows it, a
    card's field (``**Label**`` over its value) as ``Label: value``."""
    text = re.sub(r"(?m)^\*\*([^*\n]+)\*\*\n(?=[^\n])", r"\1: ", text)
    return re.sub(r"\*\*([^*\n]+)\*\*|<b>([^<]*)</b>", lambda m: m.group(1) or m.group(2), text)


class ConsoleTeam(Team):
    """The console demo (``bot.run.demo.Demo``): commands as console lines, everything read
    from the console chat's transcript."""

    chat = "console"

    def __init__(self, demo: Demo, people: Mapping[str, str]) -> None:
        self.demo = demo
        self.people = dict(people)
        names = "|".join(re.escape(name) for name in self.people.values())
        self._mention = re.compile(rf"@({names})\b")

    def normal(self, text: str) -> str:
        return self._mention.sub(lambda m: "@" + self.role(m.group(1)), text)

    def says(self, person: str, text: str) -> None:
        self.demo.command(text, user=self.people[person])

    def private(self, person: str) -> list[str]:
        user = self.people[person]
        return [
            self.normal(e.text)
            for e in self.demo.chat.snapshot()
            if (e.kind == "ephemeral" and e.user == user)
            or (e.kind == "post" and e.channel == user)
        ]

    def _roots(self) -> dict[int, tuple[str, tuple[tuple[int, str], ...]]]:
        """The channel's root messages by number: (text, buttons) as last shown."""
        roots: dict[int, tuple[str, tuple[tuple[int, str], ...]]] = {}
        for e in self.demo.chat.snapshot():
            if e.message is None or e.channel != CHANNEL:
                continue
            if e.kind == "post" or (e.kind == "update" and e.message in roots):
                roots[e.message] = (e.text, e.buttons)
        return roots

    def _shown(self, text: str, buttons: tuple[tuple[int, str], ...]) -> str:
        row = "  ".join(f"[{label}]" for _n, label in buttons)
        return self.normal("\n".join([text, row] if row else [text]))

    def channel(self) -> list[str]:
        return [self._shown(*root) for _n, root in sorted(self._roots().items())]

    def _number(self, where: Where) -> int:
        """The console's number of a root message: an island's root message by its ts (the
        console's ``<start>.<number>``), a message by the handle ``message`` gave."""
        if isinstance(where, str):
            return int(where)
        ts = self.island(where).chat_thread
        assert ts is not None, f"island #{where} has no root message"
        return int(ts.rpartition(".")[2])

    def thread(self, island_id: int) -> list[str]:
        root = self._number(island_id)
        return [
            self.normal(e.text)
            for e in self.demo.chat.snapshot()
            if e.kind == "reply" and e.thread == root
        ]

    def shown(self, where: Where) -> str:
        return self._shown(*self._roots()[self._number(where)])

    def message(self, pattern: str, timeout: float = 20.0) -> str:
        def found() -> str | None:
            roots = self._roots()
            return next(
                (str(n) for n in sorted(roots, reverse=True) if pattern in self._shown(*roots[n])),
                None,
            )

        return str(self.until(found, timeout))

    def press(self, person: str, where: Where, label: str) -> None:
        _text, buttons = self._roots()[self._number(where)]
        number = next(n for n, text in buttons if text.startswith(label))
        self.demo.press(str(number), user=self.people[person])

    def islands(self) -> list[IslandRecord]:
        return sorted(self.demo.islands.live(), key=lambda i: i.id)

    def island(self, island_id: int) -> IslandRecord:
        return self.demo.islands.get(island_id)

    def until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        try:
            return demo_until(check, timeout)
        except pytest.fail.Exception:
            pytest.fail(f"not seen within {timeout} s; the transcript:\n{self.transcript()}")

    def transcript(self) -> str:
        return "\n".join(f"{e.kind} {e.user or ''}: {e.text}" for e in self.demo.chat.snapshot())

    def settle(self, timeout: float = 60.0) -> None:
        assert self.demo.settle(timeout), f"not settled: {self.demo.unsettled()}"


class LarkTeam(Team):
    """The bot on Lark over HTTP callbacks (``tests.larkworld``): commands as messages that
    mention the bot in the group, clicks as card actions, everything read from the fake Lark."""

    chat = "lark"

    def __init__(self, world: LarkWorld, people: Mapping[str, str]) -> None:
        self.world = world
        self.people = dict(people)

    def normal(self, text: str) -> str:
        def mention(match: re.Match[str]) -> str:
            chat_id = match.group(1) or match.group(2)
            return "@" + (self.role(chat_id) if chat_id in self.people.values() else chat_id)

        return _bold_off(_AT.sub(mention, text))

    def says(self, person: str, text: str) -> None:
        self.world.say(self.people[person], text)
        self.world.front.pool.wait_idle(30)

    def private(self, person: str) -> list[str]:
        return [self.normal(t) for t in self.world.texts(self.people[person])]

    def _roots(self) -> list[dict[str, Any]]:
        fake = self.world.fake
        return [m for m in fake.messages(GROUP) if m["sender"] == fake.app_id and not m["root_id"]]

    def channel(self) -> list[str]:
        return [self.normal(shown(m)) for m in self._roots()]

    def _message_id(self, where: Where) -> str:
        if isinstance(where, str):
            return where
        root = self.island(where).chat_thread
        assert root is not None, f"island #{where} has no root card"
        return root

    def thread(self, island_id: int) -> list[str]:
        return [self.normal(t) for t in self.world.thread(self.island(island_id))]

    def shown(self, where: Where) -> str:
        return self.normal(shown(self.world.fake.message(self._message_id(where))))

    def message(self, pattern: str, timeout: float = 20.0) -> str:
        def found() -> str | None:
            roots = reversed(self._roots())
            return next(
                (str(m["message_id"]) for m in roots if pattern in self.normal(shown(m))), None
            )

        return str(self.until(found, timeout))

    def press(self, person: str, where: Where, label: str) -> None:
        answered = self.world.click(self.people[person], self._message_id(where), label)
        assert answered == (200, {}), answered  # taken in; whatever it says comes as a message
        self.world.front.pool.wait_idle(30)

    def islands(self) -> list[IslandRecord]:
        return sorted(self.world.islands(), key=lambda i: i.id)

    def island(self, island_id: int) -> IslandRecord:
        return self.world.island(island_id)

    def until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        try:
            return self.world.until(check, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the chat:\n{self.transcript()}") from None

    def transcript(self) -> str:
        return "\n".join(
            f"{m['chat_id']} {m['sender']}: {shown(m)}" for m in self.world.fake.messages()
        )

    def settle(self, timeout: float = 60.0) -> None:
        self.until(lambda: settled(self.world.bot), timeout)


CONSOLE_PEOPLE = {"owner": "alice", "other": "bob", "admin": "admin"}
LARK_PEOPLE = {"owner": "ou_alice", "other": "ou_bob", "admin": ADMIN}
# ports of their own: other tests' bots (on 37000-37299, 38000-38299) may run beside these
CONSOLE_PORTS, LARK_PORTS = "37800-37899", "37900-37999"


@contextmanager
def team_on(chat: str, db: Database, tmp_path: Path) -> Iterator[Team]:
    """The team in ``chat`` (``CHATS``), the bot on ``db`` against kubesim (the demo's nodes
    and timings, ``tests.demoworld.FAST``, for both); ``admin`` is the deployment's admin."""
    if chat == "console":
        url = db.engine.url.render_as_string(hide_password=False)
        admins = frozenset({CONSOLE_PEOPLE["admin"]})
        ports = PortRange.parse(CONSOLE_PORTS)
        with demo_on(url, tmp_path, admins=admins, port_range=ports) as (demo, _sim):
            yield ConsoleTeam(demo, CONSOLE_PEOPLE)
    elif chat == "lark":
        env = {"ISLANDBOT_PORT_RANGE": LARK_PORTS}
        with lark_world(db, tmp_path, sim=FAST, env=env) as world:
            yield LarkTeam(world, LARK_PEOPLE)
    else:
        raise ValueError(f"chat is one of {CHATS}, not {chat!r}")


# ---- the islands themselves, whichever chat started them -------------------------------------


def answers(record: IslandRecord, port: int) -> None:
    """The island's host takes a TCP connection on ``port``."""
    with socket.create_connection((str(record.host_ip), port), timeout=3):
        pass


def server_clock(record: IslandRecord) -> float:
    """The island server's clock, read over TCP with its ``TIME`` command."""
    with socket.create_connection((str(record.host_ip), max(record.ports)), timeout=3) as conn:
        conn.sendall(b"TIME\n")
        return float(conn.makefile().readline().split()[1])


def clock_near(record: IslandRecord, expected: float, tolerance: float = 5.0) -> float:
    """The island server's clock once it is within ``tolerance`` of ``expected`` (libfaketime
    re-reads its file every few seconds)."""
    deadline = time.monotonic() + 15
    while True:
        now = server_clock(record)
        if abs(now - expected) <= tolerance or time.monotonic() > deadline:
            return now
        time.sleep(0.3)
