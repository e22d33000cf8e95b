"""What the bot shows and answers about islands: root messages, tables, the home page, replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo

from bot.domain.records import BranchCapacity, CapacityReport, IslandRecord, LogTail
from bot.words.catalogue import N_, _, n_, p_
from bot.words.formatting import (
    clock_time,
    escape,
    format_duration,
    island_ref,
    memory_figures,
    memory_use,
    pad,
    relative_time,
    state_name,
    state_words,
    utc_time,
)

# Texts used by other modules (``layouts``, the chat front): marked here, translated where they
# are shown, with ``_(island_text.BUTTON_STOP)``.
BUTTON_STOP = N_("Stop")


BUTTON_KEEP = N_("Keep it")


BUTTON_LOGS = N_("Logs")


HOME_MINE = N_("Your islands")


HOME_TEAM = N_("The team's islands")


NO_ISLANDS = N_("No live islands.")


NO_ISLANDS_OF_YOURS = N_("You have no live island. Start one with `/island start &lt;branch&gt;`.")


def table_header() -> str:
    """The column names of ``table_row``'s fixed-width table (wide characters count twice)."""
    names = (
        pad(p_("table column", "id"), 6, right=True),
        pad(p_("table column", "branch"), 10),
        pad(p_("table column", "owner"), 14),
        pad(p_("table column", "state"), 10),
        pad(p_("table column", "host:server"), 22),
        p_("table column", "expires"),
    )
    return "  ".join(names[:2]) + " " + " ".join(names[2:])


SORRY = N_(
    "Something went wrong on my side; nothing was changed that I know of. The team that runs "
    "islandbot has the details in its log."
)


BUSY = N_("islandbot is very busy right now: nothing was done. Try again in a minute.")


def sorry() -> str:
    """A request that failed on our side (a bug), in the current language."""
    return _(SORRY)


def busy() -> str:
    """A request turned away because the bot is too busy, in the current language."""
    return _(BUSY)


# How every answer of ``database_down`` begins in English (what the system tests look for).
DATABASE_DOWN = "islandbot cannot reach its database"

# An island's state in one word, for a digest's counts (``STATE_WORDS`` says more).
SHORT_STATE_WORDS = {
    "requested": N_("starting"),
    "creating": N_("starting"),
    "scheduled": N_("scheduled"),
    "running": N_("running"),
    "ready": N_("ready"),
    "failed": N_("failed"),
    "stopping": N_("stopping"),
    "stopped": N_("stopped"),
}


def short_state_words(state: str) -> str:
    """An island's state in one word (``scheduled``, ``running``), in the current language."""
    words = SHORT_STATE_WORDS.get(state)
    return _(words) if words else state


def database_down(down_for_s: float) -> str:
    """A request turned away because the bot's database does not answer."""
    if down_for_s >= 1:
        return _(
            "islandbot cannot reach its database (for {since} now), so this was not done. Try "
            "again in a minute or two; what it accepted before is kept and carried out once the "
            "database is back.",
            since=format_duration(timedelta(seconds=int(down_for_s))),
        )
    return _(
        "islandbot cannot reach its database, so this was not done. Try again in a minute or "
        "two; what it accepted before is kept and carried out once the database is back."
    )


def button_extend(step: str) -> str:
    return _("Extend {step}", step=step)


def confirm_stop(island_id: int) -> str:
    return _(
        "Stop island {island}? Its pod is deleted and its ports freed.",
        island=island_ref(island_id),
    )


def digest_headline(islands: Sequence[IslandRecord]) -> str:
    """A digest's first line: how many islands are how far (read well from the first island
    on: a digest may be posted with one, the others joining it as they come)."""
    counts: dict[str, int] = {}
    for island in islands:
        word = short_state_words(island.state.value)
        counts[word] = counts.get(word, 0) + 1
    states = ", ".join(
        p_("digest", "{count} {state}", count=n, state=word)
        for word, n in sorted(counts.items(), key=lambda c: -c[1])
    )
    return _("*Islands started here at once*: {states}", states=states)


