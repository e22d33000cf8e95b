"""Every sentence islandbot shows a person, in one place, so wording and tone stay consistent."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.domain.commands import CommandError, Problem
from bot.domain.durations import format_duration
from bot.domain.lifecycle_rules import Failure, FailureKind, Notice
from bot.domain.records import CapacityReport, ClockRecord, ClockView, IslandRecord, LogTail


def island_ref(island_id: int) -> str:
    return f"#{island_id}"


def quota_exceeded(*, limit: int, island_ids: Sequence[int]) -> str:
    refs = ", ".join(island_ref(i) for i in island_ids)
    return (
        f"You already have {len(island_ids)} live islands ({refs}); the limit is {limit} per "
        f"person. Stop one with `/island stop <id>` and try again."
    )


def ports_exhausted(*, port_range: str, live_islands: int) -> str:
    return (
        f"no free port block in {port_range}: {live_islands} islands live. "
        "Try again when an island has stopped, or ask an admin to widen the port range."
    )


def request_key_taken(*, request_key: str) -> str:
    return f"request {request_key!r} was already used by someone else; nothing was started."


def island_not_found(island_id: int) -> str:
    return f"There is no island {island_ref(island_id)}."


def ports_still_needed(island_id: int, state: str) -> str:
    return (
        f"Island {island_ref(island_id)} is {state}: its ports are freed only once it is "
        "stopped and its pod is gone."
    )


def channel_not_allowed(allowed: Sequence[str]) -> str:
    channels = ", ".join(f"<#{c}>" for c in allowed)
    return f"islandbot works in {channels} only. Run the command there."


def not_allowed(action: str, island_id: int, who: Sequence[str]) -> str:
    people = ", ".join(f"<@{u}>" for u in who)
    return f"Only its owner or an admin may {action} island {island_ref(island_id)}: {people}."


def already_stopped(island_id: int) -> str:
    return f"Island {island_ref(island_id)} is already stopped."


def cannot_restart(island_id: int, state: str) -> str:
    return f"Island {island_ref(island_id)} is {state}; start a new one instead."


def cannot_extend(island_id: int, state: str) -> str:
    return f"Island {island_ref(island_id)} is {state}; there is nothing left to extend."


def extend_too_far(island_id: int, *, max_ttl: timedelta, room: timedelta) -> str:
    return (
        f"Island {island_ref(island_id)} may live at most {format_duration(max_ttl)} from now; "
        f"it can be extended by {format_duration(room)} at most."
    )


def no_logs(island_id: int, state: str) -> str:
    return f"Island {island_ref(island_id)} is {state}: it has no pod to read logs from."


def logs_unavailable(island_id: int, *, previous: bool) -> str:
    which = "its previous run's log" if previous else "its log"
    return (
        f"Could not read {which} for island {island_ref(island_id)} (the server may not have "
        "started yet, or has never restarted). Try again in a moment."
    )


def clock_time(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def clock_request_not_found(request_id: int) -> str:
    return f"There is no clock request {request_id}."


def clock_not_now(island_id: int, state: str) -> str:
    return (
        f"Island {island_ref(island_id)} is {state}: its clock can be moved before its pod is "
        "created or once it is ready."
    )


def clock_out_of_bounds(island_id: int, bound: timedelta) -> str:
    return (
        f"Island {island_ref(island_id)}'s clock may be at most {format_duration(bound)} away "
        "from real time; nothing was changed."
    )


def clock_decide_not_allowed(island_id: int, who: Sequence[str]) -> str:
    people = ", ".join(f"<@{u}>" for u in who)
    return f"Only the owner of island {island_ref(island_id)} or an admin may decide: {people}."


def clock_request_closed(request_id: int, state: str) -> str:
    return f"Clock request {request_id} is already {state}."


def clock_busy(island_id: int) -> str:
    return f"Another clock change of island {island_ref(island_id)} is being applied."


def unknown_branch(branch: str, known: Sequence[str]) -> str:
    return f"There is no branch {branch!r}. Known branches: {', '.join(known)}."


# ---- lifecycle ------------------------------------------------------------------------------


def _explain_unschedulable(message: str, branch: str, memory: str | None) -> str:
    if "Insufficient memory" in message and memory:
        return f"no {branch} node has {memory} free ({message})"
    if "didn't have free ports" in message:
        return f"the island's ports are taken on every {branch} node ({message})"
    if "node affinity/selector" in message and "Insufficient" not in message:
        return f"there is no usable {branch} node ({message})"
    return message


def _waited(d: Mapping[str, Any]) -> str:
    return format_duration(timedelta(seconds=int(d.get("waited_s", 0))))


_FAILURES: dict[FailureKind, Callable[[Mapping[str, Any], int, str], str]] = {
    FailureKind.UNSCHEDULABLE: lambda d, _i, branch: (
        f"could not be scheduled for {_waited(d)}: "
        f"{_explain_unschedulable(str(d.get('message')), branch, d.get('memory'))}"
    ),
    FailureKind.IMAGE_PULL: lambda d, _i, _b: (
        f"its image could not be pulled ({d.get('reason')}: {d.get('message')})"
    ),
    FailureKind.OOM_KILLED: lambda d, i, _b: (
        f"island {island_ref(i)} blew up: OOMKilled"
        + (f" at the {d['limit']} limit" if d.get("limit") else "")
    ),
    FailureKind.CRASHED: lambda d, _i, _b: (
        f"its server exited with code {d.get('exit_code')} ({d.get('reason') or 'Error'})"
    ),
    FailureKind.EVICTED: lambda d, _i, _b: f"evicted by Kubernetes: {d.get('message')}",
    FailureKind.POD_DELETED: lambda _d, _i, _b: "its pod was deleted outside islandbot",
    FailureKind.POD_DELETING: lambda _d, _i, _b: (
        "its pod is being deleted by the cluster (node lost, or deleted by someone)"
    ),
    FailureKind.NOT_READY: lambda d, _i, _b: f"its server did not answer within {_waited(d)}",
    FailureKind.POD_REFUSED: lambda d, _i, _b: f"Kubernetes refused its pod: {d.get('message')}",
    FailureKind.NOT_ANSWERING: lambda d, _i, _b: (
        f"its server stopped answering on its server port ({d.get('probes')} probes failed)"
    ),
}


def failure_text(failure: Failure, *, island_id: int, branch: str) -> str:
    return _FAILURES[failure.kind](failure.detail, island_id, branch)


def _people_notice(kind: Notice, detail: Mapping[str, Any], ref: str) -> str | None:
    """Notices of what a person did (stop, restart, extend, clock changes)."""
    if kind in (Notice.STOP_REQUESTED, Notice.RESTARTING):
        verb = "stopping" if kind == Notice.STOP_REQUESTED else "restarting (same id and ports)"
        return f"<@{detail.get('by')}> is {verb} island {ref}."
    if kind == Notice.CLOCK_SHIFTED:
        approved = detail.get("approved_by")
        by = f"<@{detail.get('by')}>"
        if approved and approved != detail.get("by"):
            by += f" (approved by <@{approved}>)"
        return (
            f"{by} moved island {ref}'s clock {detail.get('from_clock')} -> "
            f"{detail.get('to_clock')} ({detail.get('shift')})."
        )
    if kind == Notice.CLOCK_FAILED:
        return (
            f"Island {ref}'s clock change asked by <@{detail.get('by')}> failed: "
            f"{escape(str(detail.get('error')))}. Its clock was left as it was."
        )
    if kind == Notice.EXTENDED:
        return (
            f"<@{detail.get('by')}> extended island {ref} by {detail.get('added')}: it now "
            f"expires at {_when(detail.get('expires_at'))}."
        )
    return None


def notice_text(
    kind: Notice,
    detail: Mapping[str, Any],
    *,
    island_id: int,
    owner_id: str,
    branch: str,
    ports: Mapping[str, int],
    clock: str | None,
) -> str:
    ref = island_ref(island_id)
    if kind == Notice.READY:
        listing = ", ".join(f"{name} {port}" for name, port in ports.items())
        clock_part = f" Clock: {clock}." if clock else ""
        return (
            f"<@{owner_id}> island {ref} is ready on {detail.get('host')}: {listing}.{clock_part}"
        )
    if kind == Notice.FAILED:
        failure = Failure(FailureKind(str(detail.get("kind"))), detail)
        return (
            f"<@{owner_id}> island {ref} failed: "
            f"{failure_text(failure, island_id=island_id, branch=branch)}. Its pod is kept "
            f"for its logs until you stop it (`/island stop {island_id}`) or it expires."
        )
    if kind == Notice.EXPIRING:
        return (
            f"<@{owner_id}> island {ref} expires at {_when(detail.get('expires_at'))}. Extend "
            f"it with `/island extend {island_id} 4h` to keep it."
        )
    told = _people_notice(kind, detail, ref)
    if told is not None:
        return told
    simple = {
        Notice.SCHEDULED: f"Island {ref} is scheduled on node {detail.get('node')}; "
        "starting its server...",
        Notice.UNSCHEDULABLE: f"Island {ref} is waiting for room: "
        f"{_explain_unschedulable(str(detail.get('message')), branch, detail.get('memory'))}. "
        "It keeps trying for a while.",
        Notice.EXPIRED: f"Island {ref} has expired and is being stopped; its ports go back "
        "to the pool.",
    }
    return simple.get(kind, f"Island {ref} is stopped.")


def status_line(island_id: int, state: str, branch: str) -> str:
    """The one-line state shown on an island's root message."""
    return f"Island {island_ref(island_id)} ({branch}): {state}"


