"""Carrying out one island's decision: the pod deleted, the new state, its audit entry and its
notices written in one guarded transaction, then the ports freed. A pod to create is recorded
before it is sent and rendered from what was recorded, so the pod and its row always agree."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from bot.domain.errors import Conflict
from bot.domain.lifecycle_rules import Decision, Failure, FailureKind, Notice
from bot.domain.podspec import REGISTER_TOKEN_ENV, IslandParams
from bot.domain.records import SYSTEM_ACTOR, Audit, IslandChange, IslandRecord
from bot.domain.registration import token_hash
from bot.domain.states import IslandState
from bot.infra import metrics
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError, KubeRefused
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.reconcile_rows import ReconcileRows
from bot.words import notices

log = logging.getLogger(__name__)


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
        islands: IslandStore,
        kube: Kube,
        templates: TemplateSet,
        allocator: Allocator,
        api_url: str,
    ) -> None:
        self.rows = rows
        self.islands = islands
        self.kube = kube
        self.templates = templates
        self.allocator = allocator
        self.api_url = api_url

    def apply(self, island: IslandRecord, decision: Decision, now: datetime) -> None:
        """Carry the decision out. A pod to create is recorded first (its token's hash, the
        new state) and created from what was committed; the cluster refusing it for good fails
        the island, freeing its ports; any other failure is noted and the tick tries again."""
        if decision.delete_pod:
            self.kube.delete_pod(island.pod_name)
        change = self._change(island, decision, now)
        if decision.create_pod:
            self._create(island, decision, change, now)
            return
        applied = self.rows.apply(island, change)
        if applied and decision.state == IslandState.READY:
            metrics.START_TO_READY.observe((now - island.created_at).total_seconds())
        if applied and decision.release_ports:
            self.release(island.id)

    def _change(self, island: IslandRecord, decision: Decision, now: datetime) -> IslandChange:
        updates: dict[str, Any] = dict(decision.updates)
        state = decision.state
        failure_text = None
        if decision.failure is not None:
            failure_text = notices.failure_text(
                decision.failure, island_id=island.id, branch=island.branch
            )
            updates["failure_reason"] = failure_text
        entry = None
        if state is not None:
            updates["state"] = state.value
            if state == IslandState.STOPPED:
                updates["stopped_at"] = now
            entry = Audit(
                SYSTEM_ACTOR,
                f"state:{state.value}",
                island_id=island.id,
                detail={
                    "from": island.state.value,
                    **({"failure": failure_text} if failure_text else {}),
                },
            )
        return IslandChange(updates, decision.notices, entry)

    def _create(
        self, island: IslandRecord, decision: Decision, change: IslandChange, now: datetime
    ) -> None:
        token = secrets.token_urlsafe(24)
        recorded = IslandChange(
            {**change.updates, "registration_token_hash": token_hash(token), "create_error": None},
            change.notices,
            change.audit,
        )
        fresh = self.rows.begin_create(island, recorded)
        if fresh is None:
            return  # the island moved on since the tick read it: decide again next tick
        try:
            view = self.kube.create_island_pod(self._pod(fresh, token, now))
        except KubeRefused as exc:
            self.apply(fresh, refused(str(exc)), now)
            return
        except KubeError as exc:
            self.rows.note_create_error(island.id, str(exc))
            raise
        # a create that found the pod an earlier attempt made: that pod's token counts
        carried = view.server_env.get(REGISTER_TOKEN_ENV) or token
        self.rows.created(island.id, now, token_hash(carried))

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
        )
        return self.templates.render(params, dict(island.overrides))

    def release(self, island_id: int) -> None:
        try:
            self.allocator.release(island_id)
        except Conflict:
            log.warning("island %d: ports not released, it is not stopped", island_id)
