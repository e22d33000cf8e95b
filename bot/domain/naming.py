"""Names that Kubernetes accepts, built from anything a user calls themselves (pure)."""

from __future__ import annotations

import re
import unicodedata

POD_NAME_PREFIX = "island"
# Keeps room for the owner however long a branch name is (ids have at most 19 digits).
_BRANCH_MAX = 20
_DNS_LABEL_MAX = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


def dns_label(text: str, *, max_length: int = _DNS_LABEL_MAX, fallback: str = "x") -> str:
    """Fold ``text`` into a DNS-1123 label: lowercase ASCII letters, digits and ``-``.

    Accents are stripped (``Zoë`` -> ``zoe``), everything else becomes ``-``; the result never
    starts or ends with ``-`` and is at most ``max_length`` characters. Text with nothing usable
    (``"刮风"``) gives ``fallback``.
    """
    ascii_text = (
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    )
    label = _DASHES.sub("-", _NOT_DNS.sub("-", ascii_text))[:max_length].strip("-")
    return label or fallback


def pod_name(*, owner_name: str, branch: str, island_id: int) -> str:
    """``island-<owner>-<branch>-<id>``, a valid pod name (DNS-1123 subdomain, <= 63 chars here).

    The id makes the name unique; owner and branch are there for people reading ``kubectl get``.
    """
    suffix = f"-{dns_label(branch, max_length=_BRANCH_MAX, fallback='branch')}-{island_id}"
    room = _DNS_LABEL_MAX - len(POD_NAME_PREFIX) - 1 - len(suffix)
    owner = dns_label(owner_name, max_length=room, fallback="user")
    return f"{POD_NAME_PREFIX}-{owner}{suffix}"
