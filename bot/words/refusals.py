"""Why something was refused or not found: the text of every ``UserError``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.domain.durations import format_duration
from bot.words.formatting import island_ref


def quota_exceeded(*, limit: int, island_ids: Sequence[int]) -> str:
    refs = ", ".join(island_ref(i) for i in island_ids)
    return (
        f"You already have {len(island_ids)} live islands ({refs}); the limit is {limit} per "
        f"person. Stop one with `/island stop <id>` and try again."
    )


def ports_exhausted(*, port_range: str, live_islands: int) -> str:
    return (
        f"no free port block in {port_range}: {live_islands} islands live. "
        "Try again when an island has stopped, or ask an admin to widen the port range."
    )


def request_key_taken(*, request_key: str) -> str:
    return f"request {request_key!r} was already used by someone else; nothing was started."


def island_not_found(island_id: int) -> str:
    return f"There is no island {island_ref(island_id)}."


def ports_still_needed(island_id: int, state: str) -> str:
    return (
        f"Island {island_ref(island_id)} is {state}: its ports are freed only once it is "
        "stopped and its pod is gone."
    )


def channel_not_allowed(allowed: Sequence[str]) -> str:
    channels = ", ".join(f"<#{c}>" for c in allowed)
    return f"islandbot works in {channels} only. Run the command there."


def not_allowed(action: str, island_id: int, who: Sequence[str]) -> str:
    people = ", ".join(f"<@{u}>" for u in who)
    return f"Only its owner or an admin may {action} island {island_ref(island_id)}: {people}."


def already_stopped(island_id: int) -> str:
    return f"Island {island_ref(island_id)} is already stopped."


def cannot_restart(island_id: int, state: str) -> str:
    return f"Island {island_ref(island_id)} is {state}; start a new one instead."


def cannot_extend(island_id: int, state: str) -> str:
    return f"Island {island_ref(island_id)} is {state}; there is nothing left to extend."


def extend_too_far(island_id: int, *, max_ttl: timedelta, room: timedelta) -> str:
    return (
        f"Island {island_ref(island_id)} may live at most {format_duration(max_ttl)} from now; "
        f"it can be extended by {format_duration(room)} at most."
    )


def no_logs(island_id: int, state: str) -> str:
    return f"Island {island_ref(island_id)} is {state}: it has no pod to read logs from."


def logs_unavailable(island_id: int, *, previous: bool) -> str:
    which = "its previous run's log" if previous else "its log"
    return (
        f"Could not read {which} for island {island_ref(island_id)} (the server may not have "
        "started yet, or has never restarted). Try again in a moment."
    )


def clock_request_not_found(request_id: int) -> str:
    return f"There is no clock request {request_id}."


def clock_not_now(island_id: int, state: str) -> str:
    return (
        f"Island {island_ref(island_id)} is {state}: its clock can be moved before its pod is "
        "created or once it is ready."
    )


def clock_out_of_bounds(island_id: int, bound: timedelta) -> str:
    return (
        f"Island {island_ref(island_id)}'s clock may be at most {format_duration(bound)} away "
        "from real time; nothing was changed."
    )


def clock_decide_not_allowed(island_id: int, who: Sequence[str]) -> str:
    people = ", ".join(f"<@{u}>" for u in who)
    return f"Only the owner of island {island_ref(island_id)} or an admin may decide: {people}."


def clock_request_closed(request_id: int, state: str) -> str:
    return f"Clock request {request_id} is already {state}."


def unknown_branch(branch: str, known: Sequence[str]) -> str:
    return f"There is no branch {branch!r}. Known branches: {', '.join(known)}."


REGISTRATION_UNAUTHORIZED = (
    "missing or wrong registration token: send `Authorization: Bearer <token>` with the token "
    "from the island's ISLANDBOT_REGISTER_TOKEN"
)


def registration_stopped(island_id: int, state: str) -> str:
    return f"island {island_ref(island_id)} is {state}: it cannot register any more"
