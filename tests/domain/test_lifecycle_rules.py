"""The lifecycle rules as pure functions: (island, pod, probe, now) -> decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.domain.lifecycle_rules import (
    NOTHING,
    FailureKind,
    IslandFacts,
    Limits,
    PodFacts,
    ServerFacts,
    decide,
)
from bot.domain.states import IslandState as S

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = Limits(
    unschedulable_timeout=timedelta(minutes=5),
    ready_timeout=timedelta(minutes=5),
    image_pull_timeout=timedelta(minutes=1),
    expiry_warning=timedelta(minutes=30),
    probe_failures=3,
    pod_create_grace=timedelta(seconds=30),
)


def island(state: S = S.CREATING, **kw: object) -> IslandFacts:
    values: dict[str, object] = {
        "id": 269,
        "state": state,
        "created_at": T0,
        "expires_at": T0 + timedelta(hours=8),
        "pod_requested_at": T0,
    }
    values.update(kw)
    return IslandFacts(**values)  # type: ignore[arg-type]


def pod(**kw: object) -> PodFacts:
    values: dict[str, object] = {
        "deleting": False,
        "phase": "Running",
        "node": "dev-1",
        "host_ip": "127.0.0.2",
        "unschedulable": None,
        "ready": True,
        "server": ServerFacts("running"),
        "memory_limit": "2048Mi",
        "memory_request": "1500Mi",
    }
    values.update(kw)
    return PodFacts(**values)  # type: ignore[arg-type]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def kinds(decision) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.value for n, _ in decision.notices]


def test_requested_creates_the_pod_once() -> None:
    d = decide(island(S.REQUESTED, pod_requested_at=None), None, None, at(0), LIMITS)
    assert (d.state, d.create_pod) == (S.CREATING, True)
    assert d.updates == {"pod_requested_at": at(0), "creating_since": at(0)}
    # the bot died after creating it: the pod is there, do not create again
    d = decide(island(S.REQUESTED, pod_requested_at=None), pod(node=None), None, at(0), LIMITS)
    assert (d.state, d.create_pod) == (S.CREATING, False)


def test_a_created_pod_not_listed_yet_is_waited_for_then_reported_deleted() -> None:
    created = island(pod_seen=True, creating_since=T0)
    assert decide(created, None, None, at(0.1), LIMITS) == NOTHING
    d = decide(created, None, None, at(1), LIMITS)
    assert (d.state, d.release_ports, kinds(d)) == (S.STOPPED, True, ["failed"])
    assert d.failure.kind == FailureKind.POD_DELETED  # type: ignore[union-attr]


def test_a_create_never_answered_is_sent_again_until_the_create_timeout() -> None:
    unanswered = island(creating_since=T0, create_error="etcdserver: request timed out")
    assert decide(unanswered, None, None, at(0.1), LIMITS) == NOTHING  # within the grace
    again = decide(unanswered, None, None, at(1), LIMITS)
    assert again.create_pod and again.updates == {"pod_requested_at": at(1)}
    lost = decide(island(pod_requested_at=None, creating_since=T0), None, None, at(0.1), LIMITS)
    assert lost.create_pod  # recorded, never sent (the bot died in between): send it
    late = decide(unanswered, None, None, at(5), LIMITS)
    assert (late.state, late.release_ports, late.create_pod) == (S.STOPPED, True, False)
    assert late.failure is not None and late.failure.kind == FailureKind.POD_NOT_CREATED
    assert late.failure.detail == {"message": "etcdserver: request timed out"}
    assert kinds(late) == ["failed"]


def test_scheduled_running_ready_in_one_tick_when_everything_is_there() -> None:
    d = decide(island(), pod(), True, at(0.5), LIMITS)
    assert d.state == S.READY
    assert kinds(d) == ["scheduled", "ready"]
    assert d.updates["node"] == "dev-1" and d.updates["host_ip"] == "127.0.0.2"
    assert d.notices[1][1] == {"host": "127.0.0.2", "node": "dev-1"}


def test_ready_waits_for_the_registration_when_it_is_required() -> None:
    strict = replace(LIMITS, require_registration=True)
    d = decide(island(S.RUNNING), pod(), True, at(0.5), strict)
    assert d == NOTHING  # port open, pod Ready: not registered yet
    d = decide(island(S.RUNNING, registered=True), pod(), True, at(0.6), strict)
    assert (d.state, kinds(d)) == (S.READY, ["ready"])
    late = decide(island(S.RUNNING), pod(), True, at(6), strict)
    assert late.failure is not None and late.failure.kind == FailureKind.NOT_READY
    assert decide(island(S.RUNNING), pod(), True, at(0.5), LIMITS).state == S.READY


def test_a_restart_forgets_the_old_registration() -> None:
    d = decide(island(S.READY, restart_requested=True, registered=True), None, None, at(1), LIMITS)
    assert d.state == S.REQUESTED
    assert d.updates["registered_at"] is None and d.updates["registration"] is None


def test_step_by_step() -> None:
    d = decide(
        island(),
        pod(server=ServerFacts("waiting", "ContainerCreating"), ready=False),
        None,
        at(0.1),
        LIMITS,
    )
    assert (d.state, kinds(d)) == (S.SCHEDULED, ["scheduled"])
    d = decide(island(S.SCHEDULED), pod(ready=False), None, at(0.2), LIMITS)
    assert (d.state, kinds(d)) == (S.RUNNING, [])
    # Ready in Kubernetes is not enough: the bot's own TCP probe must succeed too
    assert decide(island(S.RUNNING), pod(), False, at(0.3), LIMITS) == NOTHING
    d = decide(island(S.RUNNING), pod(), True, at(0.4), LIMITS)
    assert (d.state, kinds(d)) == (S.READY, ["ready"])
    assert decide(island(S.READY), pod(), True, at(1), LIMITS) == NOTHING


def test_unschedulable_is_told_at_once_then_fails_after_the_limit() -> None:
    message = "0/3 nodes are available: 1 Insufficient memory."
    waiting = pod(node=None, host_ip=None, unschedulable=message, ready=False, server=None)
    d = decide(island(), waiting, None, at(0.1), LIMITS)
    assert kinds(d) == ["unschedulable"] and d.state is None
    assert d.updates == {"unschedulable_message": message}
    told = island(unschedulable_told=message)
    assert decide(told, waiting, None, at(1), LIMITS) == NOTHING  # not told twice
    changed = replace(waiting, unschedulable="0/3 nodes are available: 3 Too many pods.")
    assert kinds(decide(told, changed, None, at(1), LIMITS)) == ["unschedulable"]
    d = decide(told, waiting, None, at(5), LIMITS)
    assert (d.state, d.delete_pod, kinds(d)) == (S.STOPPING, True, ["failed"])
    assert d.failure.detail["message"] == message  # type: ignore[union-attr]


def test_image_pull_failure_after_its_grace() -> None:
    pulling = pod(
        server=ServerFacts("waiting", "ImagePullBackOff", message="not found"), ready=False
    )
    assert decide(island(S.SCHEDULED), pulling, None, at(0.5), LIMITS) == NOTHING
    d = decide(island(S.SCHEDULED), pulling, None, at(1), LIMITS)
    assert (d.state, kinds(d)) == (S.FAILED, ["failed"])
    assert d.failure.kind == FailureKind.IMAGE_PULL  # type: ignore[union-attr]
    assert not d.delete_pod  # failed islands keep their pod


def test_oom_crash_and_eviction_fail_and_keep_the_pod() -> None:
    oom = pod(server=ServerFacts("terminated", "OOMKilled", 137), ready=False)
    d = decide(island(S.READY), oom, False, at(10), LIMITS)
    assert (d.state, d.delete_pod) == (S.FAILED, False)
    assert d.failure.kind == FailureKind.OOM_KILLED  # type: ignore[union-attr]
    assert d.notices[0][1]["limit"] == "2048Mi"
    crash = pod(server=ServerFacts("terminated", "Error", 3), ready=False)
    d = decide(island(S.RUNNING), crash, None, at(1), LIMITS)
    assert d.failure.detail["exit_code"] == 3  # type: ignore[union-attr]
    evicted = pod(
        phase="Failed",
        evicted="The node was low on resource: memory.",
        server=ServerFacts("terminated", "Error", 137),
        ready=False,
    )
    d = decide(island(S.READY), evicted, None, at(10), LIMITS)
    assert d.failure.kind == FailureKind.EVICTED  # type: ignore[union-attr]


def test_a_failed_island_is_quiet_until_its_pod_goes() -> None:
    failed = island(S.FAILED)
    oom = pod(server=ServerFacts("terminated", "OOMKilled", 137), ready=False)
    assert decide(failed, oom, None, at(20), LIMITS) == NOTHING
    d = decide(failed, None, None, at(21), LIMITS)
    assert (d.state, d.release_ports, kinds(d)) == (S.STOPPED, True, ["stopped"])


def test_a_ready_island_that_stops_answering() -> None:
    d = decide(island(S.READY), pod(), False, at(10), LIMITS)
    assert d == replace(NOTHING, updates={"probe_failures": 1})
    d = decide(island(S.READY, probe_failures=1), pod(), True, at(10), LIMITS)
    assert d.updates == {"probe_failures": 0}
    d = decide(island(S.READY, probe_failures=2), pod(), False, at(10), LIMITS)
    assert (d.state, kinds(d)) == (S.FAILED, ["failed"])
    assert d.failure.kind == FailureKind.NOT_ANSWERING  # type: ignore[union-attr]
    # not probed this tick: nothing to conclude
    assert decide(island(S.READY, probe_failures=2), pod(), None, at(10), LIMITS) == NOTHING


def test_ready_islands_count_failed_probes_not_ticks() -> None:
    """The counter moves only on a probe of the bot's: a tick with no probe (None) leaves it as
    it is, whatever the pod's Ready condition says; a failed probe adds one; an answer resets."""
    for ready in (True, False):
        unready = pod(ready=ready)
        assert decide(island(S.READY), unready, None, at(10), LIMITS) == NOTHING
        assert decide(island(S.READY, probe_failures=2), unready, None, at(10), LIMITS) == NOTHING
        assert decide(island(S.READY), unready, True, at(10), LIMITS) == NOTHING
        d = decide(island(S.READY, probe_failures=2), unready, True, at(10), LIMITS)
        assert d == replace(NOTHING, updates={"probe_failures": 0})
        d = decide(island(S.READY, probe_failures=1), unready, False, at(10), LIMITS)
        assert d == replace(NOTHING, updates={"probe_failures": 2})


