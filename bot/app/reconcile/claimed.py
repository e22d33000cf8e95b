"""A warm island handed to a person: its pod learns its owner the way Agones allocates a game
server, by labels and annotations patched on it (``kubectl get pods -L islandbot.io/owner``
shows who holds it). Level-triggered: every tick compares the pod's owner label with the
island's owner, so a patch that failed or was never sent (the bot died) is made later."""

from __future__ import annotations

from bot.domain.podspec import (
    ANNOTATION_CLAIMED_AT,
    ANNOTATION_OWNER_NAME,
    LABEL_OWNER,
    label_value,
)
from bot.domain.records import IslandRecord
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.views import PodView


def claimed_unlabelled(island: IslandRecord, view: PodView) -> bool:
    """A claimed island whose pod still names another owner (its pool), or does not say when
    it was claimed (a new pod after a restart)."""
    return island.claimed_at is not None and (
        view.owner_id != label_value(island.owner_id)
        or ANNOTATION_CLAIMED_AT not in view.annotations
    )


def relabel_claimed(kube: Kube, island: IslandRecord) -> None:
    """Tell the island's pod its owner (raises ``KubeError``)."""
    assert island.claimed_at is not None
    kube.relabel_pod(
        island.pod_name,
        {LABEL_OWNER: label_value(island.owner_id)},
        {
            ANNOTATION_OWNER_NAME: island.owner_name,
            ANNOTATION_CLAIMED_AT: island.claimed_at.isoformat().replace("+00:00", "Z"),
        },
    )
