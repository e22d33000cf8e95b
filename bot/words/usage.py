"""The ``/island`` command's usage lines, help, and answers to bad input."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import UTC, timedelta

from bot.domain.commands import CommandError, Problem
from bot.domain.durations import format_duration
from bot.words import refusals
from bot.words.formatting import duration_text, escape, zone_name

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
    "board": "/island board",
    "pool": "/island pool [<branch>] | pool <branch> size=<N>|default | pool refresh <branch>",
    "help": "/island help [command]",
}


HELP: dict[str, str] = {
    "start": "Start an island of a branch. `at` sets its clock at start (in {timezone}), `ttl` how "
    "long it lives (default {default_ttl}, at most {max_ttl}), `note` is shown to the team, and "
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
    "board": "A link, for you alone, to the team board in your browser: every island, the "
    "nodes' memory, clock requests waiting, each island's history, log and memory. It updates "
    "itself live.",
    "pool": "The warm pools: islands started ahead, handed out at once by `/island start` "
    "(without `set`). Shows each branch's pool (ready, starting, size, claims and misses "
    "today). Admins set a pool's size (`default`: the deployment's) and renew a branch's "
    "warm islands after its code changed (`refresh`).",
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
    zone = zone_name(d.get("tz", UTC))  # typed times are in the team's zone
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
        f"{duration_text(d.get('limit'))} allowed.",
        Problem.UNKNOWN_BRANCH: refusals.unknown_branch(str(d.get("given")), d.get("branches", ())),
        Problem.UNKNOWN_OPTION: f"{escape(str(d.get('given')))!r} is not an option here.",
        Problem.REPEATED_OPTION: f"{d.get('option')} is given more than once.",
        Problem.BAD_TIME: f"{escape(str(d.get('given')))!r} is not a time; use "
        f'`"YYYY-MM-DD HH:MM"` or `"YYYY-MM-DD HH:MM:SS"` (in {zone}, years 1971-2099).',
        Problem.NOTE_TOO_LONG: f"The note is longer than {d.get('limit')} characters.",
        Problem.BAD_SETTING: f"{escape(str(d.get('given')))!r} is not KEY=VALUE.",
        Problem.BAD_LINES: f"{escape(str(d.get('given')))!r}: lines must be a whole number from "
        f"1 to {d.get('limit')}.",
        Problem.BAD_POOL_SIZE: f"{escape(str(d.get('given')))!r} is not a pool size: use a "
        "whole number such as `size=3`, or `size=default`.",
        Problem.BAD_WHEN: f"{escape(str(d.get('given')))!r} is not a clock change: use `now`, a "
        'shift such as `+2d`, `-90m` or `+1d12h`, or a time "YYYY-MM-DD HH:MM[:SS]" in '
        f"{zone}, or `history`.",
    }[error.problem]
    return f"{problem} {_usage(error.verb)}"


def _did_you_mean(given: str, verbs: Sequence[str]) -> str:
    guess = difflib.get_close_matches(given.lower(), list(verbs), n=1)
    return f" Did you mean `{guess[0]}`?" if guess else ""
