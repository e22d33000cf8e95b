"""The composition root: the one place that builds the bot from its settings.

``build`` assembles storage, the cluster adapter, the lifecycle loop, the use cases, the chat
front (when a chat is given) and the HTTP API, in the order their dependencies need, and
returns them as a ``Bot`` to ``start`` and ``stop``. ``bot.run.chats`` builds it with the
chats the settings set up (Slack, Lark or both). ``islandbot run``, ``islandbot demo``,
``islandbot reconcile`` and the tests' chat worlds all come through here; a test or benchmark
may pass its own cluster adapter and ``Tuning``.

The loop is built before the use cases, so a use case that must wake the loop (a stop, a start)
is simply given ``service.poke``: no part needs another that needs it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Protocol

from bot.app.clock_actions import ClockActions, ClockSettings
from bot.app.island_actions import ActionSettings, IslandActions
from bot.app.notices import Notifier
from bot.app.pool_keeper import PoolKeeper
from bot.app.reconcile.deliver import DeliveryPolicy
from bot.app.reconcile.engine import LifecycleEngine, LifecycleSettings
from bot.chat.front import ChatFront, FrontSettings
from bot.chat.notifier import ChatNotifier
from bot.chat.output import ChatOutput
from bot.chat.slack.listeners import SocketModeHandler
from bot.domain.lifecycle_rules import Limits
from bot.domain.permissions import Policy
from bot.domain.port_blocks import BlockLayout
from bot.domain.time_source import Clock, utcnow
from bot.http.api import Api, ApiParts
from bot.http.board_routes import BoardRoutes
from bot.http.pool_routes import PoolRoutes
from bot.http.server import Address, WebServer
from bot.infra.kubernetes.client import Kube, KubeSettings
from bot.infra.kubernetes.reflector import PodReflector
from bot.infra.kubernetes.templates import TemplateSet, load_templates
from bot.infra.storage import migrate
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.database import Database, create_database
from bot.infra.storage.heartbeat import Heartbeat
from bot.infra.storage.intake import Intake
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.lease import LeaderLease
from bot.infra.storage.registry import Registry
from bot.run.board_setup import board_links, serve_board
from bot.run.headless import LogNotifier
from bot.run.heap import settle_heap
from bot.run.loop import LifecycleService
from bot.run.memory_setup import watch_memory
from bot.run.pool_setup import keep_pools
from bot.run.settings import Settings
from bot.words import catalogue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tuning:
    """What the settings do not expose: production values by default; tests and benchmarks
    make the bot faster or stricter here."""

    kube: KubeSettings | None = None  # None: from the settings (namespace, request timeout)
    probe_timeout_s: float = 0.5  # one TCP probe of an island's server port
    fast_interval: timedelta = timedelta(seconds=0.1)  # the between-ticks readiness check
    clock_requests_every: timedelta = timedelta(seconds=5)  # pending clock requests expire
    recover_every: timedelta = timedelta(seconds=2)  # accepted requests a dead worker left
    max_pending: int = 500  # chat work queued beyond the workers before "busy"
    channel_rate: float = 0.9  # Slack posts per second per channel, and their burst
    channel_burst: float = 2.0
    slack_timeout_s: int = 15  # one Slack Web API request
    # Lark posts a second per chat and their burst; None: the adapter's own (under Lark's 5)
    lark_pace: tuple[float, float] | None = None
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)  # notices: backoff, claims
    # Islands register at the bot's own HTTP server, whose port is known only once bound
    # (the demo and tests listen on port 0): ISLANDBOT_API_URL is then that server's URL.
    api_url_from_server: bool = False
    # the bot's time source (expiries, timeouts, clock requests); leases, claims and
    # housekeeping go by the database's clock whatever this is. Tests move it forward.
    clock: Clock = utcnow


class Connection(Protocol):
    """A chat's own way in that the bot opens and closes (Lark's long connection)."""

    def start(self) -> None: ...

    def stop(self) -> object: ...


@dataclass
class Bot:
    """The running bot's parts. Nothing runs before ``start``; ``stop`` is graceful."""

    settings: Settings
    db: Database
    templates: TemplateSet
    allocator: Allocator
    kube: Kube
    islands: IslandStore
    engine: LifecycleEngine
    service: LifecycleService
    actions: IslandActions
    clocks: ClockActions
    heartbeat: Heartbeat
    front: ChatFront | None = None
    server: WebServer | None = None
    socket_mode: SocketModeHandler | None = None
    connections: list[Connection] = field(default_factory=list)  # chats' own intakes
    control: Database | None = None  # the lease's and the heartbeat's connections
    board: BoardRoutes | None = None
    pools: PoolKeeper | None = None
    started: list[str] = field(default_factory=list)

    def start(self) -> Bot:
        self.heartbeat.start()  # before any request is claimed
        self.started.append("heartbeat")
        self.service.start()
        self.started.append("loop")
        if self.server is not None:
            self.server.start()
            self.started.append("http")
        if self.socket_mode is not None:
            self.socket_mode.connect()  # type: ignore[no-untyped-call]
            self.started.append("socket-mode")
        for connection in self.connections:
            connection.start()
        if self.connections:
            self.started.append("connections")
        settle_heap()
        return self

    def stop(self) -> None:
        """Stop taking requests, finish the queued work, stop the loop, close the parts."""
        if "socket-mode" in self.started and self.socket_mode is not None:
            try:
                self.socket_mode.close()  # type: ignore[no-untyped-call]
            except Exception:
                log.exception("closing the Socket Mode connection failed")
        if "connections" in self.started:
            for connection in self.connections:
                try:
                    connection.stop()
                except Exception:
                    log.exception("closing a chat's connection failed")
        if self.server is not None:
            self.server.stop()
        if self.front is not None:
            self.front.pool.shutdown()
        if "loop" in self.started:
            self.service.stop()
        if "heartbeat" in self.started:  # what is left unfinished is taken up at once elsewhere
            self.heartbeat.stop()
        self.started.clear()
        close_parts(self.kube, self.db)
        if self.control is not None:
            self.control.dispose()


