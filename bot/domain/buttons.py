"""The bot's buttons: what each one does and what its value carries (pure).

An island's buttons carry its id and the expiry the person saw (``"269:1767225600"``), so that
a double click of Extend is seen as one and a click on an old message cannot act on a newer
state by surprise; a clock request's buttons carry the request's id. Every chat adapter shows
them and hands a press back as (action, value).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from bot.domain.permissions import Action


class ButtonAction(StrEnum):
    STOP = "island_stop"
    EXTEND = "island_extend"
    LOGS = "island_logs"
    CLOCK_APPROVE = "clock_approve"
    CLOCK_REJECT = "clock_reject"


ISLAND_ACTIONS = frozenset({ButtonAction.STOP, ButtonAction.EXTEND, ButtonAction.LOGS})
# what pressing an island's button is, in the permissions' (and the audit log's) terms
ISLAND_BUTTON_ACTION: dict[str, Action] = {
    ButtonAction.STOP: Action.STOP,
    ButtonAction.EXTEND: Action.EXTEND,
    ButtonAction.LOGS: Action.LOGS,
}
CLOCK_ACTIONS = frozenset({ButtonAction.CLOCK_APPROVE, ButtonAction.CLOCK_REJECT})


def island_button_value(island_id: int, expires_at: datetime) -> str:
    return f"{island_id}:{int(expires_at.timestamp())}"


def parse_island_button(value: str) -> tuple[int, int] | None:
    """(island id, expiry seen as a Unix time), or None for a value the bot never made."""
    head, _, tail = value.partition(":")
    if not head.isascii() or not head.isdigit() or not tail.isascii() or not tail.isdigit():
        return None
    if len(head) > 10 or len(tail) > 12:
        return None
    return int(head), int(tail)


def parse_request_button(value: str) -> int | None:
    """The clock request's id, or None for a value the bot never made."""
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    return int(value)
