"""Kubernetes resource quantities (``1500Mi``, ``2Gi``, ``500m``, ``1.5``, ``64e9``) as numbers
(pure), with the API server's grammar (``k8s.io/apimachinery/pkg/api/resource``)::

    <quantity> ::= <sign>? <number> <suffix>
    <number>   ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei | n | u | m | "" | k | M | G | T | P | E
                 | e <sign>? <digits> | E <sign>? <digits>

Surrounding spaces are ignored, as the API server trims them off a JSON value.
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal, localcontext

MAX_VALUE = 2**63 - 1  # the largest integer value the API server keeps (an int64)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<decimal>[numkMGTPE]?)|[eE](?P<exponent>[+-]?[0-9]+))",
    re.ASCII,
)


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a quantity, exactly; raise ``ValueError`` for anything Kubernetes would reject."""
    text = str(value).strip()
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(
            f"quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {text!r}"
        )
    number = match["number"]
    if match["binary"] is not None:
        with localcontext() as context:
            context.prec = len(number) + 20  # 2**60 has 19 digits: the product is exact
            return Decimal(number) * _BINARY[match["binary"]]
    if match["exponent"] is not None:
        exponent = match["exponent"]
    else:
        exponent = str(_DECIMAL[match["decimal"]])
    return Decimal(f"{number.rstrip('.') or '0'}e{exponent}")  # exact, whatever the exponent


def _whole(value: Decimal, scale: int = 0) -> int:
    """``value * 10**scale`` rounded up, away from zero, as ``Quantity.Value()`` and
    ``MilliValue()`` do; bounded by ``MAX_VALUE``."""
    if value.is_zero():
        return 0
    if value.adjusted() + scale > len(str(MAX_VALUE)):
        magnitude = MAX_VALUE
    elif value.adjusted() + scale < -1:  # a fraction of one: one
        magnitude = 1
    else:
        with localcontext() as context:
            context.prec = len(value.as_tuple().digits) + 1  # only the exponent moves: exact
            scaled = value.copy_abs().scaleb(scale)
        magnitude = min(int(scaled.to_integral_value(rounding=ROUND_UP)), MAX_VALUE)
    return magnitude if value > 0 else -magnitude


def memory_bytes(value: str | int | float) -> int:
    return _whole(parse_quantity(value))


def cpu_millis(value: str | int | float) -> int:
    return _whole(parse_quantity(value), 3)


def format_mebibytes(num_bytes: int) -> str:
    return f"{num_bytes // 2**20}Mi"


def format_binary(num_bytes: int) -> str:
    """Bytes as ``Quantity.String()`` prints a binary-SI quantity (what metrics-server puts in
    ``usage.memory``): the largest of ``Ki``..``Ei`` that divides it exactly, else plain bytes
    (``19012Ki``, ``2Gi``, ``1000``)."""
    if num_bytes == 0:
        return "0"
    for suffix, size in reversed(_BINARY.items()):
        if num_bytes % size == 0:
            return f"{num_bytes // size}{suffix}"
    return str(num_bytes)


def format_nanocores(nanocores: int) -> str:
    """Nanocores as ``Quantity.String()`` prints ``NewScaledQuantity(n, Nano)`` (metrics-server's
    ``usage.cpu``): the largest of ``n``, ``u``, ``m``, whole cores that keeps it exact
    (``2052498n``, ``5m``, ``2``)."""
    if nanocores == 0:
        return "0"
    for suffix, exponent in (("", 9), ("m", 6), ("u", 3)):
        if nanocores % 10**exponent == 0:
            return f"{nanocores // 10**exponent}{suffix}"
    return f"{nanocores}n"
