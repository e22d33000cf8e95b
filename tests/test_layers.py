"""Architecture rules, checked on the source: the pure core does no I/O, each external system
has one module that talks to it, and the bot never depends on the simulator."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
IO_LIBRARIES = (
    "sqlalchemy",
    "alembic",
    "kubernetes",
    "kubernetes_validate",
    "slack_bolt",
    "slack_sdk",
    "pymysql",
    "urllib3",
    "apscheduler",
    "socket",
    "requests",
    "aiohttp",
    "prompt_toolkit",
)
# who may import which library (anything not listed may import none of IO_LIBRARIES)
ALLOWED = {
    "kubernetes": {"infra/kubernetes/client.py", "infra/kubernetes/reflector.py"},
    "urllib3": {"infra/kubernetes/client.py", "infra/kubernetes/reflector.py"},
    "kubernetes_validate": {"infra/kubernetes/templates.py"},
    "sqlalchemy": {
        "infra/storage/database.py",
        "infra/storage/tables.py",
        "infra/storage/allocation.py",
        "infra/storage/islands.py",
        "infra/storage/audit.py",
        "infra/storage/migrate.py",
        "infra/storage/lease.py",
        "infra/storage/deliveries.py",
        "infra/storage/registry.py",
        "infra/storage/outbox.py",
        "infra/storage/clock_requests.py",
        "infra/storage/reconcile_rows.py",
    },
    "slack_bolt": {"chat/slack/listeners.py", "chat/slack/events_route.py"},
    "slack_sdk": {"chat/slack/sender.py", "chat/slack/listeners.py"},
    "aiohttp": {"http/server.py", "http/api.py", "chat/slack/events_route.py"},
    "prompt_toolkit": {"run/cli.py"},
    "alembic": {"infra/storage/migrate.py"},
    "apscheduler": {"run/loop.py"},
    "socket": {"infra/tcp_probe.py", "http/server.py"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_core_imports_no_io_library_and_nothing_outside_the_core() -> None:
    for path in (BOT / "domain").glob("*.py"):
        used = imports(path)
        assert not used & set(IO_LIBRARIES), (path.name, used & set(IO_LIBRARIES))
        assert "bot" not in used or all(
            name.startswith("bot.domain") for name in _bot_modules(path)
        ), path.name


def test_each_library_is_imported_only_by_its_boundary_module() -> None:
    for path in BOT.rglob("*.py"):
        for library in imports(path) & set(IO_LIBRARIES):
            assert path.relative_to(BOT).as_posix() in ALLOWED.get(library, set()), (
                f"{path.name} imports {library}"
            )


def test_only_the_demo_imports_the_simulator() -> None:
    for path in BOT.rglob("*.py"):
        if path.relative_to(BOT).as_posix() != "run/demo.py":
            assert "kubesim" not in imports(path), path


def _bot_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot")
    ]
