"""The warm pools, set up from the settings: the keeper's round on the leader every second."""

from __future__ import annotations

from bot.app.pool_keeper import PoolKeeper
from bot.domain.time_source import Clock
from bot.infra.kubernetes.templates import TemplateSet
from bot.infra.storage.database import Database
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.pools import PoolStore
from bot.run.loop import LifecycleService
from bot.run.settings import ConfigError, Settings

KEEP_EVERY_S = 1.0  # a claim is replaced within about this long


def keep_pools(
    service: LifecycleService,
    templates: TemplateSet,
    db: Database,
    settings: Settings,
    *,
    lease: LeaderLease,
    clock: Clock,
) -> PoolKeeper:
    unknown = sorted(set(settings.pools) - set(templates.branches))
    if unknown:
        raise ConfigError(
            [
                f"ISLANDBOT_POOLS: no branch profile for {', '.join(unknown)}; branches: "
                f"{', '.join(templates.branches)}"
            ]
        )
    keeper = PoolKeeper(
        store=PoolStore(db, clock=clock, fence=lease.fence),
        templates=templates,
        sizes=settings.pools,
        admins=settings.admins,
        clock=clock,
        poke=service.poke,
    )

    def keep() -> None:
        keeper.keep()

    service.add_job(keep, "pools", seconds=KEEP_EVERY_S, at_once=True)
    return keeper
