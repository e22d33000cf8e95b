"""Moving a running island server's clock: its libfaketime file, written through exec.

The offset is written as ``+N``/``-N`` seconds (never ``@date`` on a running server, see
``bot.domain.island_clock``), validated first and moved into place atomically (libfaketime must
never read a half-written file); then ``date +%s`` read through exec must show the expected
time (within a few seconds), or the change is reported as failed.
"""

from __future__ import annotations

import time
from typing import Any

from bot.domain.island_clock import ClockFault, faketime_relative, valid_relative_content
from bot.domain.time_source import Clock
from bot.infra.kubernetes.client import Kube

CLOCK_FILE_ENV = "FAKETIME_TIMESTAMP_FILE"
VERIFY_TOLERANCE_S = 5
VERIFY_WITHIN_S = 15.0
_WRITE = 'printf "%s\\n" "$1" > "$2.islandbot-tmp" && mv -f "$2.islandbot-tmp" "$2"'


class ClockNotMoved(Exception):
    """The clock was not moved: a ``ClockFault`` and its details, as data (worded by
    ``bot.words.clock_text.clock_fault``); ``str`` is for logs."""

    def __init__(self, fault: ClockFault, **detail: Any) -> None:
        super().__init__(f"{fault.value} {detail}" if detail else fault.value)
        self.fault = fault
        self.detail = detail

    @classmethod
    def cluster(cls, error: Exception) -> ClockNotMoved:
        """The cluster failed the change (its own words kept as they are)."""
        return cls(ClockFault.CLUSTER, message=str(error))

    def data(self) -> dict[str, Any]:
        """The fault as it is kept (the audit log): its code and its details."""
        return {"failure": self.fault.value, "about": dict(self.detail)}


def write_clock_file(kube: Kube, pod: str, offset_s: int, *, container: str, clock: Clock) -> None:
    """Move the server's clock to ``offset_s`` from real time and check that it moved.
    Raises ``ClockNotMoved`` (or a ``KubeError`` from the cluster)."""
    content = faketime_relative(offset_s)
    if not valid_relative_content(content):  # bad content can kill the server
        raise ClockNotMoved(ClockFault.CONTENT_REFUSED, content=content)
    view = kube.get_pod(pod)
    if view is None:
        raise ClockNotMoved(ClockFault.POD_GONE)
    path = view.server_env.get(CLOCK_FILE_ENV)
    if not path:
        raise ClockNotMoved(ClockFault.ENV_MISSING, variable=CLOCK_FILE_ENV)
    result = kube.exec(pod, container=container, command=["sh", "-c", _WRITE, "sh", content, path])
    if result.exit_code != 0:
        raise ClockNotMoved(
            ClockFault.WRITE_FAILED, exit_code=result.exit_code, stderr=result.stderr.strip()[:200]
        )
    deadline = time.monotonic() + VERIFY_WITHIN_S
    seen = None
    while time.monotonic() < deadline:
        check = kube.exec(pod, container=container, command=["date", "+%s"])
        real = clock().timestamp()
        if check.exit_code == 0 and check.stdout.strip().lstrip("-").isdigit():
            seen = int(check.stdout.strip()) - real
            if abs(seen - offset_s) <= VERIFY_TOLERANCE_S:
                return
        time.sleep(0.5)
    raise ClockNotMoved(ClockFault.NOT_MOVED, seen_s=seen, expected_s=offset_s)
