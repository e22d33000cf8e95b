"""Carrying out one island's decision: the pod deleted, the new state, its audit entry and its
notices written in one guarded transaction, then the ports freed. A pod to create is recorded
before it is sent and rendered from what was recorded, so the pod and its row always agree."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain.errors import Conflict, IslandbotError
from bot.domain.lifecycle_rules import Decision, Failure, FailureKind, Notice
from bot.domain.podspec import REGISTER_TOKEN_ENV, IslandParams
from bot.domain.records import SYSTEM_ACTOR, Audit, IslandChange, IslandRecord
from bot.domain.registration import token_hash
from bot.domain.states import IslandState
from bot.infra import metrics
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError, KubeRefused
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.kubernetes.views import PodView
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.reconcile_rows import ReconcileRows
from bot.words import notices

log = logging.getLogger(__name__)


# ``Executor.map``'s shape: a function carried out over items, the answers in their order
Each = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


def _with_token(change: IslandChange, token: str) -> IslandChange:
    """The change that records a create: the token's hash, and no earlier create's error."""
    return IslandChange(
        {**change.updates, "registration_token_hash": token_hash(token), "create_error": None},
        change.notices,
        change.audit,
    )


def _carried(view: PodView, token: str) -> str:
    """The hash of the token the created pod carries: a create that found the pod an earlier
    attempt made answers with that pod, whose token is the one its seed will send."""
    return token_hash(view.server_env.get(REGISTER_TOKEN_ENV) or token)


def refused(message: str) -> Decision:
    """The cluster refused the island's pod (400, 403, 422): retrying will not help. No pod
    exists, so the island is over and its ports are freed."""
    failure = Failure(FailureKind.POD_REFUSED, {"message": message})
    return Decision(
        state=IslandState.STOPPED,
        failure=failure,
        notices=((Notice.FAILED, {"kind": FailureKind.POD_REFUSED.value, "message": message}),),
        release_ports=True,
    )


class Applier:
    def __init__(
        self,
        *,
        rows: ReconcileRows,
        kube: Kube,
        templates: TemplateSet,
        allocator: Allocator,
        api_url: str,
    ) -> None:
        self.rows = rows
        self.kube = kube
        self.templates = templates
        self.allocator = allocator
        self.api_url = api_url

    def apply_many(
        self, items: Sequence[tuple[IslandRecord, Decision]], now: datetime, each: Each
    ) -> tuple[int, list[tuple[int, Exception]]]:
        """Decisions that create no pod, for many islands (a tick's): the pods to delete
        deleted through ``each`` (a bounded pool's ``map``), then every change written in one
        transaction, each guarded on its own, then the freed ports released. An island whose
        pod could not be deleted changes nothing. Returns how many were written and the
        islands that failed, with why."""
        deleting = [(island, decision) for island, decision in items if decision.delete_pod]
        if deleting:  # a pod deleted cannot be taken back: only while this replica leads
            self.rows.check_leading()

        def delete(item: tuple[IslandRecord, Decision]) -> Exception | None:
            try:
                self.kube.delete_pod(item[0].pod_name)
            except KubeError as exc:
                return exc
            return None

        failed = [
            (island.id, outcome)
            for (island, _), outcome in zip(deleting, each(delete, deleting), strict=True)
            if outcome is not None
        ]
        not_deleted = {island_id for island_id, _ in failed}
        writes = [(island, decision) for island, decision in items if island.id not in not_deleted]
        applied = self.rows.apply_many(
            [(island, self._change(island, decision, now)) for island, decision in writes]
        )
        for (island, decision), written in zip(writes, applied, strict=True):
            if written and decision.state == IslandState.READY:
                metrics.START_TO_READY.observe((now - island.created_at).total_seconds())
            if written and decision.release_ports:
                try:
                    self.release(island.id)
                except IslandbotError as exc:  # the database: the sweep releases them later
                    failed.append((island.id, exc))
        return sum(applied), failed

    def _change(self, island: IslandRecord, decision: Decision, now: datetime) -> IslandChange:
        updates: dict[str, Any] = dict(decision.updates)
        state = decision.state
        failure = decision.failure
        if failure is not None:  # shown to people as it is: worded here, once
            updates["failure_reason"] = notices.failure_text(
                failure, island_id=island.id, branch=island.branch
            )
        entry = None
        if state is not None:
            updates["state"] = state.value
            if state == IslandState.STOPPED:
                updates["stopped_at"] = now
            entry = Audit(  # the failure kept as data: its kind and details
                SYSTEM_ACTOR,
                f"state:{state.value}",
                island_id=island.id,
                detail={"from": island.state.value, **(failure.data() if failure else {})},
            )
        # a pool island is nobody's: what happens to it is told to no one (its keeper and
        # the audit log see it)
        told = () if island.pooled else decision.notices
        return IslandChange(updates, told, entry)

    def create_many(
        self,
        items: Sequence[tuple[IslandRecord, Decision]],
        now: datetime,
        each: Each,
    ) -> tuple[int, list[tuple[int, Exception]]]:
        """Decisions to create a pod for many islands at once (a burst of starts): recorded
        in one transaction, sent through ``each`` (a bounded pool's ``map``), their answers
        recorded in one more. Each island's outcome is its own: one refused fails that island
        only; one that fails otherwise is noted and tried again next tick. Returns how many
        were recorded and the islands that failed, with why."""
        tokens = [secrets.token_urlsafe(24) for _ in items]
        recorded = [
            (island, _with_token(self._change(island, decision, now), token))
            for (island, decision), token in zip(items, tokens, strict=True)
        ]
        began = [
            (fresh, token)
            for fresh, token in zip(self.rows.begin_creates(recorded), tokens, strict=True)
            if fresh is not None  # the others moved on since the tick read them
        ]
        if began:  # a pod created cannot be taken back: only while this replica still leads
            self.rows.check_leading()  # (a pause since the recording write: the successor's)

        def send(item: tuple[IslandRecord, str]) -> PodView | Exception:
            fresh, token = item
            try:
                return self.kube.create_island_pod(self._pod(fresh, token, now))
            except (KubeError, IslandbotError) as exc:
                return exc

        created: dict[int, str] = {}
        refusals: list[tuple[IslandRecord, Decision]] = []
        failed: list[tuple[int, Exception]] = []
        for (fresh, token), outcome in zip(began, each(send, began), strict=True):
            if isinstance(outcome, KubeRefused):
                refusals.append((fresh, refused(str(outcome))))
            elif isinstance(outcome, Exception):
                failed.append((fresh.id, outcome))
                try:
                    self.rows.note_create_error(fresh.id, str(outcome))
                except IslandbotError:  # the database: the next attempt notes its own
                    log.warning("island %d: its create error not noted", fresh.id)
            else:
                created[fresh.id] = _carried(outcome, token)
        self.rows.created_many(now, created)
        if refusals:  # those islands are over: written together, their ports freed
            failed += self.apply_many(refusals, now, each)[1]
        return len(began), failed

    def _pod(self, island: IslandRecord, token: str, now: datetime) -> dict[str, Any]:
        clock = (now + timedelta(seconds=island.clock_offset_s)).strftime("%Y-%m-%d %H:%M:%S")
        params = IslandParams(
            island_id=island.id,
            owner_id=island.owner_id,
            owner_name=island.owner_name,
            branch=island.branch,
            first_port=island.first_port,
            initial_clock=clock,
            registration_url=f"{self.api_url}/api/v1/islands/{island.id}/register",
            registration_token=token,
            clock_offset_s=island.clock_offset_s,
            chat_channel=island.chat_channel,
            chat_thread=island.chat_thread,
            pod_name=island.pod_name,
        )
        return self.templates.render(params, dict(island.overrides))

    def release(self, island_id: int) -> None:
        try:
            self.allocator.release(island_id)
        except Conflict:
            log.warning("island %d: ports not released, it is not stopped", island_id)
