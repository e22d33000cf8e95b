"""The ``/island`` command language, parsed into frozen dataclasses before any I/O (pure).

``parse_command(text, context)`` returns one of the command classes below or raises
``CommandError`` with a ``Problem`` and the details needed to explain it; the wording lives
in ``bot.words.usage`` (``usage.command_error``), like every other sentence a person reads.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from bot.domain.durations import parse_duration
from bot.domain.island_clock import BadWhen, When, parse_when

MAX_TEXT = 2000  # characters; Slack allows 4,000, an /island command never needs half
MAX_NOTE = 500
MAX_ID = 2**31 - 1
MAX_LOG_LINES = 5000
DEFAULT_LOG_LINES = 100
_ID = re.compile(r"#?([0-9]{1,10})")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")
_AT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")
# Phones and Macs turn quotes into curly ones; shlex only knows the straight kind.
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


class Problem(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    CONTROL_CHARACTERS = "control_characters"
    UNBALANCED_QUOTES = "unbalanced_quotes"
    UNKNOWN_VERB = "unknown_verb"
    MISSING_ARGUMENT = "missing_argument"
    EXTRA_ARGUMENTS = "extra_arguments"
    BAD_ID = "bad_id"
    BAD_DURATION = "bad_duration"
    DURATION_TOO_LONG = "duration_too_long"
    UNKNOWN_BRANCH = "unknown_branch"
    UNKNOWN_OPTION = "unknown_option"
    REPEATED_OPTION = "repeated_option"
    BAD_TIME = "bad_time"
    NOTE_TOO_LONG = "note_too_long"
    BAD_SETTING = "bad_setting"
    BAD_LINES = "bad_lines"
    BAD_WHEN = "bad_when"
    BAD_POOL_SIZE = "bad_pool_size"


class CommandError(ValueError):
    """Bad input. ``verb`` names the command whose usage line helps (None: general usage)."""

    def __init__(self, problem: Problem, verb: str | None = None, **detail: Any) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.verb = verb
        self.detail = detail


@dataclass(frozen=True)
class ParseContext:
    branches: tuple[str, ...]
    max_ttl: timedelta
    tz: tzinfo = UTC  # the team's time zone, for times people type


@dataclass(frozen=True)
class Start:
    branch: str
    at: datetime | None = None  # the island's clock at start (typed in the team's zone, held
    # in UTC), None: real time
    ttl: timedelta | None = None  # None: the configured default
    note: str | None = None
    overrides: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Stop:
    island_id: int | None  # None: all of the caller's islands ("mine")


@dataclass(frozen=True)
class Restart:
    island_id: int


@dataclass(frozen=True)
class Extend:
    island_id: int
    by: timedelta


class ListScope(StrEnum):
    ALL = "all"
    MINE = "mine"
    BRANCH = "branch"


@dataclass(frozen=True)
class ListIslands:
    scope: ListScope = ListScope.ALL
    branch: str | None = None


@dataclass(frozen=True)
class Status:
    island_id: int


@dataclass(frozen=True)
class Logs:
    island_id: int
    lines: int = DEFAULT_LOG_LINES
    previous: bool = False  # the container's previous run (after a crash)


@dataclass(frozen=True)
class Time:
    island_id: int
    when: When | None = None  # None: show the clock
    history: bool = False


@dataclass(frozen=True)
class Capacity:
    pass


@dataclass(frozen=True)
class Board:
    """A link to the team board, for the one who asks."""


class PoolVerb(StrEnum):
    SHOW = "show"  # each branch's pool (or one's)
    SIZE = "size"  # an admin sets a branch's pool size
    REFRESH = "refresh"  # an admin says a branch's code changed: its warm islands are renewed


@dataclass(frozen=True)
class Pool:
    what: PoolVerb = PoolVerb.SHOW
    branch: str | None = None
    size: int | None = None  # SIZE: None puts the deployment's size back


@dataclass(frozen=True)
class Help:
    verb: str | None = None


Command = (
    Start
    | Stop
    | Restart
    | Extend
    | ListIslands
    | Status
    | Logs
    | Time
    | Capacity
    | Board
    | Pool
    | Help
)

VERBS: tuple[str, ...] = (
    "start",
    "stop",
    "restart",
    "extend",
    "list",
    "status",
    "logs",
    "time",
    "capacity",
    "board",
    "pool",
    "help",
)


@dataclass
class _Words:
    verb: str
    items: list[str] = field(default_factory=list)

    def take(self, what: str) -> str:
        if not self.items:
            raise CommandError(Problem.MISSING_ARGUMENT, self.verb, what=what)
        return self.items.pop(0)

    def done(self) -> None:
        if self.items:
            raise CommandError(Problem.EXTRA_ARGUMENTS, self.verb, extra=" ".join(self.items))


def parse_command(text: str, context: ParseContext) -> Command:
    """Parse the text after ``/island``. Raises ``CommandError`` and nothing else."""
    if len(text) > MAX_TEXT:
        raise CommandError(Problem.TOO_LONG, limit=MAX_TEXT, length=len(text))
    if any((ord(ch) < 32 and ch not in "\t\n\r") or ord(ch) == 127 for ch in text):
        raise CommandError(Problem.CONTROL_CHARACTERS)
    try:
        words = shlex.split(text.translate(_QUOTES))
    except ValueError:
        raise CommandError(Problem.UNBALANCED_QUOTES) from None
    if not words:
        raise CommandError(Problem.EMPTY)
    verb = words[0].lower()
    rest = _Words(verb, words[1:])
    parser = _PARSERS.get(verb)
    if parser is None:
        raise CommandError(Problem.UNKNOWN_VERB, given=words[0][:40], verbs=VERBS)
    return parser(rest, context)


def parse_island_id(text: str, verb: str | None = None) -> int:
    match = _ID.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group(1)) <= MAX_ID:
        raise CommandError(Problem.BAD_ID, verb, given=text[:40])
    return int(match.group(1))


def _duration(text: str, verb: str, context: ParseContext) -> timedelta:
    try:
        value = parse_duration(text)
    except ValueError:
        raise CommandError(Problem.BAD_DURATION, verb, given=text[:40]) from None
    if value > context.max_ttl:
        raise CommandError(Problem.DURATION_TOO_LONG, verb, given=text, limit=context.max_ttl)
    return value


def _branch(text: str, verb: str, context: ParseContext) -> str:
    if text not in context.branches:
        raise CommandError(Problem.UNKNOWN_BRANCH, verb, given=text[:63], branches=context.branches)
    return text


def parse_at(text: str, verb: str = "start", tz: tzinfo = UTC) -> datetime:
    """``YYYY-MM-DD HH:MM[:SS]`` (or with a ``T``) in the zone ``tz``, between 1971 and 2099;
    the instant, in UTC."""
    for fmt in _AT_FORMATS:
        try:
            value = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        if 1971 <= value.year <= 2099:
            return value.replace(tzinfo=tz).astimezone(UTC)
    raise CommandError(Problem.BAD_TIME, verb, given=text[:40], tz=tz)


def _start(words: _Words, context: ParseContext) -> Start:
    branch = _branch(words.take("branch"), "start", context)
    options: dict[str, Any] = {}
    overrides: list[tuple[str, str]] = []
    while words.items:
        word = words.items.pop(0)
        if word.lower() == "set":
            if not words.items:
                raise CommandError(Problem.MISSING_ARGUMENT, "start", what="KEY=VALUE")
            overrides.extend(_setting(item) for item in words.items)
            words.items.clear()
            break
        name, sep, value = word.partition("=")
        name = name.lower()
        if not sep or name not in ("at", "ttl", "note"):
            raise CommandError(Problem.UNKNOWN_OPTION, "start", given=word[:40])
        if name in options:
            raise CommandError(Problem.REPEATED_OPTION, "start", option=name)
        if name == "at":
            options["at"] = parse_at(value, "start", context.tz)
        elif name == "ttl":
            options["ttl"] = _duration(value, "start", context)
        else:
            note = value.strip()
            if len(note) > MAX_NOTE:
                raise CommandError(Problem.NOTE_TOO_LONG, "start", limit=MAX_NOTE)
            options["note"] = note or None
    keys = [k for k, _ in overrides]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise CommandError(Problem.REPEATED_OPTION, "start", option=", ".join(repeated))
    return Start(branch=branch, overrides=tuple(overrides), **options)


def _setting(word: str) -> tuple[str, str]:
    key, sep, value = word.partition("=")
    if not sep or not _KEY.fullmatch(key):
        raise CommandError(Problem.BAD_SETTING, "start", given=word[:60])
    return key, value


def _stop(words: _Words, _context: ParseContext) -> Stop:
    target = words.take("island id or 'mine'")
    words.done()
    if target.lower() == "mine":
        return Stop(None)
    return Stop(parse_island_id(target, "stop"))


def _restart(words: _Words, _context: ParseContext) -> Restart:
    island_id = parse_island_id(words.take("island id"), "restart")
    words.done()
    return Restart(island_id)


def _extend(words: _Words, context: ParseContext) -> Extend:
    island_id = parse_island_id(words.take("island id"), "extend")
    by = _duration(words.take("duration"), "extend", context)
    words.done()
    return Extend(island_id, by)


def _list(words: _Words, context: ParseContext) -> ListIslands:
    if not words.items:
        return ListIslands()
    scope = words.take("scope")
    words.done()
    if scope.lower() in ("all", "mine"):
        return ListIslands(ListScope(scope.lower()))
    return ListIslands(ListScope.BRANCH, _branch(scope, "list", context))


def _status(words: _Words, _context: ParseContext) -> Status:
    island_id = parse_island_id(words.take("island id"), "status")
    words.done()
    return Status(island_id)


def _logs(words: _Words, _context: ParseContext) -> Logs:
    island_id = parse_island_id(words.take("island id"), "logs")
    lines, previous, seen = DEFAULT_LOG_LINES, False, set()
    for word in words.items:
        lowered = word.lower()
        key = "previous" if lowered == "previous" else lowered.partition("=")[0]
        if key in seen:
            raise CommandError(Problem.REPEATED_OPTION, "logs", option=key)
        seen.add(key)
        if lowered == "previous":
            previous = True
        elif lowered.startswith("lines="):
            value = lowered.removeprefix("lines=")
            if not re.fullmatch(r"[0-9]{1,5}", value) or not 1 <= int(value) <= MAX_LOG_LINES:
                raise CommandError(Problem.BAD_LINES, "logs", given=word[:40], limit=MAX_LOG_LINES)
            lines = int(value)
        else:
            raise CommandError(Problem.UNKNOWN_OPTION, "logs", given=word[:40])
    return Logs(island_id, lines, previous)


def _time(words: _Words, context: ParseContext) -> Time:
    island_id = parse_island_id(words.take("island id"), "time")
    if not words.items:
        return Time(island_id)
    rest = " ".join(words.items)  # an absolute time may come unquoted: 2021-09-20 10:00
    words.items.clear()
    if rest.lower() == "history":
        return Time(island_id, history=True)
    try:
        return Time(island_id, when=parse_when(rest, context.tz))
    except BadWhen:
        raise CommandError(Problem.BAD_WHEN, "time", given=rest[:40], tz=context.tz) from None


def _capacity(words: _Words, _context: ParseContext) -> Capacity:
    words.done()
    return Capacity()


def _board(words: _Words, _context: ParseContext) -> Board:
    words.done()
    return Board()


def _pool(words: _Words, context: ParseContext) -> Pool:
    """``pool [BRANCH]``, ``pool BRANCH size=N|default``, ``pool refresh BRANCH``."""
    if not words.items:
        return Pool()
    first = words.take("branch")
    if first.lower() == "refresh":
        branch = _branch(words.take("branch"), "pool", context)
        words.done()
        return Pool(PoolVerb.REFRESH, branch)
    branch = _branch(first, "pool", context)
    if not words.items:
        return Pool(PoolVerb.SHOW, branch)
    setting = words.take("size=N")
    words.done()
    name, sep, value = setting.partition("=")
    if name.lower() != "size" or not sep:
        raise CommandError(Problem.UNKNOWN_OPTION, "pool", given=setting[:40])
    if value.lower() == "default":
        return Pool(PoolVerb.SIZE, branch, None)
    if not value.isdigit() or len(value) > 4:
        raise CommandError(Problem.BAD_POOL_SIZE, "pool", given=value[:40])
    return Pool(PoolVerb.SIZE, branch, int(value))


def _help(words: _Words, _context: ParseContext) -> Help:
    if not words.items:
        return Help()
    verb = words.take("command").lower()
    words.done()
    if verb not in VERBS:
        raise CommandError(Problem.UNKNOWN_VERB, given=verb[:40], verbs=VERBS)
    return Help(verb)


_PARSERS: dict[str, Callable[[_Words, ParseContext], Command]] = {
    "start": _start,
    "stop": _stop,
    "restart": _restart,
    "extend": _extend,
    "list": _list,
    "status": _status,
    "logs": _logs,
    "time": _time,
    "capacity": _capacity,
    "board": _board,
    "pool": _pool,
    "help": _help,
}