def test_a_dead_server_fails_after_n_probes_however_many_ticks_run_between() -> None:
    """Ticks every second, probes every fifth tick, threshold 3: the island fails at the third
    failed probe (about 15 s), and the failure says 3 probes failed."""
    facts, tick, decision = island(S.READY), 0, NOTHING
    unready = pod(ready=False)  # the kubelet's own probe has given up too
    while decision.state is None:
        tick += 1
        assert tick < 100
        probe_ok = False if tick % 5 == 0 else None
        decision = decide(facts, unready, probe_ok, at(10 + tick / 60), LIMITS)
        facts = replace(facts, **decision.updates)
    assert (tick, decision.state) == (15, S.FAILED)
    assert decision.failure.detail == {"probes": 3}  # type: ignore[union-attr]
    assert decision.notices[0][1]["probes"] == 3


def test_not_ready_within_the_limit() -> None:
    slow = pod(ready=False)
    assert decide(island(S.RUNNING), slow, False, at(4), LIMITS) == NOTHING
    d = decide(island(S.RUNNING), slow, False, at(5), LIMITS)
    assert d.failure.kind == FailureKind.NOT_READY  # type: ignore[union-attr]


def test_pod_deleted_or_deleting_behind_the_bots_back() -> None:
    d = decide(island(S.READY), None, None, at(10), LIMITS)
    assert (d.state, d.release_ports) == (S.STOPPED, True)
    assert d.failure.kind == FailureKind.POD_DELETED  # type: ignore[union-attr]
    d = decide(island(S.READY), pod(deleting=True), None, at(10), LIMITS)
    assert (d.state, d.release_ports, kinds(d)) == (S.STOPPING, False, ["failed"])


