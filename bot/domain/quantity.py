"""Memory quantities as Kubernetes writes them (``1500Mi``, ``2Gi``, ``3G``), as bytes (pure).

kubesim has its own copy on purpose: the simulator and the bot share no code.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def memory_bytes(text: str) -> int:
    """``"1500Mi"`` -> 1572864000; ``ValueError`` naming the accepted form otherwise."""
    match = _MEMORY.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a memory size; use a number with Mi or Gi, e.g. 2Gi")
    try:
        return int(Decimal(match.group(1)) * _FACTORS[match.group(2) or ""])
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"{text!r} is not a memory size") from exc
