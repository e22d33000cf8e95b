"""What the team board says: its headings, columns, the history of an island in sentences,
and its error pages (the pages only arrange these; ``bot.http.board_templates``).

Every text is worded in the language spoken where it is used (``bot.words.catalogue``): the
constants are marked here (``N_``) and translated where they are shown; the templates read
them through ``WORDS`` (``w.ISLANDS``, ``w.room(...)``), which translates them as the page is
rendered, inside its reader's ``speaking``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from bot.words.catalogue import N_, _, current, n_
from bot.words.formatting import (
    clock_offset,
    clock_time,
    format_duration,
    island_ref,
    memory_figures,
    memory_size,
    relative_time,
    state_words,
    zone_name,
)

TITLE = N_("islandbot board")
ISLANDS = N_("Islands")
NODES = N_("Nodes")
CLOCKS = N_("Clock requests waiting for a decision")
NO_CLOCKS = N_("None.")
NO_ISLANDS = N_("No live islands.")
NO_MATCH = N_("No island matches these filters.")
COLUMNS = (
    N_("id"),
    N_("owner"),
    N_("branch"),
    N_("state"),
    N_("node"),
    N_("host"),
    N_("ports"),
    N_("clock"),
    N_("expires"),
    N_("note"),
)
MEMORY = N_("memory")
MINE = N_("only mine")
ALL_BRANCHES = N_("every branch")
ALL_STATES = N_("every state")
FILTER = N_("Filter")
LIVE = N_("live")
OFFLINE = N_("not live: reload the page to see changes")
BACK = N_("back to the board")
HISTORY = N_("History")
LOG_TAIL = N_("Log tail")
MEMORY_HOUR = N_("Memory over the last hour")
NO_SAMPLES = N_("No memory readings in the last hour.")
READ_ONLY = N_("Read-only: act on islands from chat.")
REAL_TIME = N_("real time")
NOT_PLACED = N_("not yet placed")
CORDONED = N_("cordoned")
NOT_READY = N_("NotReady")
NO_NODES = N_("No node takes this branch's islands.")
ASKS = N_("asks")
WHO_DECIDES = N_("who decides")
EXPIRES = N_("expires")

# filter values of the state filter, and the states each stands for (data: its words are
# ``state(value)``)
STATE_FILTERS: Mapping[str, tuple[str, ...]] = {
    "starting": ("requested", "creating", "scheduled", "running"),
    "ready": ("ready",),
    "failed": ("failed",),
    "stopping": ("stopping",),
}


def signed_in(name: str, expires_at: datetime, tz: tzinfo) -> str:
    return _("Signed in as {name} until {time}.", name=name, time=clock_time(expires_at, tz))


def state(value: str) -> str:
    return state_words(value)


def state_filter(value: str) -> str:
    """A value of the state filter as people read it (``starting``: the words of its first
    state)."""
    states = STATE_FILTERS.get(value)
    return state_words(states[0]) if states else value


def label(column: str) -> str:
    """A column's or a fact's heading (``state``, ``expires``: one of ``COLUMNS``)."""
    return _(column) if column in COLUMNS else column


def clock(offset_s: int, at: datetime | None, tz: tzinfo) -> str:
    if not offset_s or at is None:
        return _(REAL_TIME)
    return _("{offset} (now {time})", offset=clock_offset(offset_s), time=clock_time(at, tz))


def clock_minute(offset_s: int, at: datetime | None, tz: tzinfo) -> str:
    """An island's clock in its row: to the minute (the row then changes once a minute)."""
    if not offset_s or at is None:
        return _(REAL_TIME)
    shown = f"{at.astimezone(tz).strftime('%Y-%m-%d %H:%M')} {zone_name(tz)}"
    return _("{offset} (now {time})", offset=clock_offset(offset_s), time=shown)


