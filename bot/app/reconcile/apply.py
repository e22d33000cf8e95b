"""Carrying out one island's decision: the pod created or deleted, then the new state, its
audit entry and its notices written in one guarded transaction, then the ports freed."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from bot.domain.errors import Conflict
from bot.domain.lifecycle_rules import Decision, Failure, FailureKind, Notice
from bot.domain.podspec import IslandParams
from bot.domain.records import SYSTEM_ACTOR, Audit, IslandChange, IslandRecord
from bot.domain.registration import token_hash
from bot.domain.states import IslandState
from bot.infra import metrics
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.reconcile_rows import ReconcileRows
from bot.words import notices

log = logging.getLogger(__name__)


def refused(message: str) -> Decision:
    """The cluster refused the island's pod (422): retrying will not help."""
    failure = Failure(FailureKind.POD_REFUSED, {"message": message})
    return Decision(
        state=IslandState.FAILED,
        failure=failure,
        notices=((Notice.FAILED, {"kind": FailureKind.POD_REFUSED.value, "message": message}),),
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
        updates: dict[str, Any] = dict(decision.updates)
        if decision.create_pod:
            updates.update(self._create_pod(island, now))
        if decision.delete_pod:
            self.kube.delete_pod(island.pod_name)
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
        change = IslandChange(updates, decision.notices, entry)
        applied = self.rows.apply(island, change)
        if applied and state == IslandState.READY:
            metrics.START_TO_READY.observe((now - island.created_at).total_seconds())
        if decision.release_ports:
            self.release(island.id)

    def _create_pod(self, island: IslandRecord, now: datetime) -> dict[str, Any]:
        fresh = self.islands.get(island.id)  # its thread and overrides as they are now
        token = secrets.token_urlsafe(24)
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
            chat_channel=fresh.chat_channel,
            chat_thread=fresh.chat_thread,
        )
        body = self.templates.render(params, dict(fresh.overrides))
        view = self.kube.create_island_pod(body)
        # a retried create returns the pod made earlier: its token is the one that counts
        token = view.server_env.get("ISLANDBOT_REGISTER_TOKEN", token)
        return {
            "pod_requested_at": now,
            "registration_token_hash": token_hash(token),  # what the registry checks
        }

    def release(self, island_id: int) -> None:
        try:
            self.allocator.release(island_id)
        except Conflict:
            log.warning("island %d: ports not released, it is not stopped", island_id)