def close_parts(kube: Kube | None, db: Database | None) -> None:
    if kube is not None:
        if kube.reflector is not None:
            kube.reflector.stop()
        kube.close()
    if db is not None:
        db.dispose()


# ---- the parts, each from the settings --------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    templates: TemplateSet
    db: Database
    allocator: Allocator
    migrated: bool  # the schema was behind and has just been upgraded


def open_storage(settings: Settings, *, clock: Clock = utcnow) -> Storage:
    """Templates validated, schema current, port blocks synced to the template's size."""
    templates = load_templates(
        settings.templates_dir, kubernetes_version=settings.kubernetes_version
    )
    db = create_database(settings.database_url, pool_size=settings.db_pool_size)
    try:
        migrated = migrate.ensure_current(db)
        allocator = Allocator(
            db,
            layout=BlockLayout(settings.port_range, templates.block_size),
            max_live_per_user=settings.max_islands_per_user,
            clock=clock,
        )
        allocator.sync_layout()
    except BaseException:
        db.dispose()
        raise
    return Storage(templates, db, allocator, migrated)


def connect_kube(settings: Settings, tuning: Tuning) -> Kube:
    return Kube.connect(
        tuning.kube
        or KubeSettings(
            namespace=settings.namespace, request_timeout_s=settings.kube_timeout.total_seconds()
        ),
        kubeconfig=settings.kubeconfig,
        context=settings.kube_context,
    )


def lifecycle_settings(settings: Settings, tuning: Tuning) -> LifecycleSettings:
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
        probe_timeout_s=tuning.probe_timeout_s,
        api_url=settings.api_url,
        delivery=tuning.delivery,
        tz=settings.tz,
    )


def policy(settings: Settings) -> Policy:
    return Policy(admins=settings.admins, allowed_channels=settings.allowed_channels)


# ---- the whole bot ------------------------------------------------------------------------------


def build(
    settings: Settings,
    *,
    chat: ChatOutput | None = None,
    notifier: Notifier | None = None,
    kube: Kube | None = None,
    tuning: Tuning = Tuning(),
    http: bool = True,
) -> Bot:
    """The bot. With ``chat``: its front end and its notices go there; without, notices go to
    ``notifier`` (default: the log). ``http``: the HTTP server with the API (``start`` serves
    it). A ``kube`` given is used (and closed with the bot); else one is connected."""
    catalogue.set_deployment_language(settings.language)
    storage = open_storage(settings, clock=tuning.clock)
    server: WebServer | None = None
    try:
        if http:
            server = WebServer(address=Address.parse(settings.http_address))
            if tuning.api_url_from_server:
                settings = replace(settings, api_url=server.bind().url)
        kube = kube or connect_kube(settings, tuning)
        return _assemble(
            settings=settings,
            storage=storage,
            kube=kube,
            chat=chat,
            notifier=notifier,
            server=server,
            tuning=tuning,
        )
    except BaseException:
        if server is not None:
            server.stop()
        close_parts(kube, storage.db)
        raise