# ---- commands -------------------------------------------------------------------------------

USAGE: dict[str, str] = {
    "start": '/island start <branch> [at="YYYY-MM-DD HH:MM[:SS]"] [ttl=<duration>] '
    "[note=<text>] [set KEY=VALUE ...]",
    "stop": "/island stop <id>|mine",
    "restart": "/island restart <id>",
    "extend": "/island extend <id> <duration>",
    "list": "/island list [mine|all|<branch>]",
    "status": "/island status <id>",
    "logs": "/island logs <id> [lines=N] [previous]",
    "time": '/island time <id> [now|+2d|-90m|"YYYY-MM-DD HH:MM[:SS]"|history]',
    "capacity": "/island capacity",
    "help": "/island help [command]",
}

HELP: dict[str, str] = {
    "start": "Start an island of a branch. `at` sets its clock at start (UTC), `ttl` how long "
    "it lives (default {default_ttl}, at most {max_ttl}), `note` is shown to the team, and "
    "`set` overrides what the branch allows (memory, env...).",
    "stop": "Stop an island (or all of yours with `mine`): its pod is deleted and its ports go "
    "back to the pool. Only its owner or an admin may.",
    "restart": "Delete the island's pod and start a new one with the same id and ports. Owner "
    "or admin.",
    "extend": "Move the island's expiry later by a duration such as `4h` or `2d`. Owner or "
    "admin; at most {max_ttl} from now.",
    "list": "Live islands: everyone's (default), yours, or one branch's.",
    "status": "One island in detail: state, node, ports, clock, expiry.",
    "logs": "The last lines (default 100) of the island's server log; `previous` for the run "
    "before its last restart.",
    "time": "Show the island's clock, move it (`+2d`, `-90m`, a time in {timezone}, or `now` "
    "for real time), or list its changes. The owner (or an admin) moves it at once; anyone "
    "else asks, and the owner approves or rejects. Everyone in the channel sees it.",
    "capacity": "Free port blocks, live islands and room on the nodes, per branch.",
    "help": "This help, or one command's.",
}


