"""Why something was refused or not found: the text of every ``UserError`` (``text``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from bot.domain.durations import format_duration
from bot.domain.errors import Refusal, UserError
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


def _duration(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


def extend_too_far(island_id: int, *, max_ttl_s: int, room_s: int) -> str:
    return (
        f"Island {island_ref(island_id)} may live at most {_duration(max_ttl_s)} from now; "
        f"it can be extended by {_duration(room_s)} at most."
    )


def no_logs(island_id: int, state: str) -> str:
    return f"Island {island_ref(island_id)} is {state}: it has no pod to read logs from."


def logs_unavailable(island_id: int, *, previous: bool) -> str:
    which = "its previous run's log" if previous else "its log"
    return (
        f"Could not read {which} for island {island_ref(island_id)} (the server may not have "
        "started yet, or has never restarted). Try again in a moment."
    )


def in_pool(island_id: int, branch: str) -> str:
    return (
        f"Island {island_ref(island_id)} is a warm {branch} island in its pool: it is nobody's "
        f"until someone starts one (`/island start {branch}`). Admins steer the pool with "
        f"`/island pool {branch} size=N` and `/island pool refresh {branch}`."
    )


def no_pool_admin(who: Sequence[str]) -> str:
    admins = ", ".join(f"<@{w}>" for w in who) or "no one (ISLANDBOT_ADMINS is empty)"
    return f"Only admins steer the warm pools: {admins}. `/island pool` shows them to anyone."


def pool_size(size: int, limit: int) -> str:
    return f"A warm pool holds 0 to {limit} islands, not {size}."


def no_board() -> str:
    return (
        "The team board is not set up on this islandbot (the team that runs it sets "
        "ISLANDBOT_BOARD_URL); `/island list` and `/island capacity` show the same here."
    )


def clock_request_not_found(request_id: int) -> str:
    return f"There is no clock request {request_id}."


def clock_not_now(island_id: int, state: str) -> str:
    return (
        f"Island {island_ref(island_id)} is {state}: its clock can be moved before its pod is "
        "created or once it is ready."
    )


def clock_out_of_bounds(island_id: int, bound_s: int) -> str:
    return (
        f"Island {island_ref(island_id)}'s clock may be at most {_duration(bound_s)} away "
        "from real time; nothing was changed."
    )


def start_clock_out_of_bounds(bound_s: int) -> str:
    return (
        f"An island's clock may start at most {_duration(bound_s)} away from real time; "
        "nothing was started."
    )


def clock_decide_not_allowed(island_id: int, who: Sequence[str]) -> str:
    people = ", ".join(f"<@{u}>" for u in who)
    return f"Only the owner of island {island_ref(island_id)} or an admin may decide: {people}."


def clock_request_closed(request_id: int, state: str) -> str:
    return f"Clock request {request_id} is already {state}."


def unknown_branch(branch: str, known: Sequence[str]) -> str:
    return f"There is no branch {branch!r}. Known branches: {', '.join(known)}."


def registration_unauthorized() -> str:
    return (
        "missing or wrong registration token: send `Authorization: Bearer <token>` with the "
        "token from the island's ISLANDBOT_REGISTER_TOKEN"
    )


def registration_stopped(island_id: int, state: str) -> str:
    return f"island {island_ref(island_id)} is {state}: it cannot register any more"


def override_not_key_value(pair: str) -> str:
    return f"{pair!r} is not KEY=VALUE"


def override_not_allowed(key: str, branch: str, allowed: Sequence[str]) -> str:
    listing = ", ".join(allowed) or "none"
    return f"{key!r} cannot be set on {branch} islands; allowed: {listing}"


def override_bad_value(key: str) -> str:
    return f"the value of {key} must be one line of at most 500 characters"


def override_not_memory(value: str) -> str:
    return f"{value!r} is not a memory size; use a number with Mi or Gi, e.g. 2Gi"


def override_memory_range(value: str, low: str, high: str) -> str:
    return f"memory must be between {low} and {high}, not {value}"


def render_port_outside_range(first_port: int, block_size: int, port_range: str) -> str:
    return (
        f"--first-port {first_port}: the island's {block_size} ports must lie in "
        f"ISLANDBOT_PORT_RANGE {port_range}"
    )


def render_bad_clock(clock: str) -> str:
    return f"--clock {clock!r}: expected YYYY-MM-DD HH:MM:SS"


_TEXTS: dict[Refusal, Callable[..., str]] = {
    Refusal.ISLAND_NOT_FOUND: island_not_found,
    Refusal.QUOTA_EXCEEDED: quota_exceeded,
    Refusal.PORTS_EXHAUSTED: ports_exhausted,
    Refusal.REQUEST_KEY_TAKEN: request_key_taken,
    Refusal.PORTS_STILL_NEEDED: ports_still_needed,
    Refusal.CHANNEL_NOT_ALLOWED: channel_not_allowed,
    Refusal.NOT_ALLOWED: not_allowed,
    Refusal.ALREADY_STOPPED: already_stopped,
    Refusal.CANNOT_RESTART: cannot_restart,
    Refusal.CANNOT_EXTEND: cannot_extend,
    Refusal.EXTEND_TOO_FAR: extend_too_far,
    Refusal.NO_LOGS: no_logs,
    Refusal.LOGS_UNAVAILABLE: logs_unavailable,
    Refusal.NO_BOARD: no_board,
    Refusal.IN_POOL: in_pool,
    Refusal.NO_POOL_ADMIN: no_pool_admin,
    Refusal.POOL_SIZE: pool_size,
    Refusal.CLOCK_REQUEST_NOT_FOUND: clock_request_not_found,
    Refusal.CLOCK_NOT_NOW: clock_not_now,
    Refusal.CLOCK_OUT_OF_BOUNDS: clock_out_of_bounds,
    Refusal.START_CLOCK_OUT_OF_BOUNDS: start_clock_out_of_bounds,
    Refusal.CLOCK_DECIDE_NOT_ALLOWED: clock_decide_not_allowed,
    Refusal.CLOCK_REQUEST_CLOSED: clock_request_closed,
    Refusal.UNKNOWN_BRANCH: unknown_branch,
    Refusal.OVERRIDE_NOT_KEY_VALUE: override_not_key_value,
    Refusal.OVERRIDE_NOT_ALLOWED: override_not_allowed,
    Refusal.OVERRIDE_BAD_VALUE: override_bad_value,
    Refusal.OVERRIDE_NOT_MEMORY: override_not_memory,
    Refusal.OVERRIDE_MEMORY_RANGE: override_memory_range,
    Refusal.REGISTRATION_UNAUTHORIZED: registration_unauthorized,
    Refusal.REGISTRATION_STOPPED: registration_stopped,
    Refusal.RENDER_PORT_OUTSIDE_RANGE: render_port_outside_range,
    Refusal.RENDER_BAD_CLOCK: render_bad_clock,
}


def text(error: UserError) -> str:
    """What to tell the person whose request ``error`` refused."""
    return _TEXTS[error.refusal](**error.detail)
