"""What the team board says: its headings, columns, the history of an island in sentences,
and its error pages (the pages only arrange these; ``bot.http.board_templates``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from bot.domain.durations import format_duration
from bot.words.formatting import (
    STATE_WORDS,
    clock_offset,
    clock_time,
    island_ref,
    memory_size,
    relative_time,
    zone_name,
)

TITLE = "islandbot board"
ISLANDS = "Islands"
NODES = "Nodes"
CLOCKS = "Clock requests waiting for a decision"
NO_CLOCKS = "None."
NO_ISLANDS = "No live islands."
NO_MATCH = "No island matches these filters."
COLUMNS = ("id", "owner", "branch", "state", "node", "host", "ports", "clock", "expires", "note")
MEMORY = "memory"
MINE = "only mine"
ALL_BRANCHES = "every branch"
ALL_STATES = "every state"
FILTER = "Filter"
LIVE = "live"
OFFLINE = "not live: reload the page to see changes"
BACK = "back to the board"
HISTORY = "History"
LOG_TAIL = "Log tail"
MEMORY_HOUR = "Memory over the last hour"
NO_SAMPLES = "No memory readings in the last hour."
READ_ONLY = "Read-only: act on islands from chat."
REAL_TIME = "real time"
NOT_PLACED = "not yet placed"
CORDONED = "cordoned"
NOT_READY = "NotReady"
NO_NODES = "No node takes this branch's islands."
ASKS = "asks"
WHO_DECIDES = "who decides"
EXPIRES = "expires"

# filter values of the state filter, and the states each stands for
STATE_FILTERS: Mapping[str, tuple[str, ...]] = {
    "starting": ("requested", "creating", "scheduled", "running"),
    "ready": ("ready",),
    "failed": ("failed",),
    "stopping": ("stopping",),
}


def signed_in(name: str, expires_at: datetime, tz: tzinfo) -> str:
    return f"Signed in as {name} until {clock_time(expires_at, tz)}."


def state(value: str) -> str:
    return STATE_WORDS.get(value, value)


def clock(offset_s: int, at: datetime | None, tz: tzinfo) -> str:
    if not offset_s or at is None:
        return REAL_TIME
    return f"{clock_offset(offset_s)} (now {clock_time(at, tz)})"


def clock_minute(offset_s: int, at: datetime | None, tz: tzinfo) -> str:
    """An island's clock in its row: to the minute (the row then changes once a minute)."""
    if not offset_s or at is None:
        return REAL_TIME
    shown = at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return f"{clock_offset(offset_s)} (now {shown} {zone_name(tz)})"


