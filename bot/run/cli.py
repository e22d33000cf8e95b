"""The ``islandbot`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import yaml
from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout

from bot import __version__
from bot.chat.console.chat import ConsoleChat
from bot.domain.errors import IslandbotError, Refusal, UserError
from bot.domain.podspec import IslandParams, TemplateError
from bot.domain.time_source import utcnow
from bot.http.server import Address
from bot.infra import log_setup
from bot.infra.kubernetes.templates import load_templates
from bot.infra.storage import migrate
from bot.infra.storage.database import Database, create_database
from bot.run import chats, compose
from bot.run.demo import CHANNEL, CHANNEL_NAME, DEMO_POOLS, FIRST_USER, Cluster, Demo
from bot.run.headless import JsonLinesNotifier, LogNotifier
from bot.run.settings import ConfigError, Settings
from bot.run.settings_env import describe_settings, load_settings
from bot.words import catalogue, demo_text, refusals


def _database(settings: Settings) -> Database:
    return create_database(settings.database_url, pool_size=settings.db_pool_size)


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    db = _database(settings)
    try:
        if args.db_command == "upgrade":
            migrate.upgrade(db, args.revision)
            print(f"database at revision {migrate.current_revision(db)}")
        elif args.db_command == "downgrade":
            migrate.downgrade(db, args.revision)
            print(f"database at revision {migrate.current_revision(db) or '(empty)'}")
        else:
            current = migrate.current_revision(db) or "(empty)"
            head = migrate.head_revision()
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


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    if "ISLANDBOT_LOG_LEVEL" not in os.environ:  # the terminal is the chat's: warnings only
        logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running"
    state = Path(args.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    settings = _demo_settings(settings, state, keep=args.keep)
    if args.lang:
        settings = replace(settings, language=args.lang)
    catalogue.set_deployment_language(settings.language)
    address = (
        Address.parse(settings.http_address)
        if "ISLANDBOT_HTTP_ADDRESS" in os.environ
        else Address("127.0.0.1", 0)
    )
    out = Printer()
    chat = ConsoleChat(write=out.line, json_lines=args.json, names={CHANNEL: CHANNEL_NAME})
    cluster = (
        Cluster(settings.kubeconfig)
        if settings.kubeconfig
        else Cluster.embedded(state, boot_delay=args.boot_delay)
    )
    try:
        demo = Demo(settings, chat, cluster=cluster, http_address=address).start()
    except BaseException:
        cluster.stop()
        raise
    try:
        banner = demo_text.demo_banner(
            database=demo.settings.database_url,
            api_url=demo.server.url,
            kubeconfig=str(cluster.kubeconfig),
            namespace=demo.settings.namespace,
        )
        print(banner, file=sys.stderr if args.json else sys.stdout, flush=True)
        link = demo.board_link()
        if args.json:
            board = {"kind": "board", "user": FIRST_USER, "text": link.url}
            out.line(json.dumps({**board, "expires_at": link.expires_at.isoformat()}))
        else:
            out.line(demo_text.demo_board(FIRST_USER, link.url))
        if args.script is not None or not sys.stdin.isatty():
            source = args.script.open(encoding="utf-8") if args.script else sys.stdin
            with source:
                for line in source:
                    if not demo.handle(line):
                        break
            return 1 if demo.timeouts else 0
        _interactive(demo)
    except KeyboardInterrupt:
        return 130
    else:
        return 0
    finally:
        demo.stop()
        cluster.stop()


class Printer:
    """Lines from many threads, one at a time, flushed at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            print(text, flush=True)