def help_text(
    verb: str | None, *, default_ttl: timedelta, max_ttl: timedelta, timezone: str = "UTC"
) -> str:
    values = {
        "default_ttl": format_duration(default_ttl),
        "max_ttl": format_duration(max_ttl),
        "timezone": timezone,
    }
    if verb is not None:
        return f"`{USAGE[verb]}`\n{HELP[verb].format(**values)}"
    lines = [f"`{USAGE[v]}`  {HELP[v].format(**values)}" for v in USAGE]
    return "*islandbot* gives you your own game-server island.\n" + "\n".join(lines)


def _usage(verb: str | None) -> str:
    if verb is None:
        return "Usage: `/island <command>`; commands: " + ", ".join(USAGE) + ". Try `/island help`."
    return f"Usage: `{USAGE[verb]}`"


def command_error(error: CommandError) -> str:
    """A short answer to bad input: what is wrong, then the usage line that helps."""
    d = error.detail
    problem = {
        Problem.EMPTY: "Tell me what to do.",
        Problem.TOO_LONG: f"That command is {d.get('length')} characters long; the limit is "
        f"{d.get('limit')}.",
        Problem.CONTROL_CHARACTERS: "That command contains control characters.",
        Problem.UNBALANCED_QUOTES: "A quote is opened and never closed.",
        Problem.UNKNOWN_VERB: f"I don't know the command {escape(str(d.get('given')))!r}."
        + _did_you_mean(str(d.get("given")), d.get("verbs", ())),
        Problem.MISSING_ARGUMENT: f"Missing: {d.get('what')}.",
        Problem.EXTRA_ARGUMENTS: f"Unexpected: {escape(str(d.get('extra')))[:80]!r}.",
        Problem.BAD_ID: f"{escape(str(d.get('given')))!r} is not an island id; ids look like "
        "`269` or `#269`.",
        Problem.BAD_DURATION: f"{escape(str(d.get('given')))!r} is not a duration; use a number "
        "and a unit (s, m, h, d, w) such as `90m`, `4h` or `2d`.",
        Problem.DURATION_TOO_LONG: f"{escape(str(d.get('given')))} is longer than the "
        f"{_duration(d.get('limit'))} allowed.",
        Problem.UNKNOWN_BRANCH: unknown_branch(str(d.get("given")), d.get("branches", ())),
        Problem.UNKNOWN_OPTION: f"{escape(str(d.get('given')))!r} is not an option here.",
        Problem.REPEATED_OPTION: f"{d.get('option')} is given more than once.",
        Problem.BAD_TIME: f"{escape(str(d.get('given')))!r} is not a time; use "
        '`"YYYY-MM-DD HH:MM"` or `"YYYY-MM-DD HH:MM:SS"` (UTC, years 1971-2099).',
        Problem.NOTE_TOO_LONG: f"The note is longer than {d.get('limit')} characters.",
        Problem.BAD_SETTING: f"{escape(str(d.get('given')))!r} is not KEY=VALUE.",
        Problem.BAD_LINES: f"{escape(str(d.get('given')))!r}: lines must be a whole number from "
        f"1 to {d.get('limit')}.",
        Problem.BAD_WHEN: f"{escape(str(d.get('given')))!r} is not a clock change: use `now`, a "
        'shift such as `+2d`, `-90m` or `+1d12h`, or a time "YYYY-MM-DD HH:MM[:SS]", or '
        "`history`.",
    }[error.problem]
    return f"{problem} {_usage(error.verb)}"