def expires(at: datetime, now: datetime) -> str:
    """On the board: to the half hour beyond an hour (``in about 8h``), to the minute within
    (``in 42m``): a row then changes on its own once an hour while its island has time, and
    every viewer is not sent every row every minute."""
    seconds = int((at - now).total_seconds())
    return _expires_in(abs(seconds) // 60, past=seconds < 0)


@functools.lru_cache(maxsize=4096)
def _expires_in(minutes: int, *, past: bool) -> str:
    if minutes == 0:
        return "just now" if past else "in under a minute"
    if minutes >= 60:
        hours = (minutes + 30) // 60
        return f"about {hours}h ago" if past else f"in about {hours}h"
    now = datetime(2000, 1, 1, tzinfo=UTC)  # any: only the difference is worded
    return relative_time(now + timedelta(minutes=-minutes if past else minutes), now)


def memory(used: int, limit: int | None) -> str:
    if not limit:
        return memory_size(used)
    return f"{memory_size(used)} of {memory_size(limit)} ({used * 100 // limit} %)"


MEMORY_STEP = 64 * 2**20  # a row's memory without a limit, rounded down to this


def memory_row(used: int, limit: int | None) -> str:
    """An island's memory in its row: its share of the limit in steps of 5 % (``60 % of
    2Gi``), so that a row does not change (and is not sent to every viewer) at each reading
    for a wobble of a few Mi; the island's page shows the reading itself."""
    if not limit:
        return memory_size(used // MEMORY_STEP * MEMORY_STEP)
    return f"{used * 100 // limit // 5 * 5} % of {memory_size(limit)}"


def room(branch: str, count: int | None, warm: int = 0, warming: int = 0) -> str:
    """``count``: more islands the nodes fit; ``warm``: ready ones of the branch's pool, which
    hold their room already and are handed out at once; ``warming``: pool ones starting."""
    starting = f", {warming} more warming up" if warming else ""
    if count is None:
        told = f"room for {branch} islands unknown (they ask no memory)"
        return told + (f"; {warm} warm ready{starting}" if warm or warming else "")
    total = count + warm
    told = f"room for {total} more {branch} island{'' if total == 1 else 's'}"
    if warm or warming:
        told += f", {warm} of them warm{starting}"
    return told


def node_load(requested: int, allocatable: int, islands: int) -> str:
    share = requested * 100 // allocatable if allocatable else 100
    return (
        f"{memory_size(requested)} of {memory_size(allocatable)} requested ({share} %), "
        f"{islands} island{'' if islands == 1 else 's'}"
    )


def cluster_unreadable(error: str) -> str:
    return f"The cluster could not be read, so the nodes shown may be old: {error[:200]}"


def clock_request(offset_s: int, requested_by: str) -> str:
    return f"{requested_by} asks to move the clock to {clock_offset(offset_s)}"


def island_title(island_id: int, branch: str, owner: str) -> str:
    return f"Island {island_ref(island_id)} on {branch}, {owner}'s"


def when(at: datetime, tz: tzinfo) -> str:
    return clock_time(at, tz)


def memory_chart(samples: int, peak: int, limit: int | None) -> str:
    """The chart's text equivalent (its title, read by screen readers)."""
    top = f"; limit {memory_size(limit)}" if limit else ""
    return f"{samples} readings, highest {memory_size(peak)}{top}"


_STATE_LINES = {
    "creating": "pod created",
    "scheduled": "scheduled on its node",
    "running": "server container running",
    "ready": "ready: its server answers",
    "stopping": "stopping",
    "stopped": "stopped, its pod deleted",
}


def _request(d: Mapping[str, Any]) -> str:
    return str(d.get("request", "?"))


def _until(d: Mapping[str, Any], tz: tzinfo) -> str:
    try:
        return f" until {clock_time(datetime.fromisoformat(str(d['to'])), tz)}"
    except (KeyError, ValueError):
        return ""


def _registered(d: Mapping[str, Any]) -> str:
    node = d.get("node")
    return f"registered from inside the pod{f' on {node}' if node else ''}"


# action -> its line, from (detail, actor); ``extend`` needs the zone (``history``)
_LINES: Mapping[str, Any] = {
    "start": lambda d, a: f"requested by {a} on {d.get('branch', '?')}",
    "island.registered": lambda d, a: _registered(d),
    "clock:request": lambda d, a: (
        f"{a} asked to move the clock to {clock_offset(int(d.get('to', 0)))}"
    ),
    "clock:shift": lambda d, a: f"{a} moved the clock to {clock_offset(int(d.get('to', 0)))}",
    "clock:approve": lambda d, a: f"{a} approved clock request {_request(d)}",
    "clock:reject": lambda d, a: f"{a} rejected clock request {_request(d)}",
    "clock:applied": lambda d, a: f"clock moved to {clock_offset(int(d.get('to', 0)))}",
    "clock:expire": lambda d, a: f"clock request {_request(d)} expired without a decision",
    "clock:failed": lambda d, a: "a clock change failed; the clock was not moved",
    "stop": lambda d, a: f"stop asked by {a}",
    "restart": lambda d, a: f"restart asked by {a}",
    "release_ports": lambda d, a: f"ports from {d.get('first_port', '?')} given back",
}


def history(
    action: str, detail: Mapping[str, Any], actor: str, failure: str | None, tz: tzinfo = UTC
) -> str:
    """One line of an island's history, from its audit entry (``failure``: that failure's
    words, for a move to failed; times in ``tz``)."""
    if action == "extend":
        return f"extended by {actor}{_until(detail, tz)}"
    if action == "state:failed":
        return f"failed: {failure}" if failure else "failed"
    if action.startswith("state:"):
        new = action.removeprefix("state:")
        return _STATE_LINES.get(new, new)
    line = _LINES.get(action)
    return str(line(detail, actor)) if line else f"{action} by {actor}"


# ---- the chat's answers about the board ------------------------------------------------------


def board_link(url: str, expires_at: datetime, tz: tzinfo) -> str:
    return (
        f"Your link to the team board: {url}\n"
        f"It is yours alone (it signs you in as you) and works until "
        f"{clock_time(expires_at, tz)}; ask `/island board` again for a new one."
    )


def board_home(url: str, ttl: timedelta) -> str:
    """App Home's link (Slack mrkdwn)."""
    return (
        f"<{url}|Open the team board> (this link is yours alone; it works for "
        f"{format_duration(ttl)})"
    )


# ---- error pages -----------------------------------------------------------------------------

ASK_AGAIN = "Ask for a new link in chat: /island board"
NO_LINK = "You need a link to see the board."
BAD_LINK = "This board link is not valid: it was changed, or made for another server."


def expired_pass(at: datetime, tz: tzinfo) -> str:
    return f"This board link expired at {clock_time(at, tz)}."


def no_island(island_id: int) -> str:
    return f"There is no island {island_ref(island_id)}."


NOT_FOUND = "There is no such page on the board."
NOT_AN_ISLAND = "That is not an island id: ids are whole numbers."
TOO_LONG = "That request is too long for the board."
BAD_FILTER = "That filter is not one the board knows."
BUSY = "The board is busy: too many people are watching it live; it is live again in a minute."
EXPIRED = "Your board link expired: ask /island board for a new one, then reload."
BROKEN = "The board could not show this page: something went wrong on our side (it is logged)."
DOWN = "The board cannot read its database right now. Reload in a minute."
