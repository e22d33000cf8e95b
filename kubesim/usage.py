"""What a running container uses, as its kubelet reports it to metrics-server (pure): a memory
working set and a CPU rate that are deterministic given the pod, so that tests can predict
them, and the memory climb (a leak) that ends in an OOM kill.

The model, per container run:

- steady working set: a fraction between ``STEADY_LOW`` and ``STEADY_HIGH`` (30-45 %) of the
  container's memory limit, of its request when it has no limit, of ``REFERENCE_MEMORY`` when
  it has neither; the fraction is fixed by the namespace, pod and container names (a hash),
  so the same island gets the same value every time it is created;
- a wobble of ``WOBBLE`` (±2 %) of that value, a sine of period ``WOBBLE_PERIOD`` seconds
  from the start of the run;
- rounded down to whole pages (``PAGE``), as a working set is counted;
- CPU: 2-10 % of the CPU limit (or request, or ``REFERENCE_CPU_MILLIS``), wobbling likewise;
- a climb (``Climb``) replaces all of that with a straight line from the working set when it
  began to the memory limit, reached after its ``seconds``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubesim.quantity import cpu_millis, memory_bytes

PAGE = 4096
STEADY_LOW, STEADY_HIGH = 0.30, 0.45  # of the memory limit (or request)
WOBBLE = 0.02  # the working set moves by up to this share of its steady value
WOBBLE_PERIOD = 30.0  # seconds
REFERENCE_MEMORY = 16 * 2**20  # a container with neither memory limit nor request
CPU_LOW, CPU_HIGH = 0.02, 0.10  # of the CPU limit (or request)
REFERENCE_CPU_MILLIS = 100  # a container with neither CPU limit nor request


def _unit(*names: str) -> float:
    """A number in [0, 1] fixed by ``names``: the same pod gets the same usage every time."""
    digest = hashlib.sha256("/".join(names).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 0xFFFFFFFF


def _resources(spec: Mapping[str, Any], kind: str) -> tuple[str | None, str | None]:
    resources = spec.get("resources") or {}
    limit = (resources.get("limits") or {}).get(kind)
    request = (resources.get("requests") or {}).get(kind)
    return (None if limit is None else str(limit)), (None if request is None else str(request))


def memory_limit(spec: Mapping[str, Any]) -> int | None:
    """The container's memory limit in bytes (what the kernel OOM-kills it at), if it has one."""
    limit, _request = _resources(spec, "memory")
    return None if limit is None else memory_bytes(limit)


def steady_working_set(namespace: str, pod: str, spec: Mapping[str, Any]) -> int:
    """The working set the container settles at, in bytes (whole pages)."""
    limit, request = _resources(spec, "memory")
    given = limit or request
    reference = memory_bytes(given) if given else REFERENCE_MEMORY
    fraction = STEADY_LOW + (STEADY_HIGH - STEADY_LOW) * _unit(namespace, pod, spec["name"])
    return int(reference * fraction) // PAGE * PAGE


def _wobble(running_for: float, *names: str) -> float:
    phase = 2 * math.pi * _unit("phase", *names)
    return math.sin(2 * math.pi * running_for / WOBBLE_PERIOD + phase)


def working_set(namespace: str, pod: str, spec: Mapping[str, Any], running_for: float) -> int:
    """The working set ``running_for`` seconds into the run, without a climb: the steady value
    with its wobble, in whole pages."""
    steady = steady_working_set(namespace, pod, spec)
    moved = steady * (1 + WOBBLE * _wobble(running_for, namespace, pod, spec["name"]))
    return int(moved) // PAGE * PAGE


def nanocores(namespace: str, pod: str, spec: Mapping[str, Any], running_for: float) -> int:
    """The CPU the container burns ``running_for`` seconds into the run, in nanocores."""
    limit, request = _resources(spec, "cpu")
    given = limit or request
    millis = cpu_millis(given) if given else REFERENCE_CPU_MILLIS
    fraction = CPU_LOW + (CPU_HIGH - CPU_LOW) * _unit("cpu", namespace, pod, spec["name"])
    wobble = 1 + 0.1 * _wobble(running_for, "cpu", namespace, pod, spec["name"])
    return max(1, int(millis * 1_000_000 * fraction * wobble))


@dataclass(frozen=True)
class Climb:
    """A working set rising in a straight line from ``start_bytes`` (at monotonic time
    ``started``) to ``limit_bytes``, reached ``seconds`` later: then the container is
    OOM-killed."""

    started: float
    start_bytes: int
    limit_bytes: int
    seconds: float

    def at(self, now: float) -> int:
        """The working set at monotonic time ``now``, in whole pages, never past the limit."""
        done = 1.0 if self.seconds <= 0 else min(1.0, max(0.0, (now - self.started) / self.seconds))
        value = self.start_bytes + (self.limit_bytes - self.start_bytes) * done
        return min(self.limit_bytes, int(value) // PAGE * PAGE)
