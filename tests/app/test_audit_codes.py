"""The audit log keeps codes and data, never sentences (issue 21): a refusal is kept as its
``Refusal`` code and details, an island's failure as its ``FailureKind`` and details, a clock
change not made as its refusal or fault; the words layer makes the sentence from what is kept
(the very sentence the person was told), so the log reads in any language.

SQLite/MariaDB, kubesim over real HTTP (the ``world`` of ``conftest``), the real use cases; the
rows are read back as stored."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.app.clock_actions import ClockActions
from bot.app.island_actions import ActionSettings, IslandActions
from bot.domain.errors import Conflict, Forbidden, Refusal, UserError
from bot.domain.island_clock import When, WhenKind
from bot.domain.lifecycle_rules import Failure, FailureKind
from bot.domain.permissions import Policy
from bot.domain.records import Caller
from bot.infra.storage.database import Database
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.tables import AuditEntry, Island
from bot.words import notices, refusals
from tests.app.reconcile_world import World

ALICE, BOB = Caller("U0ALICE", "alice"), Caller("U0BOB", "bob")
DAY = 86400


def actions(world: World) -> IslandActions:
    return IslandActions(
        db=world.db,
        allocator=world.allocator,
        templates=world.templates,
        kube=world.kube,
        policy=Policy(),
        settings=ActionSettings(max_ttl=timedelta(days=2)),
        clock=world.clock,
    )


def clocks(world: World) -> ClockActions:
    return ClockActions(
        db=world.db, kube=world.kube, policy=Policy(), server_container="server", clock=world.clock
    )


def audited(db: Database, island_id: int, action: str) -> list[Any]:
    with db.engine.connect() as conn:
        return list(
            conn.execute(
                select(AuditEntry)
                .where(AuditEntry.island_id == island_id, AuditEntry.action == action)
                .order_by(AuditEntry.id)
            ).all()
        )


def scheduled(world: World, island_id: int) -> None:
    world.db.run(
        lambda conn: conn.execute(
            update(Island).where(Island.id == island_id).values(state="scheduled")
        ),
        what="scheduled meanwhile",
    )


def told(detail: dict[str, Any]) -> str:
    """The sentence the words layer makes of a kept refusal."""
    return refusals.text(UserError(Refusal(detail["refusal"]), **detail["about"]))


def test_a_refused_change_is_kept_as_its_refusal_code_and_details(world: World) -> None:
    island_id = world.start(ttl=timedelta(hours=8))
    with pytest.raises(Forbidden) as not_hers:
        actions(world).stop(BOB, island_id)
    with pytest.raises(UserError) as too_far:
        actions(world).extend(ALICE, island_id, timedelta(days=3))

    (stop,) = audited(world.db, island_id, "stop")
    assert (stop.actor, stop.outcome) == ("U0BOB", "refused")
    assert stop.detail == {
        "refusal": "not_allowed",
        "about": {"action": "stop", "island_id": island_id, "who": ["U0ALICE"]},
    }
    assert told(stop.detail) == refusals.text(not_hers.value)

    (extend,) = audited(world.db, island_id, "extend")
    assert (extend.actor, extend.outcome) == ("U0ALICE", "refused")
    room = extend.detail["about"]["room_s"]
    assert extend.detail == {
        "refusal": "extend_too_far",
        "about": {"island_id": island_id, "max_ttl_s": 2 * DAY, "room_s": room},
    }
    assert 2 * DAY - 8 * 3600 - 60 < room <= 2 * DAY - 8 * 3600  # a number, not words
    assert told(extend.detail) == refusals.text(too_far.value)


def test_a_refused_clock_shift_is_kept_as_its_refusal_code_and_details(world: World) -> None:
    island_id = world.start()
    with pytest.raises(UserError) as refused:
        clocks(world).shift(ALICE, island_id, When(WhenKind.RELATIVE, 20000 * DAY))
    (shift,) = audited(world.db, island_id, "clock:shift")
    assert shift.outcome == "refused"
    assert shift.detail == {
        "refusal": "clock_out_of_bounds",
        "about": {"island_id": island_id, "bound_s": 3650 * DAY},
    }
    assert told(shift.detail) == refusals.text(refused.value)


def test_a_clock_change_not_made_is_kept_as_its_fault(world: World) -> None:
    """A ready island whose pod is gone: the clock file cannot be written."""
    island_id = world.start()
    world.db.run(
        lambda conn: conn.execute(
            update(Island).where(Island.id == island_id).values(state="ready")
        ),
        what="ready, its pod gone",
    )
    outcome = clocks(world).shift(ALICE, island_id, When(WhenKind.RELATIVE, DAY))
    assert outcome.request.state == "failed"
    (failed,) = audited(world.db, island_id, "clock:failed")
    assert failed.outcome == "error"
    assert failed.detail == {"failure": "pod_gone", "about": {}}
    assert outcome.request.failure_reason == "the island's pod is gone"  # still worded


def test_a_refused_clock_decision_is_kept_as_its_refusal(world: World) -> None:
    island_id = world.start()
    bob = clocks(world).shift(BOB, island_id, When(WhenKind.RELATIVE, DAY))
    scheduled(world, island_id)
    with pytest.raises(Conflict) as refused:
        clocks(world).decide(ALICE, bob.request.id, approve=True)
    with world.db.engine.connect() as conn:
        (decide,) = conn.execute(select(AuditEntry).where(AuditEntry.action == "clock:decide"))
    assert (decide.actor, decide.outcome) == ("U0ALICE", "refused")
    assert decide.detail == {
        "refusal": "clock_not_now",
        "about": {"island_id": island_id, "state": "scheduled"},
    }
    assert told(decide.detail) == refusals.text(refused.value)


def test_a_clock_change_refused_once_applied_is_kept_as_its_refusal(world: World) -> None:
    """Approved, then carried out by the leader's resume once the island is no longer ready."""
    island_id = world.start()
    bob = clocks(world).shift(BOB, island_id, When(WhenKind.RELATIVE, DAY))
    clocks(world).requests.decide(
        bob.request.id, by=ALICE.user_id, approve=True, check=lambda _r, _i: None
    )  # approved, its applier gone
    scheduled(world, island_id)
    world.clock.offset = timedelta(minutes=5)  # the leader sees it stuck
    clocks(world).resume_stuck()
    (failed,) = audited(world.db, island_id, "clock:failed")
    assert failed.detail == {
        "refusal": "clock_not_now",
        "about": {"island_id": island_id, "state": "scheduled"},
    }
    (request,) = clocks(world).history(island_id)
    assert request.state == "failed" and request.failure_reason == told(failed.detail)


def test_a_failed_island_is_kept_as_its_failure_kind_and_details(world: World) -> None:
    island_id = world.start()
    world.sim.fail_requests(r"/namespaces/islands/pods$", status=422, method="POST", count=1)
    world.until(lambda: world.state(island_id) == "stopped")
    (stopped,) = audited(world.db, island_id, "state:stopped")
    detail = stopped.detail
    assert set(detail) == {"from", "failure", "about"}
    assert detail["failure"] == "pod_refused" and set(detail["about"]) == {"message"}
    assert json.loads(json.dumps(detail)) == detail
    island = IslandStore(world.db).get(island_id)
    worded = notices.failure_text(
        Failure(FailureKind(detail["failure"]), detail["about"]),
        island_id=island_id,
        branch=island.branch,
    )
    assert worded == island.failure_reason  # the words make the same sentence from the codes
    assert worded.startswith("Kubernetes refused its pod")
