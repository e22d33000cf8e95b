"""Moving a running island server's clock: its libfaketime file, written through exec.

The offset is written as ``+N``/``-N`` seconds (never ``@date`` on a running server, see
``bot.domain.island_clock``), validated first and moved into place atomically (libfaketime must
never read a half-written file); then ``date +%s`` read through exec must show the expected
time (within a few seconds), or the change is reported as failed.
"""

from __future__ import annotations

import shlex
import time

from bot.domain.island_clock import faketime_relative, valid_relative_content
from bot.domain.time_source import Clock
from bot.infra.kubernetes.client import Kube
from bot.words import clock_text

CLOCK_FILE_ENV = "FAKETIME_TIMESTAMP_FILE"
VERIFY_TOLERANCE_S = 5
VERIFY_WITHIN_S = 15.0
_WRITE = 'printf "%s\\n" "$1" > "$2.islandbot-tmp" && mv -f "$2.islandbot-tmp" "$2"'


class ClockWriteError(Exception):
    """The clock file could not be written or the clock did not move as expected; the
    message is safe to show."""


def write_clock_file(kube: Kube, pod: str, offset_s: int, *, container: str, clock: Clock) -> None:
    """Move the server's clock to ``offset_s`` from real time and check that it moved.
    Raises ``ClockWriteError`` (or a ``KubeError`` from the cluster)."""
    content = faketime_relative(offset_s)
    if not valid_relative_content(content):  # bad content can kill the server
        raise ClockWriteError(clock_text.clock_content_refused(content))
    view = kube.get_pod(pod)
    if view is None:
        raise ClockWriteError(clock_text.CLOCK_POD_GONE)
    path = view.server_env.get(CLOCK_FILE_ENV)
    if not path:
        raise ClockWriteError(clock_text.clock_file_env_missing(CLOCK_FILE_ENV))
    result = kube.exec(pod, container=container, command=["sh", "-c", _WRITE, "sh", content, path])
    if result.exit_code != 0:
        raise ClockWriteError(
            clock_text.clock_write_failed(
                result.exit_code, shlex.quote(result.stderr.strip()[:200])
            )
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
    raise ClockWriteError(clock_text.clock_not_moved(seen, offset_s))
