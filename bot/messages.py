"""Every sentence islandbot shows a person, in one place, so wording and tone stay consistent."""

from __future__ import annotations

from collections.abc import Sequence


def island_ref(island_id: int) -> str:
    return f"#{island_id}"


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


def unknown_branch(branch: str, known: Sequence[str]) -> str:
    return f"There is no branch {branch!r}. Known branches: {', '.join(known)}."
