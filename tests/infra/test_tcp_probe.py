"""TCP probes: real listeners on loopback, closed ports, many at once."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from bot.infra.tcp_probe import probe_ports


@pytest.fixture
def listeners() -> Iterator[list[tuple[str, int]]]:
    socks = []
    for _ in range(300):
        s = socket.socket()
        s.bind(("127.0.0.9", 0))
        s.listen(8)
        socks.append(s)
    yield [s.getsockname() for s in socks]
    for s in socks:
        s.close()


def closed_ports(count: int) -> list[tuple[str, int]]:
    """Distinct ports nobody listens on: all held bound (never listening) while they are
    picked, so the kernel cannot hand out the same one twice, then released together."""
    held = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.9", 0))
        held.append(s)
    found = [s.getsockname() for s in held]
    for s in held:
        s.close()
    return found


def test_open_and_closed_ports(listeners: list[tuple[str, int]]) -> None:
    closed = closed_ports(50)
    results = probe_ports([*listeners, *closed, listeners[0]], timeout=0.5)
    assert len(results) == len(listeners) + len(closed)  # duplicates probed once
    assert all(results[t] for t in listeners)
    assert not any(results[t] for t in closed)


def test_nothing_to_probe() -> None:
    assert probe_ports([]) == {}


def test_a_port_that_does_not_answer_times_out() -> None:
    """A listener whose accept queue is full drops new SYNs: the connect hangs until the
    probe's timeout, which must hold (and all probes share it, not add up)."""
    server = socket.socket()
    server.bind(("127.0.0.9", 0))
    server.listen(0)
    address = server.getsockname()
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(address)
        fillers.append(c)
    time.sleep(0.2)
    began = time.monotonic()
    assert probe_ports([address], timeout=0.3) == {address: False}
    assert 0.25 <= time.monotonic() - began < 1.0
    for c in fillers:
        c.close()
    server.close()
