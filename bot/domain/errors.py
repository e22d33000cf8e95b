"""The project's exception hierarchy.

``UserError`` and its children are refusals a person may be shown. They carry what happened
as data, a ``Refusal`` and its details, never a sentence: ``bot.words.refusals.text(error)``
words it (the same refusal can then be told in any language, wherever it was raised). The
details are plain data (numbers, strings, lists; durations in seconds), so a refusal is kept
as it is (``UserError.data``: the audit log) and worded again from what was kept.
``str(error)`` is for logs. Everything else is for logs only: the user sees a generic apology.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any


class IslandbotError(Exception):
    """Base of every error islandbot raises on purpose."""


class Refusal(StrEnum):
    """What a ``UserError`` says. Each one's details are named where it is raised."""

    ISLAND_NOT_FOUND = "island_not_found"  # island_id
    QUOTA_EXCEEDED = "quota_exceeded"  # limit, island_ids
    PORTS_EXHAUSTED = "ports_exhausted"  # port_range, live_islands
    REQUEST_KEY_TAKEN = "request_key_taken"  # request_key
    PORTS_STILL_NEEDED = "ports_still_needed"  # island_id, state
    CHANNEL_NOT_ALLOWED = "channel_not_allowed"  # allowed
    NOT_ALLOWED = "not_allowed"  # action, island_id, who
    ALREADY_STOPPED = "already_stopped"  # island_id
    CANNOT_RESTART = "cannot_restart"  # island_id, state
    CANNOT_EXTEND = "cannot_extend"  # island_id, state
    EXTEND_TOO_FAR = "extend_too_far"  # island_id, max_ttl_s, room_s
    NO_LOGS = "no_logs"  # island_id, state
    LOGS_UNAVAILABLE = "logs_unavailable"  # island_id, previous
    NO_BOARD = "no_board"  # (the board is not served here)
    IN_POOL = "in_pool"  # island_id, branch (a warm pool island: nobody's to change)
    NO_POOL_ADMIN = "no_pool_admin"  # who (admins only steer the warm pools)
    POOL_SIZE = "pool_size"  # size, limit
    CLOCK_REQUEST_NOT_FOUND = "clock_request_not_found"  # request_id
    CLOCK_NOT_NOW = "clock_not_now"  # island_id, state
    CLOCK_OUT_OF_BOUNDS = "clock_out_of_bounds"  # island_id, bound_s
    START_CLOCK_OUT_OF_BOUNDS = "start_clock_out_of_bounds"  # bound_s
    CLOCK_DECIDE_NOT_ALLOWED = "clock_decide_not_allowed"  # island_id, who
    CLOCK_REQUEST_CLOSED = "clock_request_closed"  # request_id, state
    UNKNOWN_BRANCH = "unknown_branch"  # branch, known
    OVERRIDE_NOT_KEY_VALUE = "override_not_key_value"  # pair
    OVERRIDE_NOT_ALLOWED = "override_not_allowed"  # key, branch, allowed
    OVERRIDE_BAD_VALUE = "override_bad_value"  # key
    OVERRIDE_NOT_MEMORY = "override_not_memory"  # value
    OVERRIDE_MEMORY_RANGE = "override_memory_range"  # value, low, high
    REGISTRATION_UNAUTHORIZED = "registration_unauthorized"
    REGISTRATION_STOPPED = "registration_stopped"  # island_id, state
    RENDER_PORT_OUTSIDE_RANGE = "render_port_outside_range"  # first_port, block_size, port_range
    RENDER_BAD_CLOCK = "render_bad_clock"  # clock


class UserError(IslandbotError):
    """A refusal or failure that is safe to show the user, once worded."""

    def __init__(self, refusal: Refusal, **detail: Any) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.refusal.value} {self.detail}" if self.detail else self.refusal.value

    def data(self) -> dict[str, Any]:
        """The refusal as it is kept (the audit log): its code and its details."""
        return {"refusal": self.refusal.value, "about": dict(self.detail)}


class NotFound(UserError):
    pass


class Conflict(UserError):
    """The action does not fit the island's current state."""


class Forbidden(UserError):
    """The caller may not do this (wrong channel, not the owner or an admin)."""


class Unauthorized(UserError):
    """A request without the right token (an island registering)."""


class QuotaExceeded(UserError):
    @property
    def island_ids(self) -> list[int]:
        return list(self.detail["island_ids"])


class PortsExhausted(UserError):
    @property
    def live_islands(self) -> int:
        return int(self.detail["live_islands"])


class UnknownBranch(UserError):
    pass


class BadOverride(UserError):
    """A ``set KEY=VALUE`` the branch does not allow."""


class DatabaseError(IslandbotError):
    """The database failed in a way that retrying this operation will not fix now."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached (refused, reset, timed out, pool exhausted). An expected
    fault: the database boundary logs it once when it begins and once when it ends, so callers
    log nothing more; the work waits (it is kept, and retried) until the database is back.
    ``down_for_s``: how long it has been unreachable, as far as this process saw."""

    def __init__(self, message: str, *, down_for_s: float = 0.0) -> None:
        super().__init__(message)
        self.down_for_s = down_for_s


class LayoutConflict(IslandbotError):
    """The configured port layout cannot be applied to the port blocks in the database."""


def log_failure(log: logging.Logger, message: str, exc: BaseException) -> None:
    """Log a failure the way its kind deserves: an unreachable database not at all (the
    database boundary told it once), another expected fault (an ``IslandbotError``: the cluster,
    the chat, a lost lease) as one warning line with its cause, anything else (a bug of ours)
    with its traceback. ``message`` says what was not done."""
    if isinstance(exc, DatabaseUnavailable):
        log.debug("%s: %s", message, exc)
    elif isinstance(exc, IslandbotError):
        log.warning("%s: %s", message, exc)
    else:
        log.error("%s", message, exc_info=exc)
