"""What an island's ``seed.sh`` does before its server starts, done for simulated islands:
write the initial clock as ``@date``, then register the island over HTTP with its token."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from kubesim.runtime import ContainerRuntime, map_path
from kubesim.store import Obj

_SEED_CLOCK = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
REGISTER_ATTEMPTS = 8  # about 15 s of retries, as seed.sh bounds its own


def write_initial_clock(c: ContainerRuntime, pod_name: str) -> None:
    """What the island's seed.sh does first: write the initial clock as ``@date``."""
    args = c.command
    c.log(f"seed: starting island for pod {pod_name} ({' '.join(args)})")
    clock_file = c.env.get("FAKETIME_TIMESTAMP_FILE")
    if len(args) >= 6 and args[1].endswith("seed.sh") and clock_file and _SEED_CLOCK.match(args[5]):
        target = map_path(c.root, clock_file)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f"@{args[5]}\n")
            c.log(f"seed: initial clock {args[5]} written to {clock_file}")


async def register(
    c: ContainerRuntime, pod: Obj | None, address: str, code: str | None = None
) -> bool:
    """What seed.sh does before it starts the server: register the island over HTTP with
    its token, retrying with backoff for a bounded time. False: it gave up (or was refused),
    and the container exits 1 as the script does."""
    url, token = c.env.get("ISLANDBOT_REGISTER_URL"), c.env.get("ISLANDBOT_REGISTER_TOKEN")
    if not url or not token:
        return True
    status = (pod or {}).get("status", {})
    body = {
        "node": (pod or {}).get("spec", {}).get("nodeName") or "unknown",
        "pod_ip": status.get("podIP") or address,
        "version": "kubesim",
        "ports": dict(c.ports),
    }
    if code is not None:  # the shared code volume's version, as seed.sh reads it
        body["code"] = code
    delay = 0.2
    for attempt in range(1, REGISTER_ATTEMPTS + 1):
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
                session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as r,
            ):
                if r.status == 200:
                    c.log(f"seed: registered with {url}")
                    return True
                problem = f"HTTP {r.status}: {(await r.text())[:200]}"
                if r.status in {400, 401, 404, 409, 413, 422}:
                    c.log(f"seed: registration refused ({problem}); exiting")
                    return False
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            problem = type(exc).__name__
        if c.state != "running":
            return False
        c.log(f"seed: registration attempt {attempt} failed ({problem}); retry in {delay:g}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    c.log(f"seed: could not register after {REGISTER_ATTEMPTS} attempts; exiting")
    return False
