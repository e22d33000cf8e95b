"""A TCP proxy of the tests' own, put between the bot and MariaDB to make database outages.

It forwards bytes both ways on a loopback port, and can:

- ``cut()``: reset every open connection at once (``SO_LINGER`` 0, so the peer sees RST, as
  when a database host dies or a firewall drops state), and ``refuse(seconds)``: reset every
  new connection as soon as it is accepted, for that long, as a host with nothing listening
  does (the listening socket stays bound, so the address is never taken by another process);
- ``stall(seconds)``: stop forwarding on the open connections (and accept new ones but forward
  nothing) without closing them, as a hung server or a network partition does; bytes sent
  meanwhile are forwarded when the stall ends.

Bounded: a daemon thread per direction of each connection, closed with the proxy.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from bot.infra.storage.database import Database, create_database


class TcpProxy:
    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.target = target
        self._listener = socket.create_server((host, 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refuse_until = 0.0
        self._stall_until = 0.0
        self._closed = False
        self.accepted = 0
        self.refused = 0
        threading.Thread(target=self._accept, name="tcpproxy", daemon=True).start()

    @property
    def port(self) -> int:
        return self.address[1]

    # ---- faults ----------------------------------------------------------------------------

    def cut(self) -> int:
        """Reset every open connection; returns how many sockets were reset."""
        with self._lock:
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            _reset(sock)
        return len(sockets)

    def refuse(self, seconds: float) -> None:
        """Reset every new connection for ``seconds`` from now."""
        with self._lock:
            self._refuse_until = time.monotonic() + seconds

    def stall(self, seconds: float) -> None:
        """Forward nothing, on open or new connections, for ``seconds`` from now."""
        with self._lock:
            self._stall_until = time.monotonic() + seconds

    def outage(self, seconds: float) -> None:
        """Every open connection reset, every new one refused, for ``seconds``."""
        self.refuse(seconds)
        self.cut()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()

    # ---- forwarding ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = time.monotonic() < self._refuse_until
            if refusing:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            self.accepted += 1
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="tcpproxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._wait_stall()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            for sock in (source, sink):
                _reset(sock)

    def _wait_stall(self) -> None:
        while True:
            with self._lock:
                left = self._stall_until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN: the peer's next read or write fails at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def proxying(target: tuple[str, int]) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target)
    try:
        yield proxy
    finally:
        proxy.close()


@contextlib.contextmanager
def database_behind_proxy(url: str) -> Iterator[tuple[Database, TcpProxy]]:
    """A ``Database`` on the MariaDB of ``url`` reached through a proxy of its own."""
    parsed = make_url(url)
    with proxying((parsed.host or "127.0.0.1", parsed.port or 3306)) as proxy:
        db = create_database(
            parsed.set(host=proxy.address[0], port=proxy.port).render_as_string(hide_password=False)
        )
        try:
            yield db, proxy
        finally:
            db.dispose()
