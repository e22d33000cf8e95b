"""The pure core: port layouts, layout plans, durations, names. No I/O here."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.durations import format_duration, parse_duration
from bot.domain.naming import dns_label, pod_name
from bot.domain.port_blocks import (
    BlockLayout,
    BlockRow,
    PortRange,
    exclusion_reasons,
    overlaps,
    plan_layout,
)

DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def test_layout_cuts_aligned_blocks_and_drops_the_short_tail() -> None:
    layout = BlockLayout(PortRange(30000, 30010), 3)
    assert list(layout.first_ports()) == [30000, 30003, 30006]
    assert layout.block_count == 3
    assert layout.contains_block(30003, 3)
    assert not layout.contains_block(30004, 3)
    assert not layout.contains_block(30009, 3)
    assert not layout.contains_block(30003, 2)
    with pytest.raises(ValueError, match="does not fit"):
        BlockLayout(PortRange(30000, 30001), 3)


@given(first=st.integers(1024, 60000), length=st.integers(1, 500), size=st.integers(1, 7))
def test_layout_blocks_never_overlap_and_stay_in_range(first: int, length: int, size: int) -> None:
    rng = PortRange(first, min(first + length - 1, 65535))
    if size > len(rng):
        return
    starts = list(BlockLayout(rng, size).first_ports())
    assert all(b - a == size for a, b in itertools.pairwise(starts))
    assert all(s in rng and s + size - 1 in rng for s in starts)
    assert len(rng) - len(starts) * size < size


def test_plan_creates_missing_blocks_and_is_empty_when_in_sync() -> None:
    layout = BlockLayout(PortRange(30000, 30008), 3)
    plan = plan_layout([], layout)
    assert plan.create == (30000, 30003, 30006)
    synced = [BlockRow(p, 3, held=False) for p in plan.create]
    assert plan_layout(synced, layout).is_empty


def test_plan_retires_held_blocks_of_another_layout_and_waits_for_them() -> None:
    new = BlockLayout(PortRange(30000, 30009), 5)
    rows = [
        BlockRow(30000, 3, held=False),
        BlockRow(30003, 3, held=True),
        BlockRow(30006, 3, held=False),
    ]
    plan = plan_layout(rows, new)
    assert plan.delete == (30000, 30006)
    assert plan.retire == (30003,)
    assert plan.waiting == (30000, 30005)  # both overlap 30003-30005
    assert plan.create == ()
    again = plan_layout([BlockRow(30003, 3, held=True, retired=True)], new)
    assert again.retire == () and again.waiting == (30000, 30005)


def test_plan_unretires_blocks_that_fit_the_layout_again() -> None:
    layout = BlockLayout(PortRange(30000, 30005), 3)
    plan = plan_layout([BlockRow(30000, 3, held=True, retired=True)], layout)
    assert plan.unretire == (30000,)
    assert plan.create == (30003,)


@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(1, 5), st.booleans()), max_size=12),
    st.integers(1, 6),
)
def test_plan_never_creates_a_block_overlapping_a_kept_one(
    rows: list[tuple[int, int, bool]], size: int
) -> None:
    # build non-overlapping existing rows, as the database would hold them
    existing: list[BlockRow] = []
    for offset, length, held in rows:
        first = 30000 + offset
        if not any(overlaps(first, length, r.first_port, r.size) for r in existing):
            existing.append(BlockRow(first, length, held))
    layout = BlockLayout(PortRange(30000, 30050), size)
    plan = plan_layout(existing, layout)
    kept = [r for r in existing if r.first_port not in plan.delete]
    after = [(r.first_port, r.size) for r in kept] + [(p, size) for p in plan.create]
    after.sort()
    assert all(a[0] + a[1] <= b[0] for a, b in itertools.pairwise(after))
    assert all(r.held for r in existing if r.first_port in plan.retire)
    assert not any(r.held for r in existing if r.first_port in plan.delete)


def test_exclusion_reasons_name_each_port_in_a_block() -> None:
    reasons = exclusion_reasons(
        [(30000, 3), (30003, 3)], {30001: "NodePort a/b", 30002: "NodePort c/d"}
    )
    assert reasons == {30000: "30001: NodePort a/b; 30002: NodePort c/d", 30003: None}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90m", 5400),
        ("4h", 14400),
        ("2d", 172800),
        ("1d12h", 129600),
        ("45s", 45),
        ("1w", 604800),
        (" 8H ", 28800),
        ("1h30m15s", 5415),
    ],
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "8", "h", "8 hours", "-2h", "0m", "1.5h", "2x", "1d 2h", "9" * 20 + "d"]
)
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(1, 10**7))
def test_format_and_parse_round_trip(seconds: int) -> None:
    shown = format_duration(timedelta(seconds=seconds))
    assert parse_duration(shown.replace(" ", "")) == timedelta(seconds=seconds)


def test_format_duration_examples() -> None:
    assert format_duration(timedelta(days=1, hours=10, minutes=30)) == "1d 10h30m"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(minutes=-90)) == "-1h30m"


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("liudianbo", "liudianbo"),
        ("Zoë Smith", "zoe-smith"),
        ("刮风", "x"),
        ("--a__b--", "a-b"),
        ("A" * 100, "a" * 63),
    ],
)
def test_dns_label_examples(name: str, label: str) -> None:
    assert dns_label(name) == label


@given(st.text(max_size=200), st.text(max_size=80), st.integers(1, 10**18))
def test_pod_names_are_always_valid(owner: str, branch: str, island_id: int) -> None:
    name = pod_name(owner_name=owner, branch=branch, island_id=island_id)
    assert len(name) <= 63
    assert re.fullmatch(DNS_LABEL, name)
    assert name.endswith(f"-{island_id}")


def test_a_long_branch_still_leaves_room_for_the_owner() -> None:
    name = pod_name(owner_name="", branch="0" * 43, island_id=10**7)
    assert name == "island-user-" + "0" * 20 + "-10000000"


def test_pod_name_matches_the_original_design() -> None:
    assert (
        pod_name(owner_name="liudianbo", branch="dev", island_id=269) == "island-liudianbo-dev-269"
    )
