"""TCP probes of island server ports, all at once: N probes cost about one timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

Target = tuple[str, int]
MAX_CONCURRENT = 512  # open sockets at a time, well under the file-descriptor limit


async def _probe(target: Target, timeout: float, gate: asyncio.Semaphore) -> bool:
    async with gate:
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(*target), timeout)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout)
        return True


async def _probe_all(targets: list[Target], timeout: float) -> list[bool]:
    gate = asyncio.Semaphore(MAX_CONCURRENT)
    return await asyncio.gather(*(_probe(t, timeout, gate) for t in targets))


def probe_ports(targets: Iterable[Target], *, timeout: float = 0.5) -> dict[Target, bool]:
    """Connect to every (host, port); True where a connection was accepted."""
    unique = list(dict.fromkeys(targets))
    if not unique:
        return {}
    results = asyncio.run(_probe_all(unique, timeout))
    return dict(zip(unique, results, strict=True))
