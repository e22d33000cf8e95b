"""Island states and the groups of them that the rest of the code asks about (pure)."""

from __future__ import annotations

from enum import StrEnum


class IslandState(StrEnum):
    REQUESTED = "requested"  # id and ports taken, pod not yet created
    CREATING = "creating"  # pod create sent
    SCHEDULED = "scheduled"  # bound to a node
    RUNNING = "running"  # server container running, not yet answering
    READY = "ready"  # answering on its server port
    FAILED = "failed"  # something went wrong; the pod is kept for inspection
    STOPPING = "stopping"  # pod delete sent
    STOPPED = "stopped"  # finished; its pod is gone and its ports may be reused


# An island is live until it is stopped: a failed island still holds its pod (the side
# container keeps it for its logs), its ports and a place in its owner's quota.
LIVE_STATES: frozenset[IslandState] = frozenset(IslandState) - {IslandState.STOPPED}
# Their values (as stored), in one order: a statement built on them reads the same in every
# process, whatever the hash seed.
LIVE_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in LIVE_STATES))
FINISHED_STATES: frozenset[IslandState] = frozenset({IslandState.STOPPED})
