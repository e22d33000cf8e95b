"""The ``/island`` command's usage lines, help, and answers to bad input.

The usage lines are the command's grammar, what people type: the same in every language. The
help and the answers to bad input explain that grammar in the reader's language."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta
from typing import Any

from bot.domain.commands import CommandError, Problem
from bot.words import refusals
from bot.words.catalogue import N_, _, p_
from bot.words.formatting import duration_text, escape, format_duration, zone_name

USAGE: dict[str, str] = {  # the grammar: never translated
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


HELP: dict[str, str] = {  # translated where shown: _(HELP[verb], ...)
    "start": N_(
        "Start an island of a branch. `at` sets its clock at start (in {timezone}), `ttl` how "
        "long it lives (default {default_ttl}, at most {max_ttl}), `note` is shown to the team, "
        "and `set` overrides what the branch allows (memory, env...)."
    ),
    "stop": N_(
        "Stop an island (or all of yours with `mine`): its pod is deleted and its ports go "
        "back to the pool. Only its owner or an admin may."
    ),
    "restart": N_(
        "Delete the island's pod and start a new one with the same id and ports. Owner or admin."
    ),
    "extend": N_(
        "Move the island's expiry later by a duration such as `4h` or `2d`. Owner or "
        "admin; at most {max_ttl} from now."
    ),
    "list": N_("Live islands: everyone's (default), yours, or one branch's."),
    "status": N_("One island in detail: state, node, ports, clock, expiry."),
    "logs": N_(
        "The last lines (default 100) of the island's server log; `previous` for the run "
        "before its last restart."
    ),
    "time": N_(
        "Show the island's clock, move it (`+2d`, `-90m`, a time in {timezone}, or `now` "
        "for real time), or list its changes. The owner (or an admin) moves it at once; anyone "
        "else asks, and the owner approves or rejects. Everyone in the channel sees it."
    ),
    "capacity": N_("Free port blocks, live islands and room on the nodes, per branch."),
    "board": N_(
        "A link, for you alone, to the team board in your browser: every island, the "
        "nodes' memory, clock requests waiting, each island's history, log and memory. It "
        "updates itself live."
    ),
    "pool": N_(
        "The warm pools: islands started ahead, handed out at once by `/island start` "
        "(without `set`). Shows each branch's pool (ready, starting, size, claims and misses "
        "today). Admins set a pool's size (`default`: the deployment's) and renew a branch's "
        "warm islands after its code changed (`refresh`)."
    ),
    "help": N_("This help, or one command's."),
}


def help_text(
    verb: str | None, *, default_ttl: timedelta, max_ttl: timedelta, timezone: str = "UTC"
) -> str:
    values = {
        "default_ttl": format_duration(default_ttl),
        "max_ttl": format_duration(max_ttl),
        "timezone": timezone,
    }
    if verb is not None:  # the grammar's <branch> escaped, as any text with < in a message
        return f"`{escape(USAGE[verb])}`\n{_(HELP[verb], **values)}"
    lines = [f"`{escape(USAGE[v])}`  {_(HELP[v], **values)}" for v in USAGE]
    return _("*islandbot* gives you your own game-server island.") + "\n" + "\n".join(lines)


def _usage(verb: str | None) -> str:
    if verb is None:
        return _(
            "Usage: `/island &lt;command&gt;`; commands: {commands}. Try `/island help`.",
            commands=", ".join(USAGE),
        )
    return _("Usage: `{usage}`", usage=escape(USAGE[verb]))


def _what(what: object) -> str:
    """The missing part of a command, as ``bot.domain.commands`` names it (grammar words such
    as ``KEY=VALUE`` stay as they are)."""
    words = {
        "branch": p_("missing argument", "branch"),
        "island id": p_("missing argument", "island id"),
        "island id or 'mine'": p_("missing argument", "island id or 'mine'"),
        "duration": p_("missing argument", "duration"),
        "scope": p_("missing argument", "scope"),
        "command": p_("missing argument", "command"),
    }
    return words.get(str(what), str(what))


def _given(d: Mapping[str, Any]) -> str:
    """What was typed, made inert and quoted as Python shows it (``'4x'``)."""
    return repr(escape(str(d.get("given"))))


def _problem(problem: Problem, d: Mapping[str, Any]) -> str:  # noqa: PLR0911, PLR0912 - a case each
    zone = zone_name(d.get("tz", UTC))  # typed times are in the team's zone
    if problem is Problem.EMPTY:
        return _("Tell me what to do.")
    if problem is Problem.TOO_LONG:
        return _(
            "That command is {length} characters long; the limit is {limit}.",
            length=d.get("length"),
            limit=d.get("limit"),
        )
    if problem is Problem.CONTROL_CHARACTERS:
        return _("That command contains control characters.")
    if problem is Problem.UNBALANCED_QUOTES:
        return _("A quote is opened and never closed.")
    if problem is Problem.UNKNOWN_VERB:
        guess = _did_you_mean(str(d.get("given")), d.get("verbs", ()))
        if guess:
            return _(
                "I don't know the command {command}. Did you mean `{guess}`?",
                command=_given(d),
                guess=guess,
            )
        return _("I don't know the command {command}.", command=_given(d))
    if problem is Problem.MISSING_ARGUMENT:
        return _("Missing: {what}.", what=_what(d.get("what")))
    if problem is Problem.EXTRA_ARGUMENTS:
        return _("Unexpected: {extra}.", extra=repr(escape(str(d.get("extra")))[:80]))
    if problem is Problem.BAD_ID:
        return _("{given} is not an island id; ids look like `269` or `#269`.", given=_given(d))
    if problem is Problem.BAD_DURATION:
        return _(
            "{given} is not a duration; use a number and a unit (s, m, h, d, w) such as `90m`, "
            "`4h` or `2d`.",
            given=_given(d),
        )
    if problem is Problem.DURATION_TOO_LONG:
        return _(
            "{given} is longer than the {limit} allowed.",
            given=escape(str(d.get("given"))),
            limit=duration_text(d.get("limit")),
        )
    if problem is Problem.UNKNOWN_BRANCH:
        return refusals.unknown_branch(str(d.get("given")), d.get("branches", ()))
    if problem is Problem.UNKNOWN_OPTION:
        return _("{given} is not an option here.", given=_given(d))
    if problem is Problem.REPEATED_OPTION:
        return _("{option} is given more than once.", option=d.get("option"))
    if problem is Problem.BAD_TIME:
        return _(
            '{given} is not a time; use `"YYYY-MM-DD HH:MM"` or `"YYYY-MM-DD HH:MM:SS"` (in '
            "{zone}, years 1971-2099).",
            given=_given(d),
            zone=zone,
        )
    if problem is Problem.NOTE_TOO_LONG:
        return _("The note is longer than {limit} characters.", limit=d.get("limit"))
    if problem is Problem.BAD_SETTING:
        return _("{given} is not KEY=VALUE.", given=_given(d))
    if problem is Problem.BAD_LINES:
        return _(
            "{given}: lines must be a whole number from 1 to {limit}.",
            given=_given(d),
            limit=d.get("limit"),
        )
    if problem is Problem.BAD_POOL_SIZE:
        return _(
            "{given} is not a pool size: use a whole number such as `size=3`, or `size=default`.",
            given=_given(d),
        )
    if problem is Problem.BAD_WHEN:
        return _(
            "{given} is not a clock change: use `now`, a shift such as `+2d`, `-90m` or "
            '`+1d12h`, or a time "YYYY-MM-DD HH:MM[:SS]" in {zone}, or `history`.',
            given=_given(d),
            zone=zone,
        )
    raise KeyError(problem)  # every problem has its words above


def command_error(error: CommandError) -> str:
    """A short answer to bad input: what is wrong, then the usage line that helps."""
    return _(
        "{problem} {usage}", problem=_problem(error.problem, error.detail), usage=_usage(error.verb)
    )


def _did_you_mean(given: str, verbs: Sequence[str]) -> str | None:
    guess = difflib.get_close_matches(given.lower(), list(verbs), n=1)
    return guess[0] if guess else None
