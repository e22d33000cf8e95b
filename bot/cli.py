"""The ``islandbot`` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import yaml

from bot import __version__, schema
from bot.config import ConfigError, Settings, describe_settings, load_settings
from bot.core.clock import utcnow
from bot.core.podspec import IslandParams, TemplateError
from bot.db import Database, create_database
from bot.errors import IslandbotError, UserError
from bot.notify import JsonLinesNotifier, LogNotifier
from bot.templates import load_templates
from bot.wiring import (
    build_parts,
    build_service,
    build_slack_bot,
    build_storage,
    check_slack_settings,
)


def _database(settings: Settings) -> Database:
    return create_database(settings.database_url, pool_size=settings.db_pool_size)


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    db = _database(settings)
    try:
        if args.db_command == "upgrade":
            schema.upgrade(db, args.revision)
            print(f"database at revision {schema.current_revision(db)}")
        elif args.db_command == "downgrade":
            schema.downgrade(db, args.revision)
            print(f"database at revision {schema.current_revision(db) or '(empty)'}")
        else:
            current = schema.current_revision(db) or "(empty)"
            head = schema.head_revision()
            status = "up to date" if current == head else f"behind, newest is {head}"
            print(f"database at revision {current} ({status})")
    finally:
        db.dispose()
    return 0


def cmd_config(settings: Settings, _args: argparse.Namespace) -> int:
    rows = describe_settings(settings)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    templates = load_templates(
        settings.templates_dir, kubernetes_version=settings.kubernetes_version
    )
    print(
        f"templates: branches {', '.join(templates.branches)}; {templates.block_size} ports "
        f"per island; valid for Kubernetes {settings.kubernetes_version}"
    )
    return 0


def cmd_demo(settings: Settings, _args: argparse.Namespace) -> int:
    storage = build_storage(settings)
    try:
        revision = schema.current_revision(storage.db)
        usage = storage.allocator.usage()
    finally:
        storage.db.dispose()
    migrated = " (just migrated)" if storage.migrated else ""
    print(
        f"islandbot {__version__}: database {settings.database_url} ready at revision "
        f"{revision}{migrated}; {usage.free} of {usage.blocks} port blocks of "
        f"{storage.templates.block_size} free in {settings.port_range}; branches "
        f"{', '.join(storage.templates.branches)}."
    )
    print(
        "The embedded demo (lifecycle loop and console chat over the kubesim cluster "
        "simulator) is not built yet: see the open issues. `python -m kubesim serve` runs "
        "the simulator on its own; `islandbot render dev` shows an island's pod; "
        "`islandbot reconcile` runs the lifecycle loop against a cluster; `islandbot run` runs "
        "the real bot with Slack (see the README's Slack section)."
    )
    return 0


def cmd_render(settings: Settings, args: argparse.Namespace) -> int:
    templates = load_templates(
        settings.templates_dir, kubernetes_version=settings.kubernetes_version
    )
    first_port = settings.port_range.first if args.first_port is None else args.first_port
    if (
        first_port not in settings.port_range
        or first_port + templates.block_size - 1 not in settings.port_range
    ):
        raise UserError(
            f"--first-port {first_port}: the island's {templates.block_size} ports "
            f"must lie in ISLANDBOT_PORT_RANGE {settings.port_range}"
        )
    clock = args.clock or utcnow().strftime("%Y-%m-%d %H:%M:%S")
    try:
        datetime.strptime(clock, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise UserError(f"--clock {clock!r}: expected YYYY-MM-DD HH:MM:SS") from None
    overrides = templates.overrides(args.branch, args.set)
    island = IslandParams(
        island_id=args.id,
        owner_id=args.owner_id,
        owner_name=args.owner,
        branch=args.branch,
        first_port=first_port,
        initial_clock=clock,
        registration_url=f"{settings.api_url}/api/v1/islands/{args.id}/register",
        registration_token="<generated per island>",  # noqa: S106 - a placeholder
    )
    print(
        yaml.safe_dump(templates.render(island, overrides), sort_keys=False, allow_unicode=True),
        end="",
    )
    return 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    """The lifecycle loop alone (no chat): notices go to the log, or to a JSON-lines file."""
    parts = build_parts(settings)
    notifier = JsonLinesNotifier(args.notices_file) if args.notices_file else LogNotifier()
    service = build_service(parts, notifier)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service.start()
    print(
        f"islandbot reconcile: running (leader: {service.lease.is_leader}); "
        "SIGTERM or Ctrl-C stops it",
        flush=True,
    )
    stop.wait()
    service.stop()
    parts.close()
    return 0


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    """The real bot: Slack (Socket Mode when SLACK_APP_TOKEN is set, else HTTP), the
    lifecycle loop and the HTTP server, until SIGTERM or Ctrl-C."""
    check_slack_settings(settings)  # before connecting to anything
    parts = build_parts(settings)
    try:
        bot = build_slack_bot(parts)
    except BaseException:
        parts.close()
        raise
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        bot.start()
    except BaseException:
        bot.stop()
        raise
    mode = "Socket Mode" if bot.socket_mode is not None else "HTTP mode, POST /slack/events"
    print(
        f"islandbot {__version__}: running ({mode}; HTTP on {bot.server.url}; leader: "
        f"{bot.service.lease.is_leader}); SIGTERM or Ctrl-C stops it",
        flush=True,
    )
    stop.wait()
    bot.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="islandbot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"islandbot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations (default: to the newest)")
    up.add_argument("revision", nargs="?", default="head")
    down = db_sub.add_parser("downgrade", help="undo migrations down to REVISION ('base': all)")
    down.add_argument("revision")
    db_sub.add_parser("current", help="show the schema revision of the database")
    db.set_defaults(handler=cmd_db)

    render = sub.add_parser("render", help="print the pod YAML an island would get")
    render.add_argument("branch")
    render.add_argument("--id", type=int, default=1, help="island id (default 1)")
    render.add_argument(
        "--first-port",
        type=int,
        default=None,
        help="first port of its block (default: start of the port range)",
    )
    render.add_argument("--owner", default="someone", help="owner display name")
    render.add_argument("--owner-id", default="U00000000", help="owner Slack user id")
    render.add_argument(
        "--clock", default=None, help='initial clock "YYYY-MM-DD HH:MM:SS" (default: now, UTC)'
    )
    render.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a per-island override the branch allows (repeatable)",
    )
    render.set_defaults(handler=cmd_render)

    reconcile = sub.add_parser("reconcile", help="run the lifecycle loop without a chat")
    reconcile.add_argument(
        "--notices-file",
        type=Path,
        default=None,
        help="append notices as JSON lines here (default: log them)",
    )
    reconcile.set_defaults(handler=cmd_reconcile)

    sub.add_parser("run", help="run the bot: Slack, the lifecycle loop, HTTP").set_defaults(
        handler=cmd_run
    )
    sub.add_parser("config", help="show the settings in force (secrets masked)").set_defaults(
        handler=cmd_config
    )
    sub.add_parser("demo", help="run the bot on its embedded defaults").set_defaults(
        handler=cmd_demo
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"islandbot: {exc}", file=sys.stderr)
        return 2
    logging.getLogger().setLevel(settings.log_level)
    try:
        return int(args.handler(settings, args))
    except ConfigError as exc:
        print(f"islandbot: {exc}", file=sys.stderr)
        return 2
    except (IslandbotError, TemplateError) as exc:
        print(f"islandbot: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
