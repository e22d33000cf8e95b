"""The /island command parser: every form, every refusal, and a fuzzer that finds no crash."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.commands import (
    VERBS,
    Capacity,
    CommandError,
    Extend,
    Help,
    ListIslands,
    ListScope,
    Logs,
    ParseContext,
    Problem,
    Restart,
    Start,
    Status,
    Stop,
    parse_command,
)
from bot.words import usage

CTX = ParseContext(branches=("dev", "weekly"), max_ttl=timedelta(days=7))


def parse(text: str) -> object:
    return parse_command(text, CTX)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start dev", Start("dev")),
        ("  START   weekly ", Start("weekly")),
        (
            'start dev at="2027-01-02 03:04" ttl=90m note="smoke test of 1.2" set memory=3Gi '
            "env.LOG_LEVEL=debug",
            Start(
                "dev",
                at=datetime(2027, 1, 2, 3, 4, tzinfo=UTC),
                ttl=timedelta(minutes=90),
                note="smoke test of 1.2",
                overrides=(("memory", "3Gi"), ("env.LOG_LEVEL", "debug")),
            ),
        ),
        (
            "start dev at=\u201c2027-01-02 03:04:05\u201d",
            Start("dev", at=datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ),
        ("start dev note='caf\u00e9 \U0001f3dd'", Start("dev", note="caf\u00e9 \U0001f3dd")),
        ("start dev note=", Start("dev")),
        ("stop 269", Stop(269)),
        ("stop #269", Stop(269)),
        ("stop mine", Stop(None)),
        ("restart 7", Restart(7)),
        ("extend #12 2d", Extend(12, timedelta(days=2))),
        ("extend 12 1d12h", Extend(12, timedelta(hours=36))),
        ("list", ListIslands()),
        ("list mine", ListIslands(ListScope.MINE)),
        ("list ALL", ListIslands(ListScope.ALL)),
        ("list weekly", ListIslands(ListScope.BRANCH, "weekly")),
        ("status 3", Status(3)),
        ("logs 3", Logs(3)),
        ("logs 3 lines=20 previous", Logs(3, 20, True)),
        ("logs #3 previous lines=5000", Logs(3, 5000, True)),
        ("capacity", Capacity()),
        ("help", Help()),
        ("help extend", Help("extend")),
    ],
)
def test_commands_parse(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem", "verb"),
    [
        ("", Problem.EMPTY, None),
        ("   ", Problem.EMPTY, None),
        ("x" * 2001, Problem.TOO_LONG, None),
        ("start dev\x00", Problem.CONTROL_CHARACTERS, None),
        ('start dev note="unfinished', Problem.UNBALANCED_QUOTES, None),
        ("strat dev", Problem.UNKNOWN_VERB, None),
        ("start", Problem.MISSING_ARGUMENT, "start"),
        ("start prod", Problem.UNKNOWN_BRANCH, "start"),
        ("start dev ttl=4x", Problem.BAD_DURATION, "start"),
        ("start dev ttl=8d", Problem.DURATION_TOO_LONG, "start"),
        ("start dev ttl=0m", Problem.BAD_DURATION, "start"),
        ("start dev ttl=1h ttl=2h", Problem.REPEATED_OPTION, "start"),
        ("start dev colour=red", Problem.UNKNOWN_OPTION, "start"),
        ("start dev loose", Problem.UNKNOWN_OPTION, "start"),
        ("start dev at=2027-13-01", Problem.BAD_TIME, "start"),
        ('start dev at="3000-01-01 00:00"', Problem.BAD_TIME, "start"),
        ("start dev note=" + "n" * 501, Problem.NOTE_TOO_LONG, "start"),
        ("start dev set", Problem.MISSING_ARGUMENT, "start"),
        ("start dev set memory", Problem.BAD_SETTING, "start"),
        ("start dev set =3", Problem.BAD_SETTING, "start"),
        ("start dev set memory=1Gi memory=2Gi", Problem.REPEATED_OPTION, "start"),
        ("stop", Problem.MISSING_ARGUMENT, "stop"),
        ("stop 0", Problem.BAD_ID, "stop"),
        ("stop -3", Problem.BAD_ID, "stop"),
        ("stop 99999999999", Problem.BAD_ID, "stop"),
        ("stop ##3", Problem.BAD_ID, "stop"),
        ("stop 3 4", Problem.EXTRA_ARGUMENTS, "stop"),
        ("stop \u0663", Problem.BAD_ID, "stop"),  # an Arabic-Indic digit is not an id
        ("extend 3", Problem.MISSING_ARGUMENT, "extend"),
        ("extend 3 forever", Problem.BAD_DURATION, "extend"),
        ("list prod", Problem.UNKNOWN_BRANCH, "list"),
        ("list mine all", Problem.EXTRA_ARGUMENTS, "list"),
        ("logs 3 lines=0", Problem.BAD_LINES, "logs"),
        ("logs 3 lines=5001", Problem.BAD_LINES, "logs"),
        ("logs 3 lines=\u0663", Problem.BAD_LINES, "logs"),
        ("logs 3 lines=1 lines=2", Problem.REPEATED_OPTION, "logs"),
        ("logs 3 tail", Problem.UNKNOWN_OPTION, "logs"),
        ("capacity now", Problem.EXTRA_ARGUMENTS, "capacity"),
        ("help nope", Problem.UNKNOWN_VERB, None),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_the_usage(
    text: str, problem: Problem, verb: str | None
) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.problem == problem
    assert caught.value.verb == verb
    answer = usage.command_error(caught.value)
    assert "Usage:" in answer
    assert len(answer) < 600


def test_unknown_branch_lists_the_known_ones() -> None:
    with pytest.raises(CommandError) as caught:
        parse("start prod")
    assert "dev, weekly" in usage.command_error(caught.value)


def test_a_typo_gets_a_suggestion() -> None:
    with pytest.raises(CommandError) as caught:
        parse("strat dev")
    assert "Did you mean `start`?" in usage.command_error(caught.value)


def test_user_text_in_errors_cannot_ping_or_link() -> None:
    with pytest.raises(CommandError) as caught:
        parse("<!channel> hi")
    answer = usage.command_error(caught.value)
    assert "<!channel>" not in answer
    assert "&lt;!channel&gt;" in answer


def test_help_covers_every_verb() -> None:
    text = usage.help_text(None, default_ttl=timedelta(hours=8), max_ttl=timedelta(days=7))
    for verb in VERBS:
        assert f"/island {verb}" in text
    one = usage.help_text("start", default_ttl=timedelta(hours=8), max_ttl=timedelta(days=7))
    assert "default 8h" in one
    assert "at most 7d" in one


_WORDS = st.sampled_from(
    [
        *VERBS,
        *("dev", "weekly", "mine", "all", "#3", "42", "ttl=", "at=", "note=", "set", '"', "'"),
        *("lines=", "previous", "=", "4h", "x=y", "\u201c", "\\", "2027-01-01 00:00"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), st.lists(_WORDS, max_size=12).map(" ".join)))
def test_fuzz_only_ever_raises_command_error(text: str) -> None:
    try:
        parse(text)
    except CommandError as exc:
        assert usage.command_error(exc)


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=2001, max_size=12_000))
def test_fuzz_garbage_of_any_size(text: str) -> None:
    with pytest.raises(CommandError):
        parse(text)


def test_a_start_time_is_in_the_teams_time_zone() -> None:
    """Issue 21, defect 12: a studio in UTC+8 typing the seed's time means its own evening."""
    shanghai = replace(CTX, tz=ZoneInfo("Asia/Shanghai"))
    started = parse_command('start dev at="2021-09-18 23:30:07"', shanghai)
    assert started == Start("dev", at=datetime(2021, 9, 18, 15, 30, 7, tzinfo=UTC))
    paris = replace(CTX, tz=ZoneInfo("Europe/Paris"))  # summer time: UTC+2
    assert parse_command('start dev at="2026-07-15 10:00"', paris) == Start(
        "dev", at=datetime(2026, 7, 15, 8, 0, tzinfo=UTC)
    )
    with pytest.raises(CommandError) as caught:
        parse_command('start dev at="2021-02-30 10:00"', shanghai)
    answer = usage.command_error(caught.value)
    assert "(in Asia/Shanghai, years 1971-2099)" in answer and "UTC" not in answer
    with pytest.raises(CommandError) as caught:
        parse_command("time 7 2021-02-30", shanghai)
    assert 'a time "YYYY-MM-DD HH:MM[:SS]" in Asia/Shanghai' in usage.command_error(caught.value)
    one = usage.help_text(
        "start", default_ttl=timedelta(hours=8), max_ttl=timedelta(days=7), timezone="Asia/Shanghai"
    )
    assert "`at` sets its clock at start (in Asia/Shanghai)" in one
