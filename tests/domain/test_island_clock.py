"""What ``/island time <id> <when>`` means, and what libfaketime is told (pure)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.island_clock import (
    BadWhen,
    When,
    WhenKind,
    describe_shift,
    faketime_relative,
    faketime_start_at,
    island_time,
    new_offset,
    out_of_bounds,
    parse_when,
    valid_relative_content,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", When(WhenKind.NOW)),
        (" NOW ", When(WhenKind.NOW)),
        ("+2d", When(WhenKind.RELATIVE, shift_s=2 * 86400)),
        ("+3h", When(WhenKind.RELATIVE, shift_s=3 * 3600)),
        ("-90m", When(WhenKind.RELATIVE, shift_s=-90 * 60)),
        ("+1d12h", When(WhenKind.RELATIVE, shift_s=36 * 3600)),
        ("+1w", When(WhenKind.RELATIVE, shift_s=7 * 86400)),
        (
            "2021-09-20 10:00",
            When(WhenKind.ABSOLUTE, at=datetime(2021, 9, 20, 10, 0, tzinfo=UTC)),
        ),
        (
            "2021-09-18 23:30:07",
            When(WhenKind.ABSOLUTE, at=datetime(2021, 9, 18, 23, 30, 7, tzinfo=UTC)),
        ),
    ],
)
def test_parse_when(text: str, expected: When) -> None:
    assert parse_when(text) == expected


def test_absolute_times_are_in_the_teams_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    winter = parse_when("2026-01-15 10:00", paris)
    summer = parse_when("2026-07-15 10:00", paris)
    assert winter.at == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # CET, UTC+1
    assert summer.at == datetime(2026, 7, 15, 8, 0, tzinfo=UTC)  # CEST, UTC+2


def test_relative_shifts_are_plain_seconds_across_dst() -> None:
    """A shift moves the clock by exactly that many seconds, whatever the zone's DST does."""
    when = parse_when("+1d", ZoneInfo("Europe/Paris"))
    assert (
        new_offset(when, current_offset_s=0, real_now=datetime(2026, 3, 28, 12, tzinfo=UTC))
        == 86400
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "+",
        "+0m",
        "2d",
        "+2x",
        "+-2d",
        "2021-13-01 10:00",
        "3000-01-01 00:00",
        "+2d 3h",
    ],
)
def test_bad_when_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(BadWhen) as caught:
        parse_when(text)
    assert "+2d" in str(caught.value) or "does not move" in str(caught.value)


def test_offsets() -> None:
    assert new_offset(When(WhenKind.NOW), current_offset_s=500, real_now=NOW) == 0
    assert new_offset(parse_when("+1h"), current_offset_s=500, real_now=NOW) == 4100
    assert new_offset(parse_when("-1h"), current_offset_s=0, real_now=NOW) == -3600
    target = parse_when("2026-11-29 12:00")
    assert new_offset(target, current_offset_s=123, real_now=NOW) == 86400
    assert island_time(86400, NOW) == NOW + timedelta(days=1)


def test_bounds() -> None:
    ten_years = timedelta(days=3650)
    assert not out_of_bounds(int(ten_years.total_seconds()), ten_years)
    assert out_of_bounds(int(ten_years.total_seconds()) + 1, ten_years)
    assert out_of_bounds(-int(ten_years.total_seconds()) - 1, ten_years)


def test_describe_shift() -> None:
    assert describe_shift(0, 37800 + 86400) == "+1d 10h30m"
    assert describe_shift(7200, 0) == "-2h"
    assert describe_shift(5, 5) == "+0s"


def test_faketime_file_contents() -> None:
    assert faketime_relative(86400) == "+86400"
    assert faketime_relative(-90) == "-90"
    assert faketime_relative(0) == "+0"
    assert faketime_start_at(datetime(2021, 9, 18, 23, 30, 7)) == "@2021-09-18 23:30:07"
    for good in ("+0", "+86400", "-90"):
        assert valid_relative_content(good)
    for bad in ("", "@2021-09-18 23:30:07", "+1d", "86400", "+ 5", "+5\n+6", "+9999999999999"):
        assert not valid_relative_content(bad)


@given(st.integers(min_value=-(10**11), max_value=10**11))
def test_every_offset_makes_valid_content(offset: int) -> None:
    content = faketime_relative(offset)
    assert valid_relative_content(content)
    assert int(content) == offset


@given(st.text(max_size=60))
def test_parse_when_only_raises_bad_when(text: str) -> None:
    with contextlib.suppress(BadWhen):
        parse_when(text)
