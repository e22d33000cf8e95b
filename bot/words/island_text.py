"""What the bot shows and answers about islands: root messages, tables, the home page, replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo

from bot.domain.durations import format_duration
from bot.domain.records import CapacityReport, IslandRecord, LogTail
from bot.words.formatting import (
    STATE_WORDS,
    clock_time,
    escape,
    island_ref,
    memory_use,
    relative_time,
    utc_time,
)

BUTTON_STOP = "Stop"


BUTTON_KEEP = "Keep it"


BUTTON_LOGS = "Logs"


HOME_MINE = "Your islands"


HOME_TEAM = "The team's islands"


NO_ISLANDS = "No live islands."


NO_ISLANDS_OF_YOURS = "You have no live island. Start one with `/island start <branch>`."


TABLE_HEADER = f"{'id':>6}  {'branch':<10} {'owner':<14} {'state':<10} {'host:server':<22} expires"


SORRY = (
    "Something went wrong on my side; nothing was changed that I know of. The team that runs "
    "islandbot has the details in its log."
)


BUSY = "islandbot is very busy right now: nothing was done. Try again in a minute."


DATABASE_DOWN = "islandbot cannot reach its database"


def database_down(down_for_s: float) -> str:
    """A request turned away because the bot's database does not answer."""
    since = format_duration(timedelta(seconds=int(down_for_s)))
    return (
        f"{DATABASE_DOWN}{f' (for {since} now)' if down_for_s >= 1 else ''}, so this was not "
        "done. Try again in a minute or two; what it accepted before is kept and carried out "
        "once the database is back."
    )


def button_extend(step: str) -> str:
    return f"Extend {step}"


def confirm_stop(island_id: int) -> str:
    return f"Stop island {island_ref(island_id)}? Its pod is deleted and its ports freed."


def digest_headline(islands: Sequence[IslandRecord]) -> str:
    """A digest's first line: how many islands are how far (read well from the first island
    on: a digest may be posted with one, the others joining it as they come)."""
    counts: dict[str, int] = {}
    for island in islands:
        word = STATE_WORDS.get(island.state.value, island.state.value).split(",")[0]
        counts[word] = counts.get(word, 0) + 1
    states = ", ".join(f"{n} {word}" for word, n in sorted(counts.items(), key=lambda c: -c[1]))
    return f"*Islands started here at once*: {states}"


def digest_line(island: IslandRecord) -> str:
    """One island in a digest."""
    state = STATE_WORDS.get(island.state.value, island.state.value)
    where = f" on {island.host_ip}" if island.host_ip and island.state.value == "ready" else ""
    return (
        f"{island_ref(island.id)} {escape(island.branch)} · <@{island.owner_id}> · *{state}*{where}"
    )


DIGEST_FOOTER = (
    "Each owner gets their island's ports and buttons in a direct message from islandbot; "
    "`/island status <id>` shows any island."
)


