"""The import rules of docs/architecture.md, read from the source: which package may import
which, that the rules engine stays pure, and that only the client's protocol module spells
out API paths."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("monitor", "trainer_client", "ganwatch")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, *, top_level_only: bool) -> set[str]:
    """Absolute names of what the module imports (relative imports resolved); with
    ``top_level_only`` only the statements that run on import (not inside functions, not
    under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    name = ".".join(base + ([node.module] if node.module else []))
                else:
                    name = node.module or ""
                # ``from a import b`` imports the module a.b when there is one, else a
                for alias in node.names:
                    sub = f"{name}.{alias.name}"
                    found.add(sub if sub in MODULES else name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and top_level_only:
                continue
            elif isinstance(node, ast.If) and top_level_only and _is_type_checking(node):
                visit(node.orelse)
            else:
                visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def _violations(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for module, path in MODULES.items():
        if module != prefix and not module.startswith(prefix + "."):
            continue
        for name in sorted(_imports(module, path, top_level_only=False)):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {name}")
    return out


RULES = [
    ("monitor.rules", ("sqlalchemy", "monitor.models", "monitor.db", "monitor.webhooks",
                       "monitor.store", "monitor.ingest", "monitor.api", "monitor.app",
                       "monitor.metrics", "monitor.notify")),
    ("monitor", ("trainer_client", "ganwatch", "torch")),
    ("trainer_client", ("monitor", "ganwatch")),
]


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_import_rules(package, forbidden):
    assert _violations(package, forbidden) == []


def test_the_rules_checker_sees_imports():
    # The checker itself: it must find imports that do exist, or every rule above passes
    # vacuously.
    assert _violations("monitor", ("fastapi",))
    assert _violations("trainer_client", ("httpx",))
    assert "monitor.rules.core" in MODULES and "ganwatch" in MODULES


def test_no_import_cycles():
    """Module-level imports among the project's modules form no cycle (an import inside a
    function does not run at import time, so it is not counted)."""
    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for name in _imports(module, path, top_level_only=True):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    assert cycles == []


def test_api_paths_are_spelled_only_in_the_client_protocol():
    spelled = []
    for module, path in MODULES.items():
        if module.startswith(("trainer_client", "ganwatch")) and \
                module != "trainer_client.protocol" and "/api/v1" in path.read_text():
            spelled.append(str(path.relative_to(ROOT)))
    assert spelled == []
    assert "/api/v1/runs" in (ROOT / "trainer_client" / "protocol.py").read_text()


def test_monitor_rules_import_only_the_standard_library_and_pure_modules():
    """Stricter than the table's list: whatever a rule module imports is the standard library,
    another rules module or monitor.encoding (pure, the spelling of non-finite numbers)."""
    import sys

    pure = ("monitor.rules", "monitor.encoding")
    found = []
    for module, path in MODULES.items():
        if module != "monitor.rules" and not module.startswith("monitor.rules."):
            continue
        for name in sorted(_imports(module, path, top_level_only=False)):
            if name.split(".")[0] in sys.stdlib_module_names or name == "__future__":
                continue
            if not any(name == p or name.startswith(p + ".") for p in pure):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []
    assert "monitor.encoding" in _imports("monitor.rules.library",
                                         MODULES["monitor.rules.library"], top_level_only=True)


def test_the_server_spells_non_finite_numbers_in_one_module():
    """The strings "NaN", "Infinity" and "-Infinity" as values in the server's code (not in
    its prose) appear only in monitor/encoding.py: one encoding on every write path."""
    spellings = {"NaN", "Infinity", "-Infinity"}
    found = []
    for module, path in MODULES.items():
        if not module.startswith("monitor") or module == "monitor.encoding":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in spellings:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []
    numbers = ast.parse((ROOT / "monitor" / "encoding.py").read_text())
    assert spellings <= {n.value for n in ast.walk(numbers) if isinstance(n, ast.Constant)}


def test_migrations_import_no_application_code():
    """A migration that has run must not change meaning when the app does: the revisions
    import alembic and SQLAlchemy, never the project's own modules."""
    revisions = {m: p for m, p in MODULES.items() if m.startswith("monitor.migrations.versions.")}
    assert len(revisions) >= 6
    found = [f"{path.relative_to(ROOT)} imports {name}"
             for module, path in revisions.items()
             for name in sorted(_imports(module, path, top_level_only=False))
             if name.split(".")[0] in PACKAGES]
    assert found == []