def digest_line(island: IslandRecord) -> str:
    """One island in a digest."""
    values = {
        "island": island_ref(island.id),
        "branch": escape(island.branch),
        "owner": island.owner_id,
        "state": state_words(island.state.value),
    }
    if island.host_ip and island.state.value == "ready":
        return _(
            "{island} {branch} · <@{owner}> · *{state}* on {host}", host=island.host_ip, **values
        )
    return _("{island} {branch} · <@{owner}> · *{state}*", **values)


DIGEST_FOOTER = N_(
    "Each owner gets their island's ports and buttons in a direct message from islandbot; "
    "`/island status &lt;id&gt;` shows any island."
)


def root_headline(island: IslandRecord) -> str:
    return _(
        "<@{owner}>'s island {island} on *{branch}*: *{state}*",
        owner=island.owner_id,
        island=island_ref(island.id),
        branch=escape(island.branch),
        state=state_words(island.state.value),
    )


def root_fields(
    island: IslandRecord,
    *,
    ports: Mapping[str, int],
    clock: datetime | None,
    now: datetime,
    tz: tzinfo,
    memory: tuple[int, int | None] | None = None,
) -> list[str]:
    """``memory``: its last reading (working set, limit), when there is one."""
    if island.node:
        where = _("{host} (node {node})", host=island.host_ip or "?", node=escape(island.node))
    else:
        where = island.host_ip or _("not yet placed")
    listing = ", ".join(f"{name} {port}" for name, port in ports.items())
    fields = [
        _("*Host*\n{where}", where=where),
        _("*Ports*\n{ports}", ports=listing),
        _("*Clock*\n{clock}", clock=clock_time(clock, tz) if clock else _("real time")),
        _(
            "*Expires*\n{expires} ({when})",
            expires=utc_time(island.expires_at),
            when=relative_time(island.expires_at, now),
        ),
    ]
    if memory is not None and island.state.value in ("running", "ready"):
        fields.append(_("*Memory*\n{memory}", memory=memory_figures(*memory)))
    if island.restarts:
        fields.append(_("*Restarts*\n{restarts}", restarts=island.restarts))
    return fields


def note_line(note: str) -> str:
    return _("Note: {note}", note=escape(note))


def failure_line(reason: str) -> str:
    return _("Failed: {reason}", reason=escape(reason))


def table_row(island: IslandRecord, *, server_port: int | None, now: datetime) -> str:
    where = f"{island.host_ip}:{server_port}" if island.host_ip and server_port else "-"
    return (
        f"{island.id:>6}  {pad(island.branch, 10, cut=True)} "
        f"{pad(island.owner_name, 14, cut=True)} "
        f"{pad(state_name(island.state.value), 10)} {where:<22} "
        f"{relative_time(island.expires_at, now)}"
    )


def table_cut(total: int) -> str:
    return _(
        "Only part of the {total} islands fits here; use `/island list mine` or a branch.",
        total=total,
    )


def home_line(
    island: IslandRecord,
    ports: Mapping[str, int],
    *,
    now: datetime,
    memory: tuple[int, int | None] | None = None,
) -> str:
    """``memory``: its last reading (working set, limit), shown while its server runs."""
    server = ports.get("server-port") or (max(ports.values()) if ports else None)
    values = {
        "island": island_ref(island.id),
        "branch": escape(island.branch),
        "owner": escape(island.owner_name),
        "state": state_words(island.state.value),
        "when": relative_time(island.expires_at, now),
    }
    placed = bool(island.host_ip and server)
    if memory is not None and island.state.value in ("running", "ready"):
        used = memory_use(*memory)
        if placed:
            return _(
                "*{island}* {branch} ({owner}): {state} on {host}:{server}, {memory}, "
                "expires {when}",
                host=island.host_ip,
                server=server,
                memory=used,
                **values,
            )
        return _(
            "*{island}* {branch} ({owner}): {state}, {memory}, expires {when}",
            memory=used,
            **values,
        )
    if placed:
        return _(
            "*{island}* {branch} ({owner}): {state} on {host}:{server}, expires {when}",
            host=island.host_ip,
            server=server,
            **values,
        )
    return _("*{island}* {branch} ({owner}): {state}, expires {when}", **values)


