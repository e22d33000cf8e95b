"""Why something was refused or not found: the text of every ``UserError`` (``text``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from bot.domain.errors import Refusal, UserError
from bot.words.catalogue import _, p_
from bot.words.formatting import format_duration, island_ref, state_name

# A clock request's state once it is no longer pending (``already rejected``).
_REQUEST_STATES: dict[str, Callable[[], str]] = {
    "pending": lambda: p_("clock request state", "pending"),
    "applying": lambda: p_("clock request state", "applying"),
    "applied": lambda: p_("clock request state", "applied"),
    "rejected": lambda: p_("clock request state", "rejected"),
    "expired": lambda: p_("clock request state", "expired"),
    "superseded": lambda: p_("clock request state", "superseded"),
    "failed": lambda: p_("clock request state", "failed"),
}


def _island_state(state: str) -> str:
    return state_name(state)


def _request_state(state: str) -> str:
    words = _REQUEST_STATES.get(state)
    return words() if words else state


def quota_exceeded(*, limit: int, island_ids: Sequence[int]) -> str:
    return _(
        "You already have {count} live islands ({islands}); the limit is {limit} per "
        "person. Stop one with `/island stop &lt;id&gt;` and try again.",
        count=len(island_ids),
        islands=", ".join(island_ref(i) for i in island_ids),
        limit=limit,
    )


def ports_exhausted(*, port_range: str, live_islands: int) -> str:
    return _(
        "no free port block in {port_range}: {live_islands} islands live. "
        "Try again when an island has stopped, or ask an admin to widen the port range.",
        port_range=port_range,
        live_islands=live_islands,
    )


def request_key_taken(*, request_key: str) -> str:
    return _(
        "request {request_key} was already used by someone else; nothing was started.",
        request_key=repr(request_key),
    )


def island_not_found(island_id: int) -> str:
    return _("There is no island {island}.", island=island_ref(island_id))


def ports_still_needed(island_id: int, state: str) -> str:
    return _(
        "Island {island} is {state}: its ports are freed only once it is "
        "stopped and its pod is gone.",
        island=island_ref(island_id),
        state=_island_state(state),
    )


def channel_not_allowed(allowed: Sequence[str]) -> str:
    return _(
        "islandbot works in {channels} only. Run the command there.",
        channels=", ".join(f"<#{c}>" for c in allowed),
    )


def not_allowed(action: str, island_id: int, who: Sequence[str]) -> str:
    island = island_ref(island_id)
    people = ", ".join(f"<@{u}>" for u in who)
    if action == "stop":
        return _(
            "Only its owner or an admin may stop island {island}: {people}.",
            island=island,
            people=people,
        )
    if action == "restart":
        return _(
            "Only its owner or an admin may restart island {island}: {people}.",
            island=island,
            people=people,
        )
    if action == "extend":
        return _(
            "Only its owner or an admin may extend island {island}: {people}.",
            island=island,
            people=people,
        )
    return _(
        "Only its owner or an admin may {action} island {island}: {people}.",
        action=action,
        island=island,
        people=people,
    )


def already_stopped(island_id: int) -> str:
    return _("Island {island} is already stopped.", island=island_ref(island_id))


def cannot_restart(island_id: int, state: str) -> str:
    return _(
        "Island {island} is {state}; start a new one instead.",
        island=island_ref(island_id),
        state=_island_state(state),
    )


def cannot_extend(island_id: int, state: str) -> str:
    return _(
        "Island {island} is {state}; there is nothing left to extend.",
        island=island_ref(island_id),
        state=_island_state(state),
    )


def _duration(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


def extend_too_far(island_id: int, *, max_ttl_s: int, room_s: int) -> str:
    return _(
        "Island {island} may live at most {max_ttl} from now; "
        "it can be extended by {room} at most.",
        island=island_ref(island_id),
        max_ttl=_duration(max_ttl_s),
        room=_duration(room_s),
    )


def no_logs(island_id: int, state: str) -> str:
    return _(
        "Island {island} is {state}: it has no pod to read logs from.",
        island=island_ref(island_id),
        state=_island_state(state),
    )


def logs_unavailable(island_id: int, *, previous: bool) -> str:
    if previous:
        return _(
            "Could not read its previous run's log for island {island} (the server may not "
            "have started yet, or has never restarted). Try again in a moment.",
            island=island_ref(island_id),
        )
    return _(
        "Could not read its log for island {island} (the server may not have "
        "started yet, or has never restarted). Try again in a moment.",
        island=island_ref(island_id),
    )


def in_pool(island_id: int, branch: str) -> str:
    return _(
        "Island {island} is a warm {branch} island in its pool: it is nobody's "
        "until someone starts one (`/island start {branch}`). Admins steer the pool with "
        "`/island pool {branch} size=N` and `/island pool refresh {branch}`.",
        island=island_ref(island_id),
        branch=branch,
    )


def no_pool_admin(who: Sequence[str]) -> str:
    admins = ", ".join(f"<@{w}>" for w in who) or _("no one (ISLANDBOT_ADMINS is empty)")
    return _(
        "Only admins steer the warm pools: {admins}. `/island pool` shows them to anyone.",
        admins=admins,
    )


def pool_size(size: int, limit: int) -> str:
    return _("A warm pool holds 0 to {limit} islands, not {size}.", limit=limit, size=size)


def no_board() -> str:
    return _(
        "The team board is not set up on this islandbot (the team that runs it sets "
        "ISLANDBOT_BOARD_URL); `/island list` and `/island capacity` show the same here."
    )


def clock_request_not_found(request_id: int) -> str:
    return _("There is no clock request {request_id}.", request_id=request_id)


def clock_not_now(island_id: int, state: str) -> str:
    return _(
        "Island {island} is {state}: its clock can be moved before its pod is "
        "created or once it is ready.",
        island=island_ref(island_id),
        state=_island_state(state),
    )


def clock_out_of_bounds(island_id: int, bound_s: int) -> str:
    return _(
        "Island {island}'s clock may be at most {bound} away from real time; nothing was changed.",
        island=island_ref(island_id),
        bound=_duration(bound_s),
    )


def start_clock_out_of_bounds(bound_s: int) -> str:
    return _(
        "An island's clock may start at most {bound} away from real time; nothing was started.",
        bound=_duration(bound_s),
    )


def clock_decide_not_allowed(island_id: int, who: Sequence[str]) -> str:
    return _(
        "Only the owner of island {island} or an admin may decide: {people}.",
        island=island_ref(island_id),
        people=", ".join(f"<@{u}>" for u in who),
    )


def clock_request_closed(request_id: int, state: str) -> str:
    return _(
        "Clock request {request_id} is already {state}.",
        request_id=request_id,
        state=_request_state(state),
    )


def unknown_branch(branch: str, known: Sequence[str]) -> str:
    return _(
        "There is no branch {branch}. Known branches: {known}.",
        branch=repr(branch),
        known=", ".join(known),
    )


def registration_unauthorized() -> str:
    return _(
        "missing or wrong registration token: send `Authorization: Bearer <token>` with the "
        "token from the island's ISLANDBOT_REGISTER_TOKEN"
    )


def registration_stopped(island_id: int, state: str) -> str:
    return _(
        "island {island} is {state}: it cannot register any more",
        island=island_ref(island_id),
        state=_island_state(state),
    )


def override_not_key_value(pair: str) -> str:
    return _("{pair} is not KEY=VALUE", pair=repr(pair))


def override_not_allowed(key: str, branch: str, allowed: Sequence[str]) -> str:
    return _(
        "{key} cannot be set on {branch} islands; allowed: {allowed}",
        key=repr(key),
        branch=branch,
        allowed=", ".join(allowed) or p_("no override allowed", "none"),
    )


def override_bad_value(key: str) -> str:
    return _("the value of {key} must be one line of at most 500 characters", key=key)


def override_not_memory(value: str) -> str:
    return _(
        "{value} is not a memory size; use a number with Mi or Gi, e.g. 2Gi", value=repr(value)
    )


def override_memory_range(value: str, low: str, high: str) -> str:
    return _(
        "memory must be between {low} and {high}, not {value}", low=low, high=high, value=value
    )


def render_port_outside_range(first_port: int, block_size: int, port_range: str) -> str:
    return _(
        "--first-port {first_port}: the island's {block_size} ports must lie in "
        "ISLANDBOT_PORT_RANGE {port_range}",
        first_port=first_port,
        block_size=block_size,
        port_range=port_range,
    )


def render_bad_clock(clock: str) -> str:
    return _("--clock {clock}: expected YYYY-MM-DD HH:MM:SS", clock=repr(clock))


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
