"""What an island's seed script may send when it registers (pure validation).

Body: ``{"node": "dev-1", "pod_ip": "10.1.2.3", "version": "1.2.3", "build": "4567",
"ports": {"server-port": 30809}, "code": "9f2c..."}``; ``build``, ``ports`` and ``code`` are
optional. ``code`` names the server code the island booted (the shared code volume's
``VERSION`` file, or a hash of its listing, as seed.sh computes it): warm pool islands that
booted other code than their branch's newest are not handed out. Every problem is
reported at once, each naming the field; unknown fields are problems too (a typo must not be
silently dropped).
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_TEXT = 100
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")
FIELDS = ("node", "pod_ip", "version", "build", "ports", "code")


@dataclass(frozen=True)
class Registration:
    node: str
    pod_ip: str
    version: str
    build: str | None = None
    ports: Mapping[str, int] | None = None
    code: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"node": self.node, "pod_ip": self.pod_ip, "version": self.version}
        if self.build is not None:
            data["build"] = self.build
        if self.ports is not None:
            data["ports"] = dict(self.ports)
        if self.code is not None:
            data["code"] = self.code
        return data


class Flaw(enum.Enum):
    """What is wrong with one field of a registration (its words: ``bot.words.api_text``)."""

    NOT_AN_OBJECT = "not an object"
    UNKNOWN_FIELD = "unknown field"
    REQUIRED = "required"
    BAD_TEXT = "not short printable ASCII text"
    BAD_NODE = "not a DNS-1123 subdomain"
    BAD_ADDRESS = "not an IP address"
    BAD_PORTS = "not an object of port name to port number"
    UNKNOWN_PORT = "unknown port"
    BAD_PORT = "not a port number"


@dataclass(frozen=True)
class Problem:
    field: str
    flaw: Flaw
    known: tuple[str, ...] = ()  # what would be accepted (the port names)

    def __str__(self) -> str:
        return f"{self.field}: {self.flaw.value}"


class RegistrationInvalid(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


def _text(
    data: Mapping[str, Any], name: str, problems: list[Problem], *, required: bool
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            problems.append(Problem(name, Flaw.REQUIRED))
        return None
    if not isinstance(value, str) or not _PRINTABLE.fullmatch(value) or len(value) > MAX_TEXT:
        problems.append(Problem(name, Flaw.BAD_TEXT))
        return None
    return value


def parse_registration(data: Any, port_names: Sequence[str]) -> Registration:
    """The registration in ``data`` (decoded JSON), or ``RegistrationInvalid``."""
    if not isinstance(data, Mapping):
        raise RegistrationInvalid([Problem("body", Flaw.NOT_AN_OBJECT)])
    problems = [Problem(str(key), Flaw.UNKNOWN_FIELD) for key in data if key not in FIELDS]
    node = data.get("node")
    if not isinstance(node, str) or len(node) > 253 or not _DNS_SUBDOMAIN.fullmatch(node):
        problems.append(Problem("node", Flaw.BAD_NODE))
        node = None
    pod_ip = data.get("pod_ip")
    try:
        pod_ip = str(ipaddress.ip_address(pod_ip)) if isinstance(pod_ip, str) else None
    except ValueError:
        pod_ip = None
    if pod_ip is None:
        problems.append(Problem("pod_ip", Flaw.BAD_ADDRESS))
    version = _text(data, "version", problems, required=True)
    build = _text(data, "build", problems, required=False)
    code = _text(data, "code", problems, required=False)
    ports = data.get("ports")
    if ports is not None:
        if not isinstance(ports, Mapping) or not ports:
            problems.append(Problem("ports", Flaw.BAD_PORTS))
            ports = None
        else:
            for name, number in ports.items():
                if name not in port_names:
                    problems.append(Problem(f"ports.{name}", Flaw.UNKNOWN_PORT, tuple(port_names)))
                if (
                    isinstance(number, bool)
                    or not isinstance(number, int)
                    or not 0 < number < 65536
                ):
                    problems.append(Problem(f"ports.{name}", Flaw.BAD_PORT))
    if problems:
        raise RegistrationInvalid(problems)
    assert node is not None and pod_ip is not None and version is not None
    return Registration(node, pod_ip, version, build, dict(ports) if ports else None, code)


def token_hash(token: str) -> str:
    """How an island's registration token is stored (SHA-256, hex): never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()
