"""Who may do what, by the chat's immutable user id (pure).

Anyone in an allowed channel may start islands and look at any island (list, status, logs,
capacity, help). Changing an island (stop, restart, extend) is for its owner and the admins.
Buttons are clicked by anyone who sees the message, so they are checked the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    EXTEND = "extend"
    LIST = "list"
    STATUS = "status"
    LOGS = "logs"
    CAPACITY = "capacity"
    BOARD = "board"
    POOL = "pool"  # looking at the warm pools (steering them is for admins: PoolKeeper)
    HELP = "help"


OWNER_ONLY: frozenset[Action] = frozenset({Action.STOP, Action.RESTART, Action.EXTEND})


@dataclass(frozen=True)
class Policy:
    admins: frozenset[str] = frozenset()
    allowed_channels: frozenset[str] = frozenset()  # empty: every channel

    def channel_allowed(self, channel: str | None) -> bool:
        """Commands come from allowed channels (direct messages included only when listed);
        App Home buttons (``channel`` None) are checked per island instead."""
        if not self.allowed_channels or channel is None:
            return True
        return channel in self.allowed_channels

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def may(self, user_id: str, action: Action, *, owner_id: str | None = None) -> bool:
        if action not in OWNER_ONLY:
            return True
        return user_id == owner_id or self.is_admin(user_id)

    def who_may(self, action: Action, owner_id: str) -> Sequence[str]:
        """The user ids allowed to do ``action`` to an island of ``owner_id`` (for refusals)."""
        if action not in OWNER_ONLY:
            return ()
        return [owner_id, *sorted(self.admins - {owner_id})]
