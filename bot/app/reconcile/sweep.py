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
    orphans = [
        view
        for island_id, view in snapshot.pods.items()
        if island_id not in live
        and not view.deleting
        and not _young(view.created_at, now, orphan_grace)
    ]
    if orphans:  # ``live`` may be a deposed leader's stale view: only while leading
        rows.check_leading()
    for view in orphans:
        log.warning("deleting orphan pod %s (island %s is not live)", view.name, view.island_id)
        try:
            kube.delete_pod(view.name)
        except KubeError as exc:
            report_error(f"orphan {view.name}: {exc}")


def _young(created_at: str | None, now: datetime, grace: timedelta) -> bool:
    created = _parse_time(created_at)
    return created is not None and now - created < grace


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
