"""Quantities as the API server reads them: its grammar, checked against the Kubernetes
client's parser (which reads a few strings the API server refuses), and ``Value()``'s
rounding (issue 21, defect 11)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity as client_parse

from kubesim.quantity import cpu_millis, memory_bytes, parse_quantity

BINARY = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
DECIMAL = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"]
digits = st.text(alphabet="0123456789", min_size=1, max_size=10)
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
        st.integers(min_value=0, max_value=60),
    ),
)
quantities = st.builds(
    lambda sign, number, suffix: f"{sign}{number}{suffix}",
    st.sampled_from(["", "+", "-"]),
    numbers,
    suffixes,
)


def client_reads(text: str) -> Decimal:
    with localcontext() as context:
        context.prec = 200  # the client multiplies in the current context: exactly, here
        return client_parse(text)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(quantities)
@example("129500m")
@example("64e9")
@example("1Pi")
@example("1E")
def test_the_grammar_is_read_as_the_kubernetes_client_reads_it(text: str) -> None:
    assert parse_quantity(text) == client_reads(text)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789.+-eEinumkKMGTP", max_size=8))
def test_whatever_is_accepted_the_kubernetes_client_reads_the_same(text: str) -> None:
    try:
        value = parse_quantity(text)
    except ValueError:
        return
    assert value == client_reads(text)


@pytest.mark.parametrize(
    "text", ["1K", "1e3k", "1.5e3Ki", "1e", "Gi", "1ki", "Infinity", "NaN", "1_000", "1 Gi", ""]
)
def test_what_the_api_server_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="quantities must match"):
        parse_quantity(text)


def test_values_round_up_as_quantity_value_does() -> None:
    assert memory_bytes("129500m") == 130
    assert memory_bytes("64e9") == 64 * 10**9 and memory_bytes("1Pi") == 2**50
    assert cpu_millis("0.0001") == 1 and cpu_millis("1.5") == 1500
    assert memory_bytes("-1.5") == -2
    assert memory_bytes("1e999999999") == 2**63 - 1  # bounded, not a billion digits
