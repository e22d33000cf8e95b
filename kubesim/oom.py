"""The memory-climb fault: a container's working set rises in a straight line to its memory
limit (a leak, a runaway cache), and when it gets there the kernel OOM-kills it, exactly as the
``kill`` fault does with ``OOMKilled`` (exit 137). The metrics API shows the climb as it goes,
which is what lets the bot warn an island's owner before the kill."""

from __future__ import annotations

import asyncio
import math
import time

from kubesim.cluster import Cluster
from kubesim.metrics import memory_now
from kubesim.runtime import ContainerRuntime
from kubesim.usage import Climb, memory_limit

MAX_CLIMB_S = 86_400.0  # a day: longer is not a climb anyone waits for


async def start_climb(
    cluster: Cluster, ns: str, name: str, container: str | None, seconds: float
) -> tuple[str, Climb]:
    """Start the climb of ``container`` (by default the pod's first container with a memory
    limit) from its working set now to its limit, reached after ``seconds``; it replaces any
    climb under way. KeyError: no such pod or running container; ValueError: no memory limit
    to climb to, or a negative duration."""
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_CLIMB_S:
        raise ValueError(f"seconds must be a number from 0 to {MAX_CLIMB_S:g}: {seconds}")
    pod = cluster.store.get("pods", ns, name)
    runtime = cluster.runtimes.get((ns, name))
    if pod is None or runtime is None:
        raise KeyError(f"no running pod {ns}/{name}")
    specs = {spec["name"]: spec for spec in pod["spec"]["containers"]}
    if not container:
        limited = [n for n, spec in specs.items() if memory_limit(spec) is not None]
        if not limited:
            raise ValueError(f"no container of pod {ns}/{name} has a memory limit")
        container = limited[0]
    c = runtime.containers.get(container)
    if c is None or c.state != "running":
        raise KeyError(f"no running container {container!r} in pod {ns}/{name}")
    limit = memory_limit(specs[container])
    if limit is None:
        raise ValueError(f"container {container!r} of pod {ns}/{name} has no memory limit")
    now = time.monotonic()
    climb = Climb(now, min(limit, memory_now(ns, name, specs[container], c, now)), limit, seconds)
    c.climb = climb
    runtime.tasks.append(asyncio.create_task(_kill_when_full(cluster, ns, name, c, climb)))
    return container, climb


async def _kill_when_full(
    cluster: Cluster, ns: str, name: str, c: ContainerRuntime, climb: Climb
) -> None:
    await asyncio.sleep(climb.seconds)
    runtime = cluster.runtimes.get((ns, name))
    if runtime is None or runtime.containers.get(c.name) is not c:
        return  # the pod is gone (a new one may have its name)
    if c.climb is not climb or c.state != "running":
        return  # another climb replaced this one, or the run ended otherwise
    await cluster.kill_container(ns, name, c.name, exit_code=137, reason="OOMKilled")
