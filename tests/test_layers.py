"""Architecture rules that import-linter cannot state (its contracts, in pyproject.toml, say
which layer may import which, and where each library may be used; ``make lint`` runs them).
These walk every package and module of ``bot/`` (and ``kubesim/``), subpackages included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"
KUBESIM = ROOT / "kubesim"
MAX_LINES = 500
# layers whose code must read the same whatever chat carries the conversation
CHAT_NEUTRAL = ("domain", "words", "app", "infra/storage", "chat/front.py", "chat/notifier.py")
SQL = re.compile(
    r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s"
    r"|(CREATE|ALTER|DROP)\s+(TABLE|INDEX|DATABASE)\s)",
    re.IGNORECASE | re.DOTALL,
)


def modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "tests" not in p.relative_to(root).parts)


def test_every_package_says_what_belongs_in_it() -> None:
    packages = sorted({p.parent for p in modules(BOT)})
    assert len(packages) >= 12
    for package in packages:
        init = package / "__init__.py"
        assert init.is_file(), f"{package.relative_to(ROOT)} is not a package"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) >= 30, f"{init.relative_to(ROOT)}: say what belongs here"


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules(BOT) + modules(KUBESIM)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, "split these along their seams"


def test_no_import_cycle_in_the_bot_counting_type_only_imports() -> None:
    graph = grimp.build_graph("bot", exclude_type_checking_imports=False)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    cycles = _strongly_connected(edges)
    assert cycles == [], f"import cycles: {cycles}"


def test_sql_is_written_only_in_storage() -> None:
    for path in modules(BOT):
        if path.is_relative_to(BOT / "infra" / "storage"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not SQL.match(node.value), f"{path.relative_to(ROOT)}: {node.value[:40]!r}"


def test_chat_neutral_code_names_no_chat_platform() -> None:
    """Records, words, use cases and storage speak of a chat's channel and thread, never of
    Slack's: a second platform must fit without renaming anything there."""
    for path in modules(BOT):
        where = path.relative_to(BOT).as_posix()
        if not where.startswith(CHAT_NEUTRAL):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Name):
                names = [node.id]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, ast.arg):
                names = [node.arg]
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                names = [node.name]
            for name in names:
                assert "slack" not in name.lower(), f"{where}: {name}"


def test_the_sql_finder_finds_sql() -> None:
    assert SQL.match("SELECT id FROM islands WHERE state = 'ready'")
    assert SQL.match("  delete from outbox where sent_at < :cutoff")
    assert not SQL.match("Create the pod. If it exists already, select it from the cluster")


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other (size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found
