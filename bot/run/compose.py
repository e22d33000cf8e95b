"""Assembling the running parts from the settings: one place that knows how they fit."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.app.clock_actions import ClockActions, ClockSettings
from bot.app.island_actions import ActionSettings, IslandActions
from bot.app.notices import Notifier
from bot.app.reconcile.engine import LifecycleEngine, LifecycleSettings
from bot.chat.front import FrontSettings
from bot.chat.notifier import ChatNotifier
from bot.chat.slack.listeners import SlackFront, SocketModeHandler, socket_mode_handler
from bot.chat.slack.sender import SlackSender, web_client
from bot.domain.lifecycle_rules import Limits
from bot.domain.permissions import Policy
from bot.domain.port_blocks import BlockLayout
from bot.http.api import Api, ApiParts
from bot.http.server import Address, WebServer
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.reflector import PodReflector
from bot.infra.kubernetes.templates import TemplateSet, load_templates
from bot.infra.storage import migrate as schema
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import Database, create_database
from bot.infra.storage.deliveries import Deliveries
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.registry import Registry
from bot.run.loop import LifecycleService
from bot.run.settings import ConfigError, Settings

log = logging.getLogger(__name__)


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
            require_registration=settings.require_registration,
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


def api_parts(parts: Parts, service: LifecycleService) -> ApiParts:
    """What the HTTP API serves from; a registration pokes the loop (ready sooner)."""
    registry = Registry(
        parts.db, port_names=parts.templates.ports, on_registered=lambda _id: service.poke()
    )
    token = parts.settings.api_read_token
    return ApiParts(parts.db, parts.kube, registry, token.reveal() if token else None)


def parse_address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return Address(host, int(port))


@dataclass
class SlackBot:
    """The running bot: lifecycle loop, Slack front end, HTTP server, and Socket Mode when an
    app token is set. ``start`` then ``stop``; nothing runs before ``start``."""

    parts: Parts
    service: LifecycleService
    front: SlackFront
    server: WebServer
    socket_mode: SocketModeHandler | None = None
    started: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.service.start()
        self.started.append("loop")
        self.server.start()
        self.started.append("http")
        if self.socket_mode is not None:
            self.socket_mode.connect()  # type: ignore[no-untyped-call]
            self.started.append("socket-mode")

    def stop(self) -> None:
        """Graceful: stop taking requests, finish the queued work, stop the loop."""
        if "socket-mode" in self.started and self.socket_mode is not None:
            try:
                self.socket_mode.close()  # type: ignore[no-untyped-call]
            except Exception:
                log.exception("closing the Socket Mode connection failed")
        if "http" in self.started:
            self.server.stop()
        self.front.pool.shutdown()
        if "loop" in self.started:
            self.service.stop()
        self.parts.close()


def check_slack_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` when what ``islandbot run`` needs to reach Slack is missing."""
    problems = []
    if settings.slack_bot_token is None:
        problems.append("SLACK_BOT_TOKEN: needed to talk to Slack (xoxb-...)")
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        problems.append(
            "SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode): one is needed "
            "to receive Slack's requests"
        )
    if problems:
        raise ConfigError(problems)


def build_slack_bot(parts: Parts) -> SlackBot:
    """Everything ``islandbot run`` runs, from the settings. Raises ``ConfigError`` when the
    Slack settings it needs are missing."""
    settings = parts.settings
    check_slack_settings(settings)
    assert settings.slack_bot_token is not None
    client = web_client(settings.slack_bot_token.reveal(), base_url=settings.slack_api_url)
    sender = SlackSender(client)
    service_box: list[LifecycleService] = []
    actions = IslandActions(
        db=parts.db,
        allocator=parts.allocator,
        templates=parts.templates,
        kube=parts.kube,
        policy=Policy(admins=settings.admins, allowed_channels=settings.allowed_channels),
        settings=ActionSettings(
            default_ttl=settings.default_ttl,
            max_ttl=settings.max_ttl,
            extend_step=settings.extend_step,
        ),
        poke=lambda: service_box[0].poke() if service_box else None,
    )
    notifier = ChatNotifier(sender, actions, extend_step=settings.extend_step)
    service = build_service(parts, notifier)
    service_box.append(service)
    clocks = ClockActions(
        db=parts.db,
        kube=parts.kube,
        policy=actions.policy,
        settings=ClockSettings(
            max_shift=settings.clock_max_shift,
            request_ttl=settings.clock_request_ttl,
            tz=settings.tz,
        ),
    )
    front = SlackFront(
        actions=actions,
        clocks=clocks,
        sender=sender,
        deliveries=Deliveries(parts.db),
        settings=FrontSettings(
            default_ttl=settings.default_ttl,
            max_ttl=settings.max_ttl,
            extend_step=settings.extend_step,
            workers=settings.slack_workers,
            tz=settings.tz,
        ),
    )
    service.add_job(front.expire_clock_requests, "clock-requests", seconds=15)
    secret = settings.slack_signing_secret
    app = front.build_app(signing_secret=secret.reveal() if secret else None, client=client)
    server = WebServer(
        slack=app if secret is not None else None,
        address=parse_address(settings.http_address),
        api=Api(api_parts(parts, service)),
    )
    socket_mode = None
    if settings.slack_app_token is not None:
        socket_mode = socket_mode_handler(app, settings.slack_app_token.reveal())
    return SlackBot(parts, service, front, server, socket_mode)