def test_stopping_waits_for_the_pod_and_re_sends_a_lost_delete() -> None:
    assert decide(island(S.STOPPING), pod(deleting=True), None, at(1), LIMITS) == NOTHING
    assert decide(island(S.STOPPING), pod(), None, at(1), LIMITS).delete_pod
    d = decide(island(S.STOPPING), None, None, at(2), LIMITS)
    assert (d.state, d.release_ports, kinds(d)) == (S.STOPPED, True, ["stopped"])


def test_expiry_warning_once_then_expiry() -> None:
    expires = T0 + timedelta(hours=1)
    d = decide(island(S.READY, expires_at=expires), pod(), True, at(29), LIMITS)
    assert d == NOTHING
    d = decide(island(S.READY, expires_at=expires), pod(), True, at(31), LIMITS)
    assert kinds(d) == ["expiring"] and d.updates == {"expiry_warned_at": at(31)}
    warned = island(S.READY, expires_at=expires, expiry_warned=True)
    assert decide(warned, pod(), True, at(40), LIMITS) == NOTHING
    d = decide(warned, pod(), True, at(60), LIMITS)
    assert (d.state, d.delete_pod, kinds(d)) == (S.STOPPING, True, ["expired"])
    # a failed island expires too, and so does one whose pod never came
    assert (
        decide(
            island(S.FAILED, expires_at=expires, expiry_warned=True), None, None, at(61), LIMITS
        ).state
        == S.STOPPING
    )


def test_stopped_islands_are_left_alone() -> None:
    assert decide(island(S.STOPPED), None, None, at(100), LIMITS) == NOTHING


def test_every_transition_notifies_at_most_once_per_kind() -> None:
    """Replaying a decision's effects on the facts never yields the same notice again."""
    facts = island(S.REQUESTED, pod_requested_at=None)
    timeline = [
        (None, None),
        (
            pod(
                node=None,
                server=None,
                ready=False,
                unschedulable="0/3 nodes: 1 Insufficient memory.",
            ),
            None,
        ),
        (pod(ready=False, server=ServerFacts("waiting", "ContainerCreating")), None),
        (pod(ready=False), None),
        (pod(), True),
        (pod(), True),
    ]
    seen: list[str] = []
    for minute, (p, probe) in enumerate(timeline):
        d = decide(facts, p, probe, at(minute * 0.1), LIMITS)
        seen += kinds(d)
        facts = replace(
            facts,
            state=d.state or facts.state,
            pod_requested_at=d.updates.get("pod_requested_at", facts.pod_requested_at),
            unschedulable_told=d.updates.get("unschedulable_message", facts.unschedulable_told),
        )
    assert seen == ["unschedulable", "scheduled", "ready"]
    assert facts.state == S.READY
