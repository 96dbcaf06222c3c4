"""The emulator's code layout stays readable: small modules and functions, no import cycle,
one route table, and the one transport-fault helper both fronts use (docs/emulator.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sync.emulator import urls
from sync.emulator.transport import deliver
from sync.emulator.wire import Response

PACKAGE = Path(__file__).resolve().parents[2] / "sync" / "emulator"
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _emulator_imports(path: Path) -> set[str]:
    """The sibling modules ``path`` imports, wherever the import stands (lazy ones count)."""
    found: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "sync.emulator":
                found.update(a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists())
            elif node.module.startswith("sync.emulator."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[2] for a in node.names if a.name.startswith("sync.emulator.")
            )
    return found - {"__init__"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_modules_and_functions_are_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines"
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}: {node.name} has {length} lines"


def test_no_import_cycle_between_the_emulators_modules() -> None:
    graph = {p.stem: _emulator_imports(p) for p in MODULES if p.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, stack: list[str]) -> None:
        if module in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack, module]))
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, [*stack, module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_the_emulator_imports_nothing_of_the_sync_but_its_clock() -> None:
    for path in MODULES:
        for node in ast.walk(_tree(path)):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("sync.") and not name.startswith("sync.emulator"):
                    assert name == "sync.clock", f"{path.name} imports {name}"


def test_one_route_per_method_and_pattern_and_every_handler_named_once() -> None:
    keys = [(r.method, r.pattern) for r in urls.URLS]
    assert len(keys) == len(set(keys))
    handlers = [r.handler for r in urls.URLS]
    assert len(handlers) == len(set(handlers))
    assert {r.control for r in urls.URLS} == {True, False}


def test_resolve_tells_a_wrong_method_from_an_unknown_path() -> None:
    doc = urls.resolve("GET", "/v1/convai/knowledge-base/abc")
    assert doc.route is not None and doc.params == {"doc_id": "abc"}
    wrong = urls.resolve("PUT", "/v1/convai/knowledge-base/abc")
    assert wrong.route is None and wrong.path_known
    unknown = urls.resolve("GET", "/v1/convai/nothing/here/at/all")
    assert unknown.route is None and not unknown.path_known
    assert urls.resolve("POST", "/_emulator/reset/").route is not None


def test_deliver_waits_then_drops() -> None:
    events: list[object] = []
    dropped = deliver(
        Response(200, latency=0.5, drop_connection=True), events.append, lambda: events.append("x")
    )
    assert dropped and events == [0.5, "x"]
    events.clear()
    assert not deliver(Response(200), events.append, lambda: events.append("x"))
    assert events == []
