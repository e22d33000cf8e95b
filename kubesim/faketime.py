"""libfaketime's timestamp-file semantics, emulated for in-process island servers (pure).

Checked against libfaketime's documentation and source (see ``../shared/context.md``):

* ``YYYY-MM-DD HH:MM:SS``: the clock is frozen there;
* ``@YYYY-MM-DD HH:MM:SS``: starts there and ticks. The reference point is the moment the spec
  was read, unless ``FAKETIME_DONT_RESET=1``, in which case it is the process start, so the clock
  shows date + process uptime;
* ``+N`` / ``-N``: offset from the real clock in seconds, or with one unit suffix m, h, d, y;
* the file is re-read at most every ``FAKETIME_CACHE_DURATION`` seconds (default 10), and
  never twice within one second, even with 0 (observed with Debian's libfaketime 0.9.10);
* content that does not parse makes the faked process exit (here: ``FaketimeError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_UNITS = {"": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
_OFFSET = re.compile(r"^([+-]\d+(?:\.\d+)?)([mhdy]?)$")
_ABSOLUTE = re.compile(r"^(@?)(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})$")


class FaketimeError(Exception):
    """The spec does not parse: a real faked process would exit."""


@dataclass(frozen=True)
class Spec:
    kind: str  # "offset", "frozen", "start"
    value: float  # offset seconds, or epoch seconds of the given date


def parse_spec(text: str) -> Spec | None:
    """Parse file content; ``None`` for an absent file (real time). Raises FaketimeError."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line:
        raise FaketimeError("empty faketime specification")
    if m := _OFFSET.match(line):
        return Spec("offset", float(m.group(1)) * _UNITS[m.group(2)])
    if m := _ABSOLUTE.match(line):
        try:
            when = datetime.strptime(m.group(2), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError as exc:
            raise FaketimeError(f"invalid date in {line!r}") from exc
        return Spec("start" if m.group(1) else "frozen", when.timestamp())
    raise FaketimeError(f"could not parse faketime specification {line!r}")


class FakeClock:
    """The clock one faked process sees. ``read_file`` returns the file content or None."""

    def __init__(
        self,
        *,
        read_file: object,
        process_start: float,
        dont_reset: bool,
        cache_duration: float = 10.0,
    ) -> None:
        self._read = read_file
        self._process_start = process_start
        self._dont_reset = dont_reset
        self._cache = max(cache_duration, 1.0)
        self._spec: Spec | None = None
        self._spec_text: str | None = None
        self._read_at = float("-inf")
        self._reference = process_start

    def now(self, real_now: float) -> float:
        if real_now - self._read_at >= self._cache:
            self._refresh(real_now)
        spec = self._spec
        if spec is None:
            return real_now
        if spec.kind == "offset":
            return real_now + spec.value
        if spec.kind == "frozen":
            return spec.value
        return spec.value + (real_now - self._reference)

    def _refresh(self, real_now: float) -> None:
        self._read_at = real_now
        text = self._read()  # type: ignore[operator]
        if text == self._spec_text:
            return
        self._spec = None if text is None else parse_spec(text)
        self._spec_text = text
        self._reference = self._process_start if self._dont_reset else real_now
