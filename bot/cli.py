"""The ``islandbot`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot import __version__, schema
from bot.config import ConfigError, Settings, describe_settings, load_settings
from bot.db import Database, create_database
from bot.errors import IslandbotError


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
    return 0


def cmd_demo(settings: Settings, _args: argparse.Namespace) -> int:
    db = _database(settings)
    try:
        applied = schema.ensure_current(db)
        revision = schema.current_revision(db)
    finally:
        db.dispose()
    print(
        f"islandbot {__version__}: database {settings.database_url} ready at revision "
        f"{revision}{' (just migrated)' if applied else ''}."
    )
    print(
        "The embedded demo (cluster simulator, lifecycle loop and console chat) is not built "
        "yet: see the open issues. `islandbot config` shows the settings in force."
    )
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
    except IslandbotError as exc:
        print(f"islandbot: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
