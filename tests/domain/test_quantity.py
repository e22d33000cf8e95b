"""Memory sizes people type (``set memory=...``) and templates hold: the API server's quantity
grammar, checked against the Kubernetes client's own parser (issue 21, defect 11)."""

from __future__ import annotations

import math
from decimal import localcontext
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity

from bot.domain.errors import BadOverride, Refusal
from bot.domain.podspec import Profile, allowed_profile, parse_overrides
from bot.domain.quantity import MAX_BYTES, memory_bytes

BINARY = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
DECIMAL = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"]

digits = st.text(alphabet="0123456789", min_size=1, max_size=8)
numbers = st.one_of(
    digits,
    st.builds(lambda a, b: f"{a}.{b}", digits, digits),
    st.builds(lambda a: f"{a}.", digits),
    st.builds(lambda b: f".{b}", digits),
)
suffixes = st.one_of(
    st.sampled_from(BINARY + DECIMAL),
    st.builds(
        lambda e, sign, n: f"{e}{sign}{n}",
        st.sampled_from("eE"),
        st.sampled_from(["", "+", "-"]),
        st.integers(min_value=0, max_value=40),
    ),
)
quantities = st.builds(
    lambda sign, number, suffix: f"{sign}{number}{suffix}",
    st.sampled_from(["", "+", "-"]),
    numbers,
    suffixes,
)


def expected(text: str) -> int:
    """What the Kubernetes client reads, exactly (no rounding at 28 digits), as whole bytes
    rounded away from zero and bounded like ``memory_bytes``."""
    with localcontext() as context:
        context.prec = 200
        parsed = parse_quantity(text)
    if parsed.is_zero():
        return 0
    if parsed.adjusted() > 40:  # no need for the digits of 10**999999
        return MAX_BYTES if parsed > 0 else -MAX_BYTES
    value = Fraction(parsed)
    whole = min(math.ceil(abs(value)), MAX_BYTES)
    return whole if value > 0 else -whole


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64Gi", 64 * 2**30),
        ("68719476736", 64 * 2**30),
        ("64e9", 64 * 10**9),
        ("64E9", 64 * 10**9),
        ("1Pi", 2**50),
        ("1Ei", 2**60),
        ("2P", 2 * 10**15),
        ("1E", 10**18),  # exa, not an exponent
        ("129500m", 130),  # a fraction of a byte is a byte, as Quantity.Value() rounds
        ("1500Mi", 1500 * 2**20),
        ("1.5Gi", 3 * 2**29),
        (".5Ki", 512),
        ("3.", 3),
        ("+2Gi", 2 * 2**30),
        ("-1Mi", -(2**20)),
        ("12e-1", 2),
        ("1e30", MAX_BYTES),
        ("1e999999999", MAX_BYTES),  # bounded before any arithmetic: no billion-digit number
        ("1e-999999999", 1),
        ("0", 0),
        ("0.0Ei", 0),
    ],
)
def test_the_api_servers_quantities_are_memory_sizes(text: str, size: int) -> None:
    assert memory_bytes(text) == size


@pytest.mark.parametrize(
    "text",
    # what the API server refuses, the client's parser reading some of them anyway
    ["", "lots", "1K", "1e3Ki", "1.5e3k", "1ki", "1mi", "1e", "Gi", "1.2.3", "1Gi ", " 1Gi",
     "Infinity", "NaN", "1_000", "1 Gi", "\uff11Gi", "0x10"],
)  # fmt: skip
def test_what_the_api_server_refuses_is_not_a_memory_size(text: str) -> None:
    with pytest.raises(ValueError, match="is not a memory size"):
        memory_bytes(text)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(quantities)
@example("129500m")
@example("-.5Ei")
@example("1e-40")
def test_every_quantity_of_the_grammar_reads_as_the_kubernetes_client_reads_it(
    text: str,
) -> None:
    assert memory_bytes(text) == expected(text)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789.+-eEinumkKMGTP", max_size=8))
def test_whatever_is_accepted_the_kubernetes_client_reads_the_same(text: str) -> None:
    try:
        size = memory_bytes(text)
    except ValueError:
        return
    assert size == expected(text)


def test_a_memory_override_takes_the_api_servers_forms_or_is_refused() -> None:
    profile = Profile("dev", {}, memory_min="1Gi", memory_max="4Gi")
    for value in ["4096Mi", "4e9", "2.5Gi", "+2Gi", "1073741824", "0.003Ti"]:
        assert parse_overrides([f"memory={value}"], profile) == {"memory": value}
    with pytest.raises(BadOverride) as refused:
        parse_overrides(["memory=1K"], profile)
    assert refused.value.refusal == Refusal.OVERRIDE_NOT_MEMORY
    for value in ["1Pi", "1e30", "-2Gi", "129500m"]:
        with pytest.raises(BadOverride) as refused:
            parse_overrides([f"memory={value}"], profile)
        assert refused.value.refusal == Refusal.OVERRIDE_MEMORY_RANGE


def test_a_profile_may_bound_memory_in_any_of_the_api_servers_forms() -> None:
    profile = allowed_profile("dev", {"overrides": {"memory": {"min": "5e8", "max": "0.5Ti"}}})
    assert parse_overrides(["memory=100Gi"], profile) == {"memory": "100Gi"}
    with pytest.raises(BadOverride):
        parse_overrides(["memory=1Ti"], profile)