def root_headline(island: IslandRecord) -> str:
    state = STATE_WORDS.get(island.state.value, island.state.value)
    return (
        f"<@{island.owner_id}>'s island {island_ref(island.id)} on *{escape(island.branch)}*: "
        f"*{state}*"
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
    where = island.host_ip or "not yet placed"
    if island.node:
        where = f"{island.host_ip or '?'} (node {escape(island.node)})"
    listing = ", ".join(f"{name} {port}" for name, port in ports.items())
    expires = utc_time(island.expires_at)
    fields = [
        f"*Host*\n{where}",
        f"*Ports*\n{listing}",
        f"*Clock*\n{clock_time(clock, tz) if clock else 'real time'}",
        f"*Expires*\n{expires} ({relative_time(island.expires_at, now)})",
    ]
    if memory is not None and island.state.value in ("running", "ready"):
        fields.append(f"*Memory*\n{memory_use(*memory).removeprefix('memory ')}")
    if island.restarts:
        fields.append(f"*Restarts*\n{island.restarts}")
    return fields


def note_line(note: str) -> str:
    return f"Note: {escape(note)}"


def failure_line(reason: str) -> str:
    return f"Failed: {escape(reason)}"


def table_row(island: IslandRecord, *, server_port: int | None, now: datetime) -> str:
    where = f"{island.host_ip}:{server_port}" if island.host_ip and server_port else "-"
    return (
        f"{island.id:>6}  {island.branch[:10]:<10} {island.owner_name[:14]:<14} "
        f"{island.state.value:<10} {where:<22} {relative_time(island.expires_at, now)}"
    )


def table_cut(total: int) -> str:
    return f"Only part of the {total} islands fits here; use `/island list mine` or a branch."


def home_line(
    island: IslandRecord,
    ports: Mapping[str, int],
    *,
    now: datetime,
    memory: tuple[int, int | None] | None = None,
) -> str:
    """``memory``: its last reading (working set, limit), shown while its server runs."""
    server = ports.get("server-port") or (max(ports.values()) if ports else None)
    where = f" on {island.host_ip}:{server}" if island.host_ip and server else ""
    used = (
        f", {memory_use(*memory)}"
        if memory is not None and island.state.value in ("running", "ready")
        else ""
    )
    return (
        f"*{island_ref(island.id)}* {escape(island.branch)} ({escape(island.owner_name)}): "
        f"{STATE_WORDS.get(island.state.value, island.state.value)}{where}{used}, expires "
        f"{relative_time(island.expires_at, now)}"
    )


def capacity_lines(report: CapacityReport) -> list[str]:
    p = report.ports
    lines = [
        f"*Capacity*: {report.live_islands} live islands; {p.free} of {p.blocks} port blocks "
        f"free ({p.held} held, {p.excluded} kept out by other services)."
    ]
    for b in report.branches:
        gib = b.memory_free / 2**30
        warm = ""
        if b.warm or b.warming:
            starting = f", {b.warming} more starting" if b.warming else ""
            warm = f", {b.warm} warm ready to hand out at once{starting}"
        lines.append(
            f"- *{escape(b.branch)}*: {b.live_islands} live{warm}, {b.nodes_ready} ready nodes "
            f"with {gib:.1f} GiB of memory free"
        )
    if report.cluster_error:
        lines.append(f"(The cluster could not be read: {escape(report.cluster_error)[:200]})")
    return lines


def logs_message(tail: LogTail) -> str:
    which = "previous run" if tail.previous else "log"
    if not tail.text:
        return f"Island {island_ref(tail.island_id)}'s {which} is empty."
    return (
        f"Last {tail.lines} lines of island {island_ref(tail.island_id)}'s {which}:\n"
        f"```{tail.text}```"
    )


def logs_cut(tail: LogTail, shown: int) -> str:
    return (
        f"Island {island_ref(tail.island_id)}: the last {tail.lines} lines are too long for a "
        f"message; the last {shown} are below, all {tail.lines} are in the file I uploaded."
    )


def started_elsewhere(island_id: int, error: str) -> str:
    return (
        f"Island {island_ref(island_id)} is starting, but I could not post in this channel "
        f"({error}); invite me with `/invite @islandbot`. I'll tell you here how it goes."
    )


def stopping(island_ids: Sequence[int]) -> str:
    if not island_ids:
        return "Nothing to stop: you have no live island that is not already stopping."
    return "Stopping " + ", ".join(island_ref(i) for i in island_ids) + "."


def already_stopping(island_id: int) -> str:
    return f"Island {island_ref(island_id)} is already stopping."


def restart_pending(island_id: int) -> str:
    return f"Island {island_ref(island_id)} is already restarting."


def extended_already(island_id: int, expires_at: datetime) -> str:
    return (
        f"Island {island_ref(island_id)} was just extended (a double click?); it expires at "
        f"{utc_time(expires_at)}."
    )


def extended(island_id: int, expires_at: datetime) -> str:
    return f"Island {island_ref(island_id)} now expires at {utc_time(expires_at)}."


def restarting(island_id: int) -> str:
    return f"Restarting island {island_ref(island_id)}: same id and ports, a new pod."


def stale_button() -> str:
    return "That button belongs to a message I no longer understand; use `/island status <id>`."