def _did_you_mean(given: str, verbs: Sequence[str]) -> str:
    guess = difflib.get_close_matches(given.lower(), list(verbs), n=1)
    return f" Did you mean `{guess[0]}`?" if guess else ""


def _duration(value: Any) -> str:
    return format_duration(value) if isinstance(value, timedelta) else str(value)


def escape(text: str) -> str:
    """Make user-supplied text inert in Slack mrkdwn (no links, mentions or @channel)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- Slack layouts ----------------------------------------------------------------------------

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


def _when(at: object) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if isinstance(at, datetime) else str(at)


def button_extend(step: str) -> str:
    return f"Extend {step}"


def confirm_stop(island_id: int) -> str:
    return f"Stop island {island_ref(island_id)}? Its pod is deleted and its ports freed."


def _ago_or_in(when: datetime, now: datetime) -> str:
    delta = when - now
    if delta.total_seconds() >= 0:
        return f"in {format_duration(timedelta(seconds=int(delta.total_seconds())))}"
    return f"{format_duration(timedelta(seconds=int(-delta.total_seconds())))} ago"


_STATE_WORDS = {
    "requested": "starting",
    "creating": "starting",
    "scheduled": "scheduled, starting its server",
    "running": "running, waiting for its server",
    "ready": "ready",
    "failed": "failed",
    "stopping": "stopping",
    "stopped": "stopped",
}


def root_headline(island: IslandRecord) -> str:
    state = _STATE_WORDS.get(island.state.value, island.state.value)
    return (
        f"<@{island.owner_id}>'s island {island_ref(island.id)} on *{escape(island.branch)}*: "
        f"*{state}*"
    )


def root_fields(
    island: IslandRecord, *, ports: Mapping[str, int], clock: datetime | None, now: datetime
) -> list[str]:
    where = island.host_ip or "not yet placed"
    if island.node:
        where = f"{island.host_ip or '?'} (node {escape(island.node)})"
    listing = ", ".join(f"{name} {port}" for name, port in ports.items())
    expires = _when(island.expires_at)
    fields = [
        f"*Host*\n{where}",
        f"*Ports*\n{listing}",
        f"*Clock*\n{clock.strftime('%Y-%m-%d %H:%M:%S') if clock else 'real time'}",
        f"*Expires*\n{expires} ({_ago_or_in(island.expires_at, now)})",
    ]
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
        f"{island.state.value:<10} {where:<22} {_ago_or_in(island.expires_at, now)}"
    )


def table_cut(total: int) -> str:
    return f"Only part of the {total} islands fits here; use `/island list mine` or a branch."


def home_line(island: IslandRecord, ports: Mapping[str, int], *, now: datetime) -> str:
    server = ports.get("server-port") or (max(ports.values()) if ports else None)
    where = f" on {island.host_ip}:{server}" if island.host_ip and server else ""
    return (
        f"*{island_ref(island.id)}* {escape(island.branch)} ({escape(island.owner_name)}): "
        f"{_STATE_WORDS.get(island.state.value, island.state.value)}{where}, expires "
        f"{_ago_or_in(island.expires_at, now)}"
    )


def capacity_lines(report: CapacityReport) -> list[str]:
    p = report.ports
    lines = [
        f"*Capacity*: {report.live_islands} live islands; {p.free} of {p.blocks} port blocks "
        f"free ({p.held} held, {p.excluded} kept out by other services)."
    ]
    for b in report.branches:
        gib = b.memory_free / 2**30
        lines.append(
            f"- *{escape(b.branch)}*: {b.live_islands} live, {b.nodes_ready} ready nodes with "
            f"{gib:.1f} GiB of memory free"
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
        f"{_when(expires_at)}."
    )


def extended(island_id: int, expires_at: datetime) -> str:
    return f"Island {island_ref(island_id)} now expires at {_when(expires_at)}."


def restarting(island_id: int) -> str:
    return f"Restarting island {island_ref(island_id)}: same id and ports, a new pod."


def stale_button() -> str:
    return "That button belongs to a message I no longer understand; use `/island status <id>`."


# ---- island clocks ------------------------------------------------------------------------------

BUTTON_APPROVE = "Approve"
BUTTON_REJECT = "Reject"


def clock_view(view: ClockView, tz: tzinfo, now: datetime) -> str:
    ref = island_ref(view.island_id)
    if view.offset_s == 0:
        head = f"Island {ref}'s clock runs on real time: {clock_time(now, tz)}."
    else:
        shift = format_duration(timedelta(seconds=abs(view.offset_s)))
        way = "ahead of" if view.offset_s > 0 else "behind"
        head = f"Island {ref}'s clock reads {clock_time(view.clock, tz)}, {shift} {way} real time."
    if view.last is not None:
        head += (
            f" Set by <@{view.last.requested_by}> at "
            f"{clock_time(view.last.applied_at or view.last.requested_at, tz)}."
        )
    return head


def clock_history(island_id: int, records: Sequence[ClockRecord], tz: tzinfo) -> str:
    if not records:
        return f"Island {island_ref(island_id)}'s clock has never been changed."
    lines = [f"Clock changes of island {island_ref(island_id)}, newest first:"]
    for r in records:
        decided = f", decided by <@{r.decided_by}>" if r.decided_by else ""
        why = f" ({escape(r.failure_reason[:120])})" if r.failure_reason else ""
        lines.append(
            f"- {clock_time(r.requested_at, tz)} <@{r.requested_by}>: "
            f"{_offset(r.from_offset_s)} -> {_offset(r.to_offset_s)}, {r.state}{decided}{why}"
        )
    return "\n".join(lines)


def _offset(seconds: int) -> str:
    if seconds == 0:
        return "real time"
    sign = "+" if seconds > 0 else "-"
    return sign + format_duration(timedelta(seconds=abs(seconds)))


def clock_request(r: ClockRecord, owner_id: str, tz: tzinfo, now: datetime) -> str:
    target = (
        clock_time(r.target_at, tz)
        if r.target_at is not None
        else ("real time" if r.kind == "now" else _offset(r.to_offset_s - r.from_offset_s))
    )
    head = (
        f"<@{owner_id}>: <@{r.requested_by}> asks to move island {island_ref(r.island_id)}'s "
        f"clock to {target} (now {clock_time(now + timedelta(seconds=r.from_offset_s), tz)})."
    )
    if r.state == "pending":
        return head + f" The request expires at {clock_time(r.expires_at, tz)}."
    outcome = {
        "applying": f"approved by <@{r.decided_by}>, being applied",
        "applied": f"approved by <@{r.decided_by}> and applied",
        "rejected": f"rejected by <@{r.decided_by}>",
        "expired": "expired without a decision",
        "superseded": "superseded by a newer request",
        "failed": f"approved by <@{r.decided_by}> but failed: {escape(r.failure_reason or '')}",
    }.get(r.state, r.state)
    return f"{head} *{outcome[:1].upper() + outcome[1:]}.*"


def clock_requested(island_id: int, owner_id: str) -> str:
    return (
        f"Your request to move island {island_ref(island_id)}'s clock is in the channel; "
        f"<@{owner_id}> (or an admin) decides."
    )


def clock_backwards(island_id: int) -> str:
    return (
        f"Note: island {island_ref(island_id)}'s clock goes backwards; timers that wait on the "
        "wall clock stall until it catches up."
    )


def clock_applied(island_id: int, to_offset_s: int) -> str:
    return f"Island {island_ref(island_id)}'s clock is now at {_offset(to_offset_s)}."


def clock_content_refused(content: str) -> str:
    return f"refusing to write {content!r} into the clock file"


CLOCK_POD_GONE = "the island's pod is gone"


def clock_file_env_missing(variable: str) -> str:
    return f"the server container has no {variable}"


def clock_write_failed(exit_code: int, stderr: str) -> str:
    return f"writing the clock file failed (exit {exit_code}): {stderr}"


def clock_not_moved(seen_s: float | None, expected_s: int) -> str:
    reads = f"it reads {round(seen_s)}s" if seen_s is not None else "it could not be read"
    return f"the island's clock did not move as expected: {reads} from real time, not {expected_s}s"


def clock_failed(island_id: int, reason: str) -> str:
    return f"Island {island_ref(island_id)}'s clock was not changed: {escape(reason)[:300]}"


# ---- the embedded demo's console ---------------------------------------------------------------

DEMO_HELP = """\
The demo's console: you are in #islands as the current user (alice at first).
  /island start dev            any /island command (`/island help` lists them)
  @bob /island start weekly    as bob; bob stays the current user
  @carol                       switch to carol
  press 4                      press the button shown as [b4]
  home                         your home page (your islands and the team's)
  wait [SECONDS]               until no island is starting or stopping (default 120 s)
  sleep SECONDS                pause (for scripts)
  quit                         stop the demo (Ctrl-D too)"""


def demo_banner(*, database: str, api_url: str, kubeconfig: str, namespace: str) -> str:
    return (
        f"islandbot demo: database {database}; HTTP API at {api_url} (try {api_url}/healthz)\n"
        f"The cluster: `KUBECONFIG={kubeconfig} kubectl get pods -n {namespace} -o wide`\n"
        "Type `help` for the console's commands, `/island help` for the bot's."
    )


def demo_unknown_line(line: str) -> str:
    return f"Not a console command: `{line[:80]}`. Type `help`."


def demo_bad_user(word: str) -> str:
    return (
        f"`{word[:50]}` is not a user name: `@` then 1-40 lowercase letters, digits, `.`, `_` "
        "or `-`, like `@bob`."
    )


def demo_bad_seconds(verb: str, text: str) -> str:
    return f"`{verb} {text[:40]}`: expected a number of seconds from 0 to 600."


def demo_no_button(which: str) -> str:
    return (
        f"There is no button `{which[:20]}` to press (any more): press takes the number shown "
        "as [b<number>] with a message, like `press 4`."
    )


def demo_not_settled(seconds: float, islands: list[int]) -> str:
    waiting = ", ".join(island_ref(i) for i in islands[:10]) or "notices still queued"
    return f"Still not settled after {seconds:g} s: {waiting}."


# ---- the HTTP API -------------------------------------------------------------------------------

API_BAD_ISLAND_ID = "no such island: ids are positive whole numbers"
API_BAD_QUERY = "bad query"
API_DATABASE_DOWN = "the database is not available; try again"
API_BODY_UNREADABLE = "could not read the body"
API_NOT_JSON = "the body is not JSON"
API_NOT_JSON_PROBLEM = "body: expected a JSON object"
API_INVALID_REGISTRATION = "the registration is not valid"


def api_body_too_big(limit: int) -> str:
    return f"the body may be {limit} bytes at most"


API_READ_UNAUTHORIZED = (
    "the registry needs `Authorization: Bearer <token>` with the ISLANDBOT_API_READ_TOKEN "
    "this bot was given"
)
REGISTRATION_UNAUTHORIZED = (
    "missing or wrong registration token: send `Authorization: Bearer <token>` with the token "
    "from the island's ISLANDBOT_REGISTER_TOKEN"
)


def registration_stopped(island_id: int, state: str) -> str:
    return f"island {island_ref(island_id)} is {state}: it cannot register any more"