def _interactive(demo: Demo) -> None:
    os.environ.setdefault("PROMPT_TOOLKIT_NO_CPR", "1")  # no warning on terminals without CPR
    session: PromptSession[str] = PromptSession()
    with patch_stdout(raw=True):
        while True:
            try:
                line = session.prompt(f"{demo.user}> ")
            except EOFError:
                return
            except KeyboardInterrupt:
                continue
            if not demo.handle(line):
                return


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
            Refusal.RENDER_PORT_OUTSIDE_RANGE,
            first_port=first_port,
            block_size=templates.block_size,
            port_range=str(settings.port_range),
        )
    clock = args.clock or utcnow().strftime("%Y-%m-%d %H:%M:%S")
    try:
        datetime.strptime(clock, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise UserError(Refusal.RENDER_BAD_CLOCK, clock=clock) from None
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
    notifier = JsonLinesNotifier(args.notices_file) if args.notices_file else LogNotifier()
    bot = compose.build(settings, notifier=notifier, http=False)
    stop = _stop_on_signals()
    bot.start()
    print(
        f"islandbot reconcile: running (leader: {bot.service.lease.is_leader}); "
        "SIGTERM or Ctrl-C stops it",
        flush=True,
    )
    stop.wait()
    bot.stop()
    return 0


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    """The real bot: Slack (Socket Mode when SLACK_APP_TOKEN is set, else HTTP) and/or Lark
    (the long connection, or HTTP when LARK_VERIFICATION_TOKEN is set), the lifecycle loop
    and the HTTP server, until SIGTERM or Ctrl-C."""
    bot = chats.chat_bot(settings)  # ConfigError before anything is opened
    stop = _stop_on_signals()
    try:
        bot.start()
    except BaseException:
        bot.stop()
        raise
    assert bot.server is not None
    mode = "; ".join(chats.modes(bot))
    print(
        f"islandbot {__version__}: running ({mode}; HTTP on {bot.server.url}; leader: "
        f"{bot.service.lease.is_leader}); SIGTERM or Ctrl-C stops it",
        flush=True,
    )
    stop.wait()
    bot.stop()
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


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
    demo = sub.add_parser(
        "demo",
        help="the bot on its embedded defaults (SQLite, kubesim, a console chat)",
        description="Runs the real bot with a console chat in place of Slack and the kubesim "
        "cluster simulator in this process (or the cluster ISLANDBOT_KUBECONFIG names). Reads "
        "console lines from --script, else from standard input when it is not a terminal, else "
        "from a prompt; `help` lists them.",
    )
    demo.add_argument(
        "--script", type=Path, default=None, help="run these console lines, then exit"
    )
    demo.add_argument(
        "--json", action="store_true", help="print every chat event as one JSON object per line"
    )
    demo.add_argument(
        "--state-dir",
        default=".islandbot-demo",
        help="where the demo keeps its database and kubeconfig (default: .islandbot-demo)",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep the islands of the last demo's database"
    )
    demo.add_argument(
        "--lang",
        type=_language,
        default=None,
        metavar="LANGUAGE",
        help=f"the language the bot speaks ({', '.join(catalogue.languages())}; default: "
        "ISLANDBOT_LANGUAGE, else en)",
    )
    demo.add_argument(
        "--boot-delay",
        type=_boot_delay,
        default=1.0,
        metavar="SECONDS",
        help="how long the embedded cluster's island servers take to answer once started "
        "(default 1; try 30 to see a warm start beside a cold one)",
    )
    demo.set_defaults(handler=cmd_demo)
    return parser


def _demo_settings(settings: Settings, state: Path, *, keep: bool) -> Settings:
    """The demo's own database (fresh unless ``keep``) and warm pools, unless set."""
    if "ISLANDBOT_DATABASE_URL" not in os.environ:
        db_file = state / "islandbot.db"
        if not keep:
            db_file.unlink(missing_ok=True)
        settings = replace(settings, database_url=f"sqlite:///{db_file}")
    # warm dev islands, so that a start is instant: on the demo's own cluster only (never
    # real pods on a cluster ISLANDBOT_KUBECONFIG names), for branches the templates have
    branches = Path(settings.templates_dir) / "branches"
    if "ISLANDBOT_POOLS" not in os.environ and settings.kubeconfig is None:
        pools = {b: n for b, n in DEMO_POOLS.items() if (branches / f"{b}.yaml").is_file()}
        settings = replace(settings, pools=pools)
    return settings


def _language(text: str) -> str:
    found = catalogue.match(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: not one of {', '.join(catalogue.languages())}")
    return found


def _boot_delay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text!r}: from 0 to 600 seconds")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_setup.configure("WARNING")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"islandbot: {exc}", file=sys.stderr)
        return 2
    log_setup.configure(settings.log_level, settings.log_format)
    catalogue.set_deployment_language(settings.language)  # what the commands print for people
    try:
        return int(args.handler(settings, args))
    except ConfigError as exc:
        print(f"islandbot: {exc}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"islandbot: {refusals.text(exc)}", file=sys.stderr)
        return 1
    except (IslandbotError, TemplateError) as exc:
        print(f"islandbot: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
