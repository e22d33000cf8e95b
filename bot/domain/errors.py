"""The project's exception hierarchy.

``UserError`` and its children carry text that is safe to show in chat as is. Everything else is
for logs: the user sees a generic apology while the details go to the log.
"""

from __future__ import annotations


class IslandbotError(Exception):
    """Base of every error islandbot raises on purpose."""


class UserError(IslandbotError):
    """A refusal or failure whose message is written for, and safe to show to, the user."""


class QuotaExceeded(UserError):
    def __init__(self, message: str, *, island_ids: list[int]) -> None:
        super().__init__(message)
        self.island_ids = island_ids


class PortsExhausted(UserError):
    def __init__(self, message: str, *, live_islands: int) -> None:
        super().__init__(message)
        self.live_islands = live_islands


class NotFound(UserError):
    pass


class Conflict(UserError):
    """The action does not fit the island's current state."""


class DatabaseError(IslandbotError):
    """The database failed in a way that retrying this operation will not fix now."""


class LayoutConflict(IslandbotError):
    """The configured port layout cannot be applied to the port blocks in the database."""


class Forbidden(UserError):
    """The caller may not do this (wrong channel, not the owner or an admin)."""