def expires(at: datetime, now: datetime) -> str:
    """On the board: to the half hour beyond an hour (``in about 8h``), to the minute within
    (``in 42m``): a row then changes on its own once an hour while its island has time, and
    every viewer is not sent every row every minute."""
    seconds = int((at - now).total_seconds())
    return _expires_in(abs(seconds) // 60, past=seconds < 0, language=current())


@functools.lru_cache(maxsize=4096)
def _expires_in(minutes: int, *, past: bool, language: str) -> str:
    """``language``: the one spoken (the words kept are that language's)."""
    if minutes == 0:
        return _("just now") if past else _("in under a minute")
    if minutes >= 60:
        hours = (minutes + 30) // 60
        return _("about {hours}h ago", hours=hours) if past else _("in about {hours}h", hours=hours)
    now = datetime(2000, 1, 1, tzinfo=UTC)  # any: only the difference is worded
    return relative_time(now + timedelta(minutes=-minutes if past else minutes), now)


def memory(used: int, limit: int | None) -> str:
    return memory_figures(used, limit)


MEMORY_STEP = 64 * 2**20  # a row's memory without a limit, rounded down to this


def memory_row(used: int, limit: int | None) -> str:
    """An island's memory in its row: its share of the limit in steps of 5 % (``60 % of
    2Gi``), so that a row does not change (and is not sent to every viewer) at each reading
    for a wobble of a few Mi; the island's page shows the reading itself."""
    if not limit:
        return memory_size(used // MEMORY_STEP * MEMORY_STEP)
    return _(
        "{percent} % of {limit}", percent=used * 100 // limit // 5 * 5, limit=memory_size(limit)
    )


def room(branch: str, count: int | None, warm: int = 0, warming: int = 0) -> str:
    """``count``: more islands the nodes fit; ``warm``: ready ones of the branch's pool, which
    hold their room already and are handed out at once; ``warming``: pool ones starting."""
    if count is None:
        if warming:
            return _(
                "room for {branch} islands unknown (they ask no memory); {warm} warm ready, "
                "{warming} more warming up",
                branch=branch,
                warm=warm,
                warming=warming,
            )
        if warm:
            return _(
                "room for {branch} islands unknown (they ask no memory); {warm} warm ready",
                branch=branch,
                warm=warm,
            )
        return _("room for {branch} islands unknown (they ask no memory)", branch=branch)
    total = count + warm
    if warming:
        return n_(
            "room for {count} more {branch} island, {warm} of them warm, {warming} more warming up",
            "room for {count} more {branch} islands, {warm} of them warm, "
            "{warming} more warming up",
            total,
            branch=branch,
            warm=warm,
            warming=warming,
        )
    if warm:
        return n_(
            "room for {count} more {branch} island, {warm} of them warm",
            "room for {count} more {branch} islands, {warm} of them warm",
            total,
            branch=branch,
            warm=warm,
        )
    return n_(
        "room for {count} more {branch} island",
        "room for {count} more {branch} islands",
        total,
        branch=branch,
    )


def node_load(requested: int, allocatable: int, islands: int) -> str:
    share = requested * 100 // allocatable if allocatable else 100
    return n_(
        "{requested} of {allocatable} requested ({share} %), {count} island",
        "{requested} of {allocatable} requested ({share} %), {count} islands",
        islands,
        requested=memory_size(requested),
        allocatable=memory_size(allocatable),
        share=share,
    )


def cluster_unreadable(error: str) -> str:
    return _(
        "The cluster could not be read, so the nodes shown may be old: {error}", error=error[:200]
    )


def clock_request(offset_s: int, requested_by: str) -> str:
    return _(
        "{who} asks to move the clock to {offset}", who=requested_by, offset=clock_offset(offset_s)
    )


def island_title(island_id: int, branch: str, owner: str) -> str:
    return _(
        "Island {island} on {branch}, {owner}'s",
        island=island_ref(island_id),
        branch=branch,
        owner=owner,
    )


def when(at: datetime, tz: tzinfo) -> str:
    return clock_time(at, tz)


def expires_at(at: datetime, now: datetime, tz: tzinfo) -> str:
    """An island's expiry on its page: the time, and how far off it is."""
    return _("{time} ({left})", time=clock_time(at, tz), left=expires(at, now))


def host(address: str | None, node: str | None) -> str:
    """Where an island runs, on its page: its address and its node."""
    shown = address or _(NOT_PLACED)
    return _("{host} ({node})", host=shown, node=node) if node else shown


def memory_chart(samples: int, peak: int, limit: int | None) -> str:
    """The chart's text equivalent (its title, read by screen readers)."""
    if limit:
        return _(
            "{samples} readings, highest {peak}; limit {limit}",
            samples=samples,
            peak=memory_size(peak),
            limit=memory_size(limit),
        )
    return _("{samples} readings, highest {peak}", samples=samples, peak=memory_size(peak))


def chart_limit(limit: int) -> str:
    """The label of the limit's line on the memory chart."""
    return _("limit {limit}", limit=memory_size(limit))


_STATE_LINES = {
    "creating": N_("pod created"),
    "scheduled": N_("scheduled on its node"),
    "running": N_("server container running"),
    "ready": N_("ready: its server answers"),
    "stopping": N_("stopping"),
    "stopped": N_("stopped, its pod deleted"),
}


def _request(d: Mapping[str, Any]) -> str:
    return str(d.get("request", "?"))


def _to(d: Mapping[str, Any]) -> str:
    return clock_offset(int(d.get("to", 0)))


def _extended(d: Mapping[str, Any], actor: str, tz: tzinfo) -> str:
    try:
        until = clock_time(datetime.fromisoformat(str(d["to"])), tz)
    except (KeyError, ValueError):
        return _("extended by {actor}", actor=actor)
    return _("extended by {actor} until {time}", actor=actor, time=until)


def _registered(d: Mapping[str, Any]) -> str:
    node = d.get("node")
    if node:
        return _("registered from inside the pod on {node}", node=node)
    return _("registered from inside the pod")


# action -> its line, from (detail, actor); ``extend`` needs the zone (``history``)
_LINES: Mapping[str, Any] = {
    "start": lambda d, a: _(
        "requested by {actor} on {branch}", actor=a, branch=d.get("branch", "?")
    ),
    "island.registered": lambda d, a: _registered(d),
    "clock:request": lambda d, a: _(
        "{actor} asked to move the clock to {offset}", actor=a, offset=_to(d)
    ),
    "clock:shift": lambda d, a: _("{actor} moved the clock to {offset}", actor=a, offset=_to(d)),
    "clock:approve": lambda d, a: _(
        "{actor} approved clock request {request}", actor=a, request=_request(d)
    ),
    "clock:reject": lambda d, a: _(
        "{actor} rejected clock request {request}", actor=a, request=_request(d)
    ),
    "clock:applied": lambda d, a: _("clock moved to {offset}", offset=_to(d)),
    "clock:expire": lambda d, a: _(
        "clock request {request} expired without a decision", request=_request(d)
    ),
    "clock:failed": lambda d, a: _("a clock change failed; the clock was not moved"),
    "stop": lambda d, a: _("stop asked by {actor}", actor=a),
    "restart": lambda d, a: _("restart asked by {actor}", actor=a),
    "release_ports": lambda d, a: _("ports from {port} given back", port=d.get("first_port", "?")),
}


def history(
    action: str, detail: Mapping[str, Any], actor: str, failure: str | None, tz: tzinfo = UTC
) -> str:
    """One line of an island's history, from its audit entry (``failure``: that failure's
    words, for a move to failed; times in ``tz``)."""
    if action == "extend":
        return _extended(detail, actor, tz)
    if action == "state:failed":
        return _("failed: {why}", why=failure) if failure else _("failed")
    if action.startswith("state:"):
        new = action.removeprefix("state:")
        line = _STATE_LINES.get(new)
        return _(line) if line else new
    said = _LINES.get(action)
    return (
        str(said(detail, actor)) if said else _("{action} by {actor}", action=action, actor=actor)
    )


# ---- the chat's answers about the board ------------------------------------------------------


def board_link(url: str, expires_at: datetime, tz: tzinfo) -> str:
    return _(
        "Your link to the team board: {url}\n"
        "It is yours alone (it signs you in as you) and works until {time}; ask "
        "`/island board` again for a new one.",
        url=url,
        time=clock_time(expires_at, tz),
    )


def board_home(url: str, ttl: timedelta) -> str:
    """App Home's link (Slack mrkdwn)."""
    return _(
        "<{url}|Open the team board> (this link is yours alone; it works for {duration})",
        url=url,
        duration=format_duration(ttl),
    )


# ---- error pages -----------------------------------------------------------------------------

ASK_AGAIN = N_("Ask for a new link in chat: /island board")
NO_LINK = N_("You need a link to see the board.")
BAD_LINK = N_("This board link is not valid: it was changed, or made for another server.")


def expired_pass(at: datetime, tz: tzinfo) -> str:
    return _("This board link expired at {time}.", time=clock_time(at, tz))


def no_island(island_id: int) -> str:
    return _("There is no island {island}.", island=island_ref(island_id))


NOT_FOUND = N_("There is no such page on the board.")
NOT_AN_ISLAND = N_("That is not an island id: ids are whole numbers.")
TOO_LONG = N_("That request is too long for the board.")
BAD_FILTER = N_("That filter is not one the board knows.")
BUSY = N_("The board is busy: too many people are watching it live; it is live again in a minute.")
EXPIRED = N_("Your board link expired: ask /island board for a new one, then reload.")
BROKEN = N_("The board could not show this page: something went wrong on our side (it is logged).")
DOWN = N_("The board cannot read its database right now. Reload in a minute.")


# ---- the words as the templates read them ----------------------------------------------------

# the texts above (each marked), by name; COLUMNS is translated one by one
_TEXTS = frozenset(
    name for name, value in tuple(globals().items()) if name.isupper() and isinstance(value, str)
)


class Words:
    """This module as the board's templates read it (``w.ISLANDS``, ``w.COLUMNS``,
    ``w.room(...)``): its texts translated when read, in the language spoken then (a page is
    rendered inside its reader's ``speaking``), its sentences the functions above. Nothing is
    kept: one object serves every language."""

    def __getattr__(self, name: str) -> Any:
        if name in _TEXTS:
            return _(globals()[name])
        if name == "COLUMNS":
            return tuple(_(column) for column in COLUMNS)
        if name.startswith("_") or name not in globals():
            raise AttributeError(name)
        return globals()[name]


WORDS = Words()
