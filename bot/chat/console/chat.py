"""The console chat: a ``ChatOutput`` that shows the conversation in a terminal.

It stands in for Slack in the embedded demo (``islandbot demo``) and in the end-to-end tests.
Every message gets a short number (``[m3]``); threaded replies are shown indented under their
root message's number, updates as ``~ [m3] ...``, answers meant for one person as
``(to @alice only)``. Buttons get numbers too (``[b4] Stop``): ``press 4`` presses one. With
``json_lines`` every event is printed as one JSON object per line instead.

Everything said is also kept in ``events`` (thread-safe), for tests and ``--script`` runs.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.chat.console.render import Button, render, with_buttons
from bot.chat.output import Blocks, ChatError
from bot.domain.notice_routes import Pace
from bot.words import demo_text

MAX_FILE_LINES = 20  # lines of an uploaded file shown in the terminal


@dataclass(frozen=True)
class ChatEvent:
    """One thing that happened in the chat. ``kind``: ``command`` (someone typed),
    ``post`` (a new channel message), ``reply`` (in a thread), ``update``, ``ephemeral``,
    ``file`` or ``home``."""

    kind: str
    at: datetime
    text: str
    channel: str | None = None
    user: str | None = None  # who typed (command) or who alone sees it (ephemeral, home)
    message: int | None = None  # the message's number
    thread: int | None = None  # the root message's number (replies, files in a thread)
    broadcast: bool = False
    buttons: tuple[tuple[int, str], ...] = ()  # (number, label)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat(timespec="milliseconds")
        data["buttons"] = [{"press": n, "label": label} for n, label in self.buttons]
        return {k: v for k, v in data.items() if v not in (None, False, [])}


@dataclass
class _Message:
    number: int
    channel: str
    ts: str
    thread_ts: str | None
    key: str | None
    text: str
    buttons: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class PressedButton:
    action_id: str
    value: str
    channel: str | None  # None: pressed on the home page
    label: str


@dataclass
class _ButtonSlot:
    message: int
    action_id: str
    value: str
    label: str
    live: bool = True


@dataclass
class ConsoleChat:
    """``names`` maps channel ids to names (``C0DEMO`` -> ``islands``) for display."""

    write: Callable[[str], None] | None = print
    json_lines: bool = False
    names: Mapping[str, str] = field(default_factory=dict)
    events: list[ChatEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._numbers = itertools.count(1)
        self._button_numbers = itertools.count(1)
        self._messages: dict[str, _Message] = {}
        self._buttons: dict[int, _ButtonSlot] = {}
        self._slot_of: dict[tuple[int, str], int] = {}
        self._base = int(time.time())

    # ---- ChatOutput ---------------------------------------------------------------------------

    def find(self, channel: str, key: str, *, thread_ts: str | None = None) -> str | None:
        with self._lock:
            for m in self._messages.values():
                if m.key == key and m.thread_ts == thread_ts and m.channel == channel:
                    return m.ts
        return None

    def post(
        self,
        channel: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        key: str | None = None,
        look_first: bool = False,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        with self._lock:
            if key is not None and look_first:
                for m in self._messages.values():
                    if m.key == key and m.thread_ts == thread_ts and m.channel == channel:
                        return m.ts
            number = next(self._numbers)
            ts = f"{self._base}.{number:06d}"
            lines, buttons = render(text, blocks)
            numbered = self._number_buttons(number, buttons)
            self._messages[ts] = _Message(
                number, channel, ts, thread_ts, key, "\n".join(lines), numbered
            )
            root = self._messages.get(thread_ts) if thread_ts else None
            self._emit(
                ChatEvent(
                    "reply" if thread_ts else "post",
                    _now(),
                    "\n".join(lines),
                    channel=channel,
                    message=number,
                    thread=root.number if root else None,
                    broadcast=broadcast,
                    buttons=numbered,
                ),
                shown=self._laid_out(lines, buttons, numbered),
            )
            return ts

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        with self._lock:
            message = self._messages.get(ts)
            if message is None or message.channel != channel:
                raise ChatError(f"chat.update: no message {ts} in {channel}", error="not_found")
            lines, buttons = render(text, blocks)
            numbered = self._number_buttons(message.number, buttons)
            if "\n".join(lines) == message.text and numbered == message.buttons:
                return  # nothing visible changed
            before = set(message.text.splitlines())
            message.text, message.buttons = "\n".join(lines), numbered
            self._emit(
                ChatEvent(
                    "update",
                    _now(),
                    message.text,
                    channel=channel,
                    message=message.number,
                    buttons=numbered,
                ),
                shown=[line for line in lines[1:] if line not in before],
            )

    def ephemeral(
        self, channel: str, user: str, text: str, *, blocks: Blocks | None = None
    ) -> None:
        lines, _buttons = render(text, blocks)
        with self._lock:
            self._emit(ChatEvent("ephemeral", _now(), "\n".join(lines), channel=channel, user=user))

    def respond(self, response_url: str, text: str, *, blocks: Blocks | None = None) -> None:
        user = response_url.rpartition("/")[2]  # the console's response URLs end in the user
        lines, _buttons = render(text, blocks)
        with self._lock:
            self._emit(ChatEvent("ephemeral", _now(), "\n".join(lines), user=user))

    def upload(
        self, channel: str, *, filename: str, content: str, title: str, thread_ts: str | None
    ) -> None:
        lines = content.splitlines()
        shown = lines[-MAX_FILE_LINES:]
        more = [demo_text.console_earlier_lines(len(lines) - len(shown))] if shown != lines else []
        with self._lock:
            root = self._messages.get(thread_ts) if thread_ts else None
            self._emit(
                ChatEvent(
                    "file",
                    _now(),
                    "\n".join([f"{filename}: {title}", *more, *shown]),
                    channel=channel,
                    thread=root.number if root else None,
                )
            )

    def direct(self, user: str) -> str:
        return user  # the console shows a direct message as one to the user

    def language(self, user: str) -> str | None:
        return None  # a terminal has one reader: everything in the deployment's language

    def pace(self) -> Pace | None:
        return None  # a terminal shows every message at once: no queue, no digest

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        lines, buttons = render("", view.get("blocks") or [])
        with self._lock:
            numbered = self._number_buttons(0, buttons)
            self._emit(
                ChatEvent("home", _now(), "\n".join(lines), user=user, buttons=numbered),
                shown=self._laid_out(lines, buttons, numbered),
            )

    # ---- the console's side -------------------------------------------------------------------

    def typed(self, user: str, text: str, channel: str) -> None:
        """Record (and show) what a person typed."""
        with self._lock:
            self._emit(ChatEvent("command", _now(), text, channel=channel, user=user))

    def button(self, number: int) -> PressedButton | None:
        """The button shown as ``[b<number>]``, while its message still offers it."""
        with self._lock:
            slot = self._buttons.get(number)
            if slot is None or not slot.live:
                return None
            channel = next(
                (m.channel for m in self._messages.values() if m.number == slot.message), None
            )
            return PressedButton(slot.action_id, slot.value, channel, slot.label)

    def wait_for(self, check: Callable[[list[ChatEvent]], bool], timeout: float) -> bool:
        """Wait until ``check(events)`` holds; False if ``timeout`` seconds passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: check(self.events), timeout)

    def snapshot(self) -> list[ChatEvent]:
        with self._lock:
            return list(self.events)

    # ---- inside -------------------------------------------------------------------------------

    @staticmethod
    def _laid_out(
        lines: list[str], buttons: list[Button], numbered: tuple[tuple[int, str], ...]
    ) -> list[str]:
        """The lines to show, each row of buttons where its message has it."""
        rows = [(b.row, f"[b{n}] {label}") for b, (n, label) in zip(buttons, numbered, strict=True)]
        return with_buttons(lines, rows)

    def _number_buttons(self, message: int, buttons: list[Button]) -> tuple[tuple[int, str], ...]:
        """Number the message's buttons, keeping a button's number across updates; buttons
        the message no longer offers stop working."""
        offered = {b.action_id for b in buttons}
        for (msg, action_id), number in self._slot_of.items():
            if msg == message and action_id not in offered:
                self._buttons[number].live = False
        numbered = []
        for b in buttons:
            known = self._slot_of.get((message, b.action_id)) if message else None
            number = next(self._button_numbers) if known is None else known
            if message:
                self._slot_of[(message, b.action_id)] = number
            self._buttons[number] = _ButtonSlot(message, b.action_id, b.value, b.label)
            numbered.append((number, b.label))
        return tuple(numbered)

    def _emit(self, event: ChatEvent, *, shown: list[str] | None = None) -> None:
        """Record and show; ``shown``: the lines to show, when not the text's (an update
        shows what changed; a message shows its buttons in place)."""
        self.events.append(event)
        self._lock.notify_all()
        if self.write is None:
            return
        if self.json_lines:
            self.write(json.dumps(event.as_json(), ensure_ascii=False))
        else:
            self.write(self._human(event, shown))

    def _where(self, channel: str | None) -> str:
        if channel is None:
            return ""
        name = self.names.get(channel)
        if name:
            return f"#{name}"
        return demo_text.console_direct(channel) if not channel.startswith("C") else channel

    def _human(self, e: ChatEvent, shown: list[str] | None) -> str:  # noqa: PLR0911
        stamp = e.at.astimezone().strftime("%H:%M:%S")
        body = e.text.splitlines() or [""]
        buttons = "  ".join(f"[b{n}] {label}" for n, label in e.buttons)
        if e.kind == "command":
            said = demo_text.console_command(str(e.user), self._where(e.channel))
            return f"{stamp} {said} {e.text}"
        if e.kind == "post":
            head = f"{stamp} [m{e.message}] {self._where(e.channel)}:"
            return _block(head, body if shown is None else shown, "", indent="    ")
        if e.kind == "reply":
            thread = f"[m{e.thread}]" if e.thread else demo_text.console_thread()
            also = f" {demo_text.console_broadcast()}" if e.broadcast else ""
            head = f"{stamp}   {thread} ↳ [m{e.message}]{also} {body[0]}"
            return _block(head, body[1:], buttons, indent="        ")
        if e.kind == "update":
            head = f"{stamp}   ~ [m{e.message}] {demo_text.console_updated()} {body[0]}"
            return _block(head, body[1:] if shown is None else shown, buttons, indent="        ")
        if e.kind == "ephemeral":
            head = f"{stamp}   {demo_text.console_only_to(str(e.user))} {body[0]}"
            return _block(head, body[1:], buttons, indent="        ")
        if e.kind == "file":
            where = f"[m{e.thread}] " if e.thread else ""
            head = f"{stamp}   {where}{demo_text.console_file()} {body[0]}"
            return _block(head, body[1:], "", indent="        | ")
        head = f"{stamp} {demo_text.console_home_of(str(e.user))}"
        return _block(head, body if shown is None else shown, "", indent="    ")


def _block(head: str, lines: list[str], buttons: str, *, indent: str) -> str:
    out = [head, *(indent + line for line in lines)]
    if buttons:
        out.append(indent + buttons)
    return "\n".join(out)


def _now() -> datetime:
    return datetime.now(UTC)
