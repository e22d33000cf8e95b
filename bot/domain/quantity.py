"""Memory quantities typed by people and in templates (``1500Mi``, ``2Gi``, ``64e9``), as
bytes (pure).

The grammar is the API server's (``k8s.io/apimachinery/pkg/api/resource``), so a size this
accepts is one the API server takes too::

    <quantity> ::= <sign>? <number> <suffix>
    <number>   ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei            (powers of 1024)
                 | n | u | m | "" | k | M | G | T | P | E (powers of 1000)
                 | e <sign>? <digits> | E <sign>? <digits> (a power of ten)

A fraction of a byte counts as a whole one, away from zero (as ``Quantity.Value()`` does:
``129500m`` is 130 bytes), and sizes beyond ``MAX_BYTES`` count as ``MAX_BYTES``.
Quantities read from the cluster are converted in the Kubernetes adapter, with the client
library's parser; kubesim has its own parser on purpose: the simulator and the bot share no code.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

MAX_BYTES = 2**63 - 1  # the largest quantity the API server keeps (an int64)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<decimal>[numkMGTPE]?)|[eE](?P<exponent>[+-]?[0-9]+))",
    re.ASCII,
)
# Decimal digits of MAX_BYTES: a power of ten beyond this is certainly out of range.
_DIGITS = len(str(MAX_BYTES))


def memory_bytes(text: str) -> int:
    """``"1500Mi"`` -> 1572864000, ``"64e9"`` -> 64000000000, ``"129500m"`` -> 130;
    ``ValueError`` naming the accepted form for anything the API server would refuse."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a memory size; use a number with Mi or Gi, e.g. 2Gi")
    number = Decimal(match["number"])
    if match["binary"] is not None:
        power_of_ten, factor = 0, _BINARY[match["binary"]]
    elif match["exponent"] is not None:
        power_of_ten, factor = int(match["exponent"]), 1
    else:
        power_of_ten, factor = _DECIMAL[match["decimal"]], 1
    if number.is_zero():
        return 0
    sign = -1 if number < 0 else 1
    # Bound the exponent before any exact arithmetic, so that "1e999999999" costs nothing.
    magnitude = number.adjusted() + power_of_ten  # 10**magnitude <= |value| / factor
    if magnitude >= _DIGITS:
        return sign * MAX_BYTES
    if magnitude < -_DIGITS - 30:  # far below one byte, even times 2**60: one byte
        return sign
    scale = Fraction(10**power_of_ten) if power_of_ten >= 0 else Fraction(1, 10**-power_of_ten)
    exact = Fraction(abs(number)) * scale * factor
    whole = -(-exact.numerator // exact.denominator)  # rounded up
    return sign * min(whole, MAX_BYTES)
