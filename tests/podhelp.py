"""Rendering island pods for tests that talk to the cluster directly."""

from __future__ import annotations

from bot.domain.podspec import IslandParams
from bot.infra.kubernetes.templates import TemplateSet


def pod_for(
    templates: TemplateSet,
    island_id: int,
    *,
    owner: str = "U0ALICE",
    branch: str = "dev",
    first_port: int = 30000,
    memory: str | None = None,
) -> dict:
    params = IslandParams(
        island_id=island_id,
        owner_id=owner,
        owner_name=owner.lower(),
        branch=branch,
        first_port=first_port,
        initial_clock="2021-09-18 23:30:07",
    )
    overrides = {"memory": memory} if memory else {}
    return templates.render(params, overrides)