def _branch_capacity(b: BranchCapacity) -> str:
    values = {
        "branch": escape(b.branch),
        "live": b.live_islands,
        "nodes": b.nodes_ready,
        "gib": f"{b.memory_free / 2**30:.1f}",
    }
    if b.warming:
        return _(
            "- *{branch}*: {live} live, {warm} warm ready to hand out at once, {warming} more "
            "starting, {nodes} ready nodes with {gib} GiB of memory free",
            warm=b.warm,
            warming=b.warming,
            **values,
        )
    if b.warm:
        return _(
            "- *{branch}*: {live} live, {warm} warm ready to hand out at once, {nodes} ready "
            "nodes with {gib} GiB of memory free",
            warm=b.warm,
            **values,
        )
    return _(
        "- *{branch}*: {live} live, {nodes} ready nodes with {gib} GiB of memory free", **values
    )


def capacity_lines(report: CapacityReport) -> list[str]:
    p = report.ports
    lines = [
        _(
            "*Capacity*: {live} live islands; {free} of {blocks} port blocks free ({held} held, "
            "{excluded} kept out by other services).",
            live=report.live_islands,
            free=p.free,
            blocks=p.blocks,
            held=p.held,
            excluded=p.excluded,
        )
    ]
    lines.extend(_branch_capacity(b) for b in report.branches)
    if report.cluster_error:
        lines.append(
            _("(The cluster could not be read: {error})", error=escape(report.cluster_error)[:200])
        )
    return lines


def logs_message(tail: LogTail) -> str:
    island = island_ref(tail.island_id)
    if not tail.text:
        if tail.previous:
            return _("Island {island}'s previous run is empty.", island=island)
        return _("Island {island}'s log is empty.", island=island)
    if tail.previous:
        return _(
            "Last {lines} lines of island {island}'s previous run:\n```{text}```",
            lines=tail.lines,
            island=island,
            text=tail.text,
        )
    return _(
        "Last {lines} lines of island {island}'s log:\n```{text}```",
        lines=tail.lines,
        island=island,
        text=tail.text,
    )


def logs_cut(tail: LogTail, shown: int) -> str:
    return _(
        "Island {island}: the last {lines} lines are too long for a message; the last {shown} "
        "are below, all {lines} are in the file I uploaded.",
        island=island_ref(tail.island_id),
        lines=tail.lines,
        shown=shown,
    )


def started_elsewhere(island_id: int, error: str) -> str:
    return _(
        "Island {island} is starting, but I could not post in this channel ({error}); add me "
        "to it to have its islands there. I'll tell you here how it goes.",
        island=island_ref(island_id),
        error=error,
    )


def stopping(island_ids: Sequence[int]) -> str:
    if not island_ids:
        return _("Nothing to stop: you have no live island that is not already stopping.")
    return _("Stopping {islands}.", islands=", ".join(island_ref(i) for i in island_ids))


def already_stopping(island_id: int) -> str:
    return _("Island {island} is already stopping.", island=island_ref(island_id))


def restart_pending(island_id: int) -> str:
    return _("Island {island} is already restarting.", island=island_ref(island_id))


def extended_already(island_id: int, expires_at: datetime) -> str:
    return _(
        "Island {island} was just extended (a double click?); it expires at {expires}.",
        island=island_ref(island_id),
        expires=utc_time(expires_at),
    )


def extended(island_id: int, expires_at: datetime) -> str:
    return _(
        "Island {island} now expires at {expires}.",
        island=island_ref(island_id),
        expires=utc_time(expires_at),
    )


def restarting(island_id: int) -> str:
    return _(
        "Restarting island {island}: same id and ports, a new pod.", island=island_ref(island_id)
    )


def stale_button() -> str:
    return _(
        "That button belongs to a message I no longer understand; use `/island status &lt;id&gt;`."
    )


def list_title(scope: str, branch: str | None = None) -> str:
    """The title of ``/island list``: everyone's (``all``), the caller's (``mine``), or one
    branch's live islands."""
    if scope == "mine":
        return _("Your live islands")
    if scope == "branch" and branch:
        return _("Live {branch} islands", branch=branch)
    return _("Live islands")


def log_file_title(island_id: int, lines: int) -> str:
    """The title of a long log shared as a file in the island's thread."""
    return n_(
        "Island {island} log, last line",
        "Island {island} log, last {count} lines",
        lines,
        island=island_ref(island_id),
    )
