"""What should happen to an island, decided from its row, its pod and a probe (pure).

``decide`` is the whole lifecycle: the reconcile tick fetches state, calls it for every live
island, and carries out the ``Decision`` (one database transaction per island: new state, audit
entry and the notices to send, so each transition is announced exactly once).

    requested -> creating -> scheduled -> running -> ready -> stopping -> stopped
    any live state -> failed (the pod is kept for its logs) -> stopping -> stopped
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.states import IslandState

S = IslandState
WAITING = frozenset({S.REQUESTED, S.CREATING, S.SCHEDULED, S.RUNNING})
PULL_ERRORS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)


class Notice(StrEnum):
    ANNOUNCE = "announce"  # the island's root message, posted first (written by the start)
    SCHEDULED = "scheduled"
    UNSCHEDULABLE = "unschedulable"  # still waiting; the scheduler's reason, told at once
    READY = "ready"
    FAILED = "failed"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    STOPPED = "stopped"
    # told when a person acts (written by the command, delivered like the others, in order)
    STOP_REQUESTED = "stop_requested"
    RESTARTING = "restarting"
    EXTENDED = "extended"
    CLOCK_REQUESTED = "clock_requested"  # someone else asks: the request, in the channel
    CLOCK_SHIFTED = "clock_shifted"
    CLOCK_FAILED = "clock_failed"
    # measured: its working set near its memory limit (``memory_watch``), told its owner once
    MEMORY_HIGH = "memory_high"
    # a start of a branch with a warm pool that got none (``pool.Miss``): why, and how long a
    # fresh island usually takes
    POOL_MISS = "pool_miss"


class FailureKind(StrEnum):
    UNSCHEDULABLE = "unschedulable"
    IMAGE_PULL = "image_pull"
    OOM_KILLED = "oom_killed"
    CRASHED = "crashed"
    EVICTED = "evicted"
    POD_DELETED = "pod_deleted"
    POD_DELETING = "pod_deleting"  # the cluster is deleting it (node lost, someone else)
    NOT_READY = "not_ready"
    NOT_ANSWERING = "not_answering"
    POD_REFUSED = "pod_refused"  # the API server rejected the rendered pod (400, 403, 422)
    POD_NOT_CREATED = "pod_not_created"  # creating it kept failing until create_timeout


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    detail: Mapping[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        """The failure as it is kept (the audit log): its kind and its details."""
        return {"failure": self.kind.value, "about": dict(self.detail)}


@dataclass(frozen=True)
class Limits:
    unschedulable_timeout: timedelta = timedelta(minutes=10)
    ready_timeout: timedelta = timedelta(minutes=10)
    image_pull_timeout: timedelta = timedelta(minutes=2)
    expiry_warning: timedelta = timedelta(minutes=30)
    probe_failures: int = 3  # consecutive failed probes of ours before a ready island fails
    pod_create_grace: timedelta = timedelta(seconds=30)  # a missing pod younger than this
    # may just not be listed yet
    create_timeout: timedelta = timedelta(minutes=5)  # a pod that cannot be created by then
    require_registration: bool = False  # ready also needs the island's own registration


@dataclass(frozen=True)
class IslandFacts:
    id: int
    state: IslandState
    created_at: datetime
    expires_at: datetime
    pod_requested_at: datetime | None  # when the pod create was sent (None: not yet)
    expiry_warned: bool = False
    unschedulable_told: str | None = None  # the scheduler message already announced
    probe_failures: int = 0
    restart_requested: bool = False  # its owner asked for a new pod (same id and ports)
    registered: bool = False  # its seed script registered it over the HTTP API
    create_error: str | None = None  # why its last pod create failed, if it did
    pod_seen: bool = False  # the cluster answered its pod's create, or bound it to a node
    creating_since: datetime | None = None  # when it went from requested to creating


@dataclass(frozen=True)
class ServerFacts:
    state: str  # waiting, running, terminated
    reason: str | None = None
    exit_code: int | None = None
    message: str | None = None


@dataclass(frozen=True)
class PodFacts:
    deleting: bool
    phase: str
    node: str | None
    host_ip: str | None
    unschedulable: str | None  # the scheduler's message while PodScheduled is False
    ready: bool
    server: ServerFacts | None
    evicted: str | None = None  # status.message of an evicted pod
    memory_limit: str | None = None
    memory_request: str | None = None


@dataclass(frozen=True)
class Decision:
    state: IslandState | None = None
    failure: Failure | None = None
    notices: tuple[tuple[Notice, Mapping[str, Any]], ...] = ()
    create_pod: bool = False
    delete_pod: bool = False
    release_ports: bool = False
    updates: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.state
            or self.notices
            or self.create_pod
            or self.delete_pod
            or self.release_ports
            or self.updates
        )


NOTHING = Decision()


def _fail(failure: Failure, *, delete: bool = False, **updates: Any) -> Decision:
    """Fail the island, keeping its pod (for its logs) unless ``delete``."""
    return Decision(
        state=S.STOPPING if delete else S.FAILED,
        failure=failure,
        notices=((Notice.FAILED, {"kind": failure.kind.value, **failure.detail}),),
        delete_pod=delete,
        updates=updates,
    )


def _gone(island: IslandFacts, failure: Failure | None) -> Decision:
    """The pod no longer exists: the island is over and its ports can be reused."""
    notices: tuple[tuple[Notice, Mapping[str, Any]], ...] = (
        ((Notice.FAILED, {"kind": failure.kind.value, **failure.detail}),)
        if failure
        else ((Notice.STOPPED, {}),)
    )
    return Decision(state=S.STOPPED, failure=failure, notices=notices, release_ports=True)


def decide(
    island: IslandFacts, pod: PodFacts | None, probe_ok: bool | None, now: datetime, limits: Limits
) -> Decision:
    """The next step for one live island. ``probe_ok`` is the result of the bot's TCP connect
    to its server port: this tick's for an island on its way to ready, for a ready island the
    one probe of it made since the last tick (None when it was not probed)."""
    state = island.state
    if state == S.STOPPED:
        return NOTHING

    # -- stopping: wait for the pod to be gone, then free the ports ------------------------------
    if state == S.STOPPING:
        if pod is None:
            return Decision(state=S.STOPPED, notices=((Notice.STOPPED, {}),), release_ports=True)
        return NOTHING if pod.deleting else Decision(delete_pod=True)

    # -- expiry applies to every other live state ------------------------------------------------
    if now >= island.expires_at:
        return Decision(
            state=S.STOPPING, notices=((Notice.EXPIRED, {}),), delete_pod=pod is not None
        )
    warn = None
    if not island.expiry_warned and now >= island.expires_at - limits.expiry_warning:
        warn = Decision(
            notices=((Notice.EXPIRING, {"expires_at": island.expires_at}),),
            updates={"expiry_warned_at": now},
        )

    if island.restart_requested:
        decision = _restart(pod)
    else:
        decision = _progress(island, pod, probe_ok, now, limits)
    if warn is None:
        return decision
    return Decision(
        decision.state,
        decision.failure,
        warn.notices + decision.notices,
        decision.create_pod,
        decision.delete_pod,
        decision.release_ports,
        {**decision.updates, **warn.updates},
    )


def _restart(pod: PodFacts | None) -> Decision:
    """A restart deletes the pod, waits for it to be gone, then starts over from REQUESTED
    with the same id and ports (the next tick creates the new pod)."""
    if pod is None:
        return Decision(
            state=S.REQUESTED,
            updates={
                "restart_requested_at": None,
                "pod_requested_at": None,
                "probe_failures": 0,
                "unschedulable_message": None,
                "failure_reason": None,
                "node": None,
                "host_ip": None,
                "scheduled_at": None,
                "ready_at": None,
                "registered_at": None,  # the new pod registers anew
                "registration": None,
                "create_error": None,
                "creating_since": None,
                "pod_created_at": None,
            },
        )
    return NOTHING if pod.deleting else Decision(delete_pod=True)


def _progress(  # noqa: PLR0911 - one early return per situation, in order
    island: IslandFacts, pod: PodFacts | None, probe_ok: bool | None, now: datetime, limits: Limits
) -> Decision:
    if island.state == S.REQUESTED:
        return Decision(
            state=S.CREATING,
            create_pod=pod is None,
            updates={"pod_requested_at": now, "creating_since": now},
        )
    if pod is None:
        return _pod_missing(island, now, limits)
    if pod.deleting:
        if island.state == S.FAILED:
            return Decision(state=S.STOPPING)
        return Decision(
            state=S.STOPPING,
            failure=Failure(FailureKind.POD_DELETING),
            notices=((Notice.FAILED, {"kind": FailureKind.POD_DELETING.value}),),
        )
    if island.state == S.FAILED:
        return NOTHING  # kept for inspection until stopped or expired
    broken = _broken(pod)
    if broken is not None:
        return _fail(broken)
    if island.state == S.READY:
        return _still_ready(island, probe_ok, limits)
    return _on_the_way(island, pod, probe_ok, now, limits)


def _pod_missing(island: IslandFacts, now: datetime, limits: Limits) -> Decision:
    if island.state == S.CREATING:
        recent = island.pod_requested_at is not None and (
            now - island.pod_requested_at < limits.pod_create_grace
        )
        if island.pod_seen:
            # created: missing from the list a moment later is lag; after that, deleted
            return NOTHING if recent else _gone(island, Failure(FailureKind.POD_DELETED))
        # No answer to the create yet: it failed, or the bot died between recording it and
        # learning the answer. Send it again (a create that did happen answers with the pod
        # it made) until the island has waited create_timeout, then fail it, freeing its ports.
        if now - (island.creating_since or island.created_at) >= limits.create_timeout:
            return _gone(
                island,
                Failure(
                    FailureKind.POD_NOT_CREATED,
                    {"message": island.create_error or "no answer from the cluster"},
                ),
            )
        return NOTHING if recent else Decision(create_pod=True, updates={"pod_requested_at": now})
    if island.state == S.FAILED:
        return _gone(island, None)
    return _gone(island, Failure(FailureKind.POD_DELETED))


def _broken(pod: PodFacts) -> Failure | None:
    """A pod the island cannot come back from: evicted, or its server exited."""
    if pod.evicted is not None:
        return Failure(FailureKind.EVICTED, {"message": pod.evicted})
    server = pod.server
    if server is None or server.state != "terminated":
        return None
    if server.reason == "OOMKilled":
        return Failure(FailureKind.OOM_KILLED, {"limit": pod.memory_limit})
    return Failure(FailureKind.CRASHED, {"exit_code": server.exit_code, "reason": server.reason})


def _still_ready(island: IslandFacts, probe_ok: bool | None, limits: Limits) -> Decision:
    """A ready island is judged by the bot's own probes of its server port alone: each failed
    probe counts one, an answer starts the count again, and a tick with no probe of it changes
    nothing. The pod's Ready condition (the kubelet's probe) is not counted: it may flap under
    load while the server answers, and a server that stops answering fails our probes too."""
    if probe_ok is None:
        return NOTHING
    if probe_ok:
        return Decision(updates={"probe_failures": 0}) if island.probe_failures else NOTHING
    failures = island.probe_failures + 1
    if failures >= limits.probe_failures:
        return _fail(
            Failure(FailureKind.NOT_ANSWERING, {"probes": failures}), probe_failures=failures
        )
    return Decision(updates={"probe_failures": failures})


def _on_the_way(
    island: IslandFacts, pod: PodFacts, probe_ok: bool | None, now: datetime, limits: Limits
) -> Decision:
    started = island.pod_requested_at or island.created_at
    waited = now - started
    if pod.node is None:
        return _unscheduled(island, pod, waited, limits)
    steps: list[tuple[Notice, Mapping[str, Any]]] = []
    updates: dict[str, Any] = {}
    state: IslandState | None = None
    if island.state == S.CREATING:
        state = S.SCHEDULED
        steps.append((Notice.SCHEDULED, {"node": pod.node}))
        updates.update(node=pod.node, host_ip=pod.host_ip, scheduled_at=now)
    server = pod.server
    failure: Failure | None = None
    if server is not None and server.state == "waiting" and server.reason in PULL_ERRORS:
        if waited >= limits.image_pull_timeout:
            failure = Failure(
                FailureKind.IMAGE_PULL, {"reason": server.reason, "message": server.message}
            )
    elif server is not None and server.state == "running":
        state = S.RUNNING if (state or island.state) == S.SCHEDULED else state
        if pod.ready and probe_ok and (island.registered or not limits.require_registration):
            state = S.READY
            steps.append((Notice.READY, {"host": pod.host_ip, "node": pod.node}))
            updates.update(ready_at=now, probe_failures=0)
    if failure is None and state != S.READY and waited >= limits.ready_timeout:
        failure = Failure(FailureKind.NOT_READY, {"waited_s": int(waited.total_seconds())})
    if failure is not None:
        steps.append((Notice.FAILED, {"kind": failure.kind.value, **failure.detail}))
        return Decision(state=S.FAILED, failure=failure, notices=tuple(steps), updates=updates)
    if state is None and not steps:
        return NOTHING
    return Decision(state=state, notices=tuple(steps), updates=updates)


def _unscheduled(island: IslandFacts, pod: PodFacts, waited: timedelta, limits: Limits) -> Decision:
    if pod.unschedulable is None:
        return NOTHING
    if waited >= limits.unschedulable_timeout:
        return _fail(
            Failure(
                FailureKind.UNSCHEDULABLE,
                {
                    "message": pod.unschedulable,
                    "memory": pod.memory_request,
                    "waited_s": int(waited.total_seconds()),
                },
            ),
            delete=True,
        )
    if pod.unschedulable == island.unschedulable_told:
        return NOTHING
    return Decision(
        notices=(
            (Notice.UNSCHEDULABLE, {"message": pod.unschedulable, "memory": pod.memory_request}),
        ),
        updates={"unschedulable_message": pod.unschedulable},
    )
