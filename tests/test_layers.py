"""The package's layering: no import cycle between its modules, and no module outside the
service registry that singles out a service by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_aliyun_tasks.services import SERVICES

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "airflow_aliyun_tasks"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every package module ``path`` imports at run time, at module level or inside a function
    (imports for type checkers only, under ``if TYPE_CHECKING:``, make no cycle)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        for name in names:
            if name in modules:
                found.add(name)
    return found


def test_no_import_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    # A package imports its own submodules in its __init__; that is not a cycle of layers.
    for name in graph:
        graph[name] = {m for m in graph[name] if not (m.startswith(name + ".") or name.startswith(m + "."))}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_client_does_not_know_the_sources_built_on_it() -> None:
    modules = _modules()
    assert "airflow_aliyun_tasks.credential_sources" not in _imports(
        modules["airflow_aliyun_tasks.client"], modules
    )
    assert _imports(modules["airflow_aliyun_tasks.credentials"], modules) <= {"airflow_aliyun_tasks.errors"}


def _service_comparisons(path: Path) -> list[str]:
    """``x == "pds"``, ``"pds" != x``, ``x in ("pds", ...)`` with a service name, in ``path``.

    A signing scheme (``call.signer == "pds"``) is not a service: PDS's scheme shares its name."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Attribute) and o.attr == "signer" for o in operands):
            continue
        for operand in operands:
            values = operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
            for value in values:
                if isinstance(value, ast.Constant) and value.value in SERVICES:
                    hits.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return hits


def test_no_service_singled_out_outside_the_registry() -> None:
    hits = []
    for name, path in _modules().items():
        if name.startswith(("airflow_aliyun_tasks.services", "airflow_aliyun_tasks.testing")):
            continue  # the registry itself, and the emulator, which keeps its own tables
        hits += _service_comparisons(path)
    assert hits == []


def _constructions(path: Path, names: set[str]) -> list[tuple[str, int]]:
    """``(enclosing function, line)`` of every call in ``path`` of a name in ``names``
    (``AlibabaCloudClient``, ``httpx.Client``: as written)."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Call) and ast.unparse(child.func) in names:
                found.append((function, child.lineno))
            visit(child, inner)

    visit(ast.parse(path.read_text()), "<module>")
    return found


def test_clients_are_built_in_one_place() -> None:
    """Every request goes through a client of ``client.build_client`` (the connection's network
    route, CAs, timeouts and User-Agent apply by construction), on an HTTP client of
    ``_loop_clients``: nothing else in the package constructs either."""
    allowed = {
        ("airflow_aliyun_tasks.client", "build_client"),
        *(
            ("airflow_aliyun_tasks._loop_clients", f)
            for f in (
                "_new_sync_client",
                "_new_async_client",
                "_new_route_sync_client",
                "_new_route_async_client",
            )
        ),
    }
    hits = []
    for name, path in _modules().items():
        if name.startswith("airflow_aliyun_tasks.testing"):
            continue  # the emulator: a server, it sends nothing
        for function, line in _constructions(
            path, {"AlibabaCloudClient", "httpx.Client", "httpx.AsyncClient"}
        ):
            if (name, function) not in allowed:
                hits.append(f"{path.name}:{line} in {function}")
    assert hits == []


#: Functions that are declarative tables (one entry per line), not logic.
_TABLES = {"get_provider_info.py:get_provider_info"}
MAX_FUNCTION_LINES = 60


def test_no_function_longer_than_a_screen() -> None:
    """Outside the emulator (``testing/``), no function is longer than 60 lines, docstring
    included: a longer one mixes steps that deserve names of their own."""
    long: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{path.relative_to(PACKAGE)}:{node.name}"
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and where not in _TABLES:
                    long.append(f"{where} ({length} lines)")
    assert not long, f"functions longer than {MAX_FUNCTION_LINES} lines: {long}"


#: The modules that may try an Airflow import and fall back to another: names that moved between
#: the Airflow versions the package supports are imported from where the running one has them,
#: in one place.
COMPAT_MODULES = frozenset({"airflow_aliyun_tasks._compat"})


def _airflow_import(node: ast.stmt) -> str | None:
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "airflow":
        return node.module
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "airflow":
                return alias.name
    return None


def test_only_the_compat_module_tries_airflow_imports() -> None:
    """No ``try: from airflow... except ImportError`` outside ``_compat``: a name that moved
    between Airflow versions is imported from there by every other module."""
    found: list[str] = []
    for name, path in _modules().items():
        if name in COMPAT_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Try):
                continue
            for stmt in ast.walk(ast.Module(body=node.body, type_ignores=[])):
                module = _airflow_import(stmt) if isinstance(stmt, ast.stmt) else None
                if module is not None:
                    found.append(f"{name}:{stmt.lineno}: {module}")
    assert not found, found


def test_the_compat_module_is_found_by_the_scan() -> None:
    """The scan above sees the fallbacks of ``_compat`` (so it would see one elsewhere)."""
    path = _modules()["airflow_aliyun_tasks._compat"]
    tries = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Try)]
    assert tries
    assert all(any(_airflow_import(s) for s in t.body) for t in tries)
