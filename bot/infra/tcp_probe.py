"""TCP probes of island server ports, all at once: N probes cost about one timeout, not N.

Plain non-blocking sockets and one ``selectors`` loop: a probe is a connect that completes (the
port accepts) or fails or times out; nothing is sent. About 30 us of CPU per probe, so thousands
fit in one tick.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections.abc import Iterable

Target = tuple[str, int]
MAX_OPEN = 1024  # sockets open at a time, well under the file-descriptor limit


def probe_ports(targets: Iterable[Target], *, timeout: float = 0.5) -> dict[Target, bool]:
    """Connect to every (host, port); True where the connection was accepted."""
    pending = list(dict.fromkeys(targets))
    results: dict[Target, bool] = {}
    with selectors.DefaultSelector() as selector:
        while pending or selector.get_map():
            while pending and len(selector.get_map()) < MAX_OPEN:
                target = pending.pop()
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                code = sock.connect_ex(target)
                if code in (0, errno.EINPROGRESS):
                    selector.register(
                        sock, selectors.EVENT_WRITE, (target, time.monotonic() + timeout)
                    )
                else:
                    results[target] = False
                    sock.close()
            for key, _ in selector.select(timeout=0.05):
                target, _deadline = key.data
                done = key.fileobj
                assert isinstance(done, socket.socket)
                results[target] = done.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                selector.unregister(done)
                done.close()
            now = time.monotonic()
            for key in list(selector.get_map().values()):
                target, deadline = key.data
                if now >= deadline:
                    results[target] = False
                    selector.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
    return results
