"""Assembling the running parts from the settings: one place that knows how they fit."""

from __future__ import annotations

from dataclasses import dataclass

from bot import schema
from bot.allocation import Allocator
from bot.config import Settings
from bot.core.lifecycle import Limits
from bot.core.ports import BlockLayout
from bot.db import Database, create_database
from bot.kube import Kube
from bot.leader import LeaderLease
from bot.lifecycle import LifecycleEngine, LifecycleSettings
from bot.notify import Notifier
from bot.reflector import PodReflector
from bot.service import LifecycleService
from bot.templates import TemplateSet, load_templates


@dataclass
class Parts:
    settings: Settings
    db: Database
    templates: TemplateSet
    allocator: Allocator
    kube: Kube

    def close(self) -> None:
        if self.kube.reflector is not None:
            self.kube.reflector.stop()
        self.kube.close()
        self.db.dispose()


@dataclass
class Storage:
    templates: TemplateSet
    db: Database
    allocator: Allocator
    migrated: bool  # the schema was behind and has just been upgraded


def build_storage(settings: Settings) -> Storage:
    """Templates validated, schema current, port blocks synced to the template's size."""
    templates = load_templates(
        settings.templates_dir, kubernetes_version=settings.kubernetes_version
    )
    db = create_database(settings.database_url, pool_size=settings.db_pool_size)
    try:
        migrated = schema.ensure_current(db)
        allocator = Allocator(
            db,
            layout=BlockLayout(settings.port_range, templates.block_size),
            max_live_per_user=settings.max_islands_per_user,
        )
        allocator.sync_layout()
    except BaseException:
        db.dispose()
        raise
    return Storage(templates, db, allocator, migrated)


def build_parts(settings: Settings, *, kube: Kube | None = None) -> Parts:
    storage = build_storage(settings)
    try:
        cluster = kube or Kube.from_settings(settings)
    except BaseException:
        storage.db.dispose()
        raise
    return Parts(settings, storage.db, storage.templates, storage.allocator, cluster)


def lifecycle_settings(settings: Settings) -> LifecycleSettings:
    return LifecycleSettings(
        limits=Limits(
            unschedulable_timeout=settings.unschedulable_timeout,
            ready_timeout=settings.ready_timeout,
            expiry_warning=settings.expiry_warning,
            probe_failures=settings.probe_failures,
        ),
        ready_probe_interval=settings.ready_probe_interval,
        reconcile_interval=settings.reconcile_interval,
        api_url=settings.api_url,
    )


def build_service(parts: Parts, notifier: Notifier) -> LifecycleService:
    """The loop, with a watch-backed pod cache so that a tick costs no Kubernetes request."""
    if parts.kube.reflector is None:
        parts.kube.reflector = PodReflector(parts.kube).start()
    engine = LifecycleEngine(
        db=parts.db,
        kube=parts.kube,
        templates=parts.templates,
        allocator=parts.allocator,
        notifier=notifier,
        settings=lifecycle_settings(parts.settings),
    )
    lease = LeaderLease(parts.db, ttl=parts.settings.lease_ttl)
    return LifecycleService(engine, lease, interval=parts.settings.reconcile_interval)
