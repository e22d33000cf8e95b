"""What a tick cleans up, level-triggered: ports of stopped islands whose release was
interrupted, and pods with our labels but no live island (orphans, e.g. the bot died between
creating a pod and recording it), deleted after a grace."""

from __future__ import annotations

import logging
from collections.abc import Callable, Set
from datetime import datetime, timedelta

from bot.app.reconcile.apply import Applier
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError
from bot.infra.kubernetes.views import ClusterSnapshot
from bot.infra.storage.reconcile_rows import ReconcileRows

log = logging.getLogger(__name__)


def sweep(
    *,
    live: Set[int],
    snapshot: ClusterSnapshot,
    now: datetime,
    rows: ReconcileRows,
    applier: Applier,
    kube: Kube,
    orphan_grace: timedelta,
    report_error: Callable[[str], None],
) -> None:
    for island_id in rows.stopped_holding_ports():
        if island_id not in snapshot.pods:
            applier.release(island_id)
    for island_id, view in snapshot.pods.items():
        if island_id in live or view.deleting:
            continue
        created = _parse_time(view.created_at)
        if created is not None and now - created < orphan_grace:
            continue
        log.warning("deleting orphan pod %s (island %s is not live)", view.name, island_id)
        try:
            kube.delete_pod(view.name)
        except KubeError as exc:
            report_error(f"orphan {view.name}: {exc}")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