def _assemble(
    *,
    settings: Settings,
    storage: Storage,
    kube: Kube,
    chat: ChatOutput | None,
    notifier: Notifier | None,
    server: WebServer | None,
    tuning: Tuning,
) -> Bot:
    db, templates = storage.db, storage.templates
    if kube.reflector is None:  # a tick then costs no Kubernetes request
        kube.reflector = PodReflector(kube).start()
    clock = tuning.clock
    islands = IslandStore(db, clock=clock)
    if chat is not None:
        notifier = ChatNotifier(
            chat,
            islands,
            requests=ClockRequests(db, clock=clock),
            port_names=templates.ports,
            extend_step=settings.extend_step,
            tz=settings.tz,
            clock=clock,
        )
    # the lease and the heartbeat on connections of their own: a pool a burst has exhausted
    # must not make the leader lapse or the process take itself for dead
    control = create_database(settings.database_url, pool_size=1, health=db.health)
    lease = LeaderLease(control, ttl=settings.lease_ttl)
    heartbeat = Heartbeat(control, instance=lease.holder, ttl=lease.ttl)  # one ttl: test_budgets
    engine = LifecycleEngine(
        db=db,
        kube=kube,
        templates=templates,
        allocator=storage.allocator,
        notifier=notifier or LogNotifier(),
        settings=lifecycle_settings(settings, tuning),
        clock=clock,
        lease=lease,
        worker=heartbeat.name,
    )
    service = LifecycleService(
        engine,
        lease,
        interval=settings.reconcile_interval,
        fast_interval=tuning.fast_interval,
    )
    rules = policy(settings)
    clocks = ClockActions(
        db=db,
        kube=kube,
        policy=rules,
        server_container=templates.server_container,
        settings=ClockSettings(
            max_shift=settings.clock_max_shift,
            request_ttl=settings.clock_request_ttl,
            tz=settings.tz,
        ),
        clock=clock,
    )
    actions = IslandActions(
        db=db,
        allocator=storage.allocator,
        templates=templates,
        kube=kube,
        policy=rules,
        settings=ActionSettings(
            default_ttl=settings.default_ttl,
            max_ttl=settings.max_ttl,
            extend_step=settings.extend_step,
            clock_max_shift=settings.clock_max_shift,
        ),
        poke=service.poke,
        clock=clock,
        pool_sizes=settings.pools,
        clocks=clocks,
    )
    pools = keep_pools(service, templates, db, settings, lease=lease, clock=clock)
    links = board_links(settings, db, server, clock) if server is not None else None
    front = None
    if chat is not None:
        front = ChatFront(
            actions=actions,
            clocks=clocks,
            sender=chat,
            intake=Intake(db, heartbeat=heartbeat),
            settings=FrontSettings(
                default_ttl=settings.default_ttl,
                max_ttl=settings.max_ttl,
                extend_step=settings.extend_step,
                workers=settings.slack_workers,
                max_pending=tuning.max_pending,
                tz=settings.tz,
            ),
            clock=clock,
            board_links=links,
            pools=pools,
        )
        service.add_job(
            front.expire_clock_requests,
            "clock-requests",
            seconds=tuning.clock_requests_every.total_seconds(),
        )
        service.add_job(clocks.resume_stuck, "clock-resume", seconds=30)
        service.add_job(
            front.recover_now,
            "intake",
            seconds=tuning.recover_every.total_seconds(),
            leader_only=False,
        )
    watch_memory(service, kube, templates, db, settings, lease=lease, clock=clock)
    if server is not None:
        registry = Registry(
            db, port_names=templates.ports, on_registered=lambda _id: service.poke(), clock=clock
        )
        token = settings.api_read_token
        api = Api(
            ApiParts(db, kube, registry, islands, token.reveal() if token else None, pools=pools)
        )
        server.add_routes(api.routes())
        ci_token = settings.api_ci_token
        server.add_routes(
            PoolRoutes(
                pools,
                ci_token=ci_token.reveal() if ci_token else None,
                read_token=token.reveal() if token else None,
            ).routes()
        )
    board = serve_board(server, actions, links, settings) if server and links else None
    return Bot(
        settings,
        db,
        templates,
        storage.allocator,
        kube,
        islands,
        engine,
        service,
        actions,
        clocks,
        heartbeat,
        front,
        server,
        control=control,
        board=board,
        pools=pools,
    )
