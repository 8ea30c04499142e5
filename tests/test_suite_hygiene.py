"""Rules the test suite keeps so that one test cannot break another in the same process."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
#: Standard-library modules whose attributes every thread of the process uses.
SHARED_MODULES = frozenset({"asyncio", "time", "os", "socket", "uuid", "random", "threading"})
#: Process-wide patches kept on purpose: conftest's guard that a ``unit`` test opens no socket
#: (it refuses a connection; it never returns early or records).
ALLOWED = {"conftest.py": ("socket.socket, 'connect'", "socket.socket, 'connect_ex'")}


def process_wide_patches(source: str) -> list[str]:
    """``monkeypatch.setattr`` calls in ``source`` that replace an attribute of a shared
    standard-library module itself (``setattr(asyncio, "sleep", f)``,
    ``setattr(triggers_module.asyncio, "sleep", f)``, ``setattr("time.time", f)``), as
    ``line: call``. Replacing the module inside the module under test
    (``setattr(triggers_module, "asyncio", ModuleProxy(...))``) is not one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setattr"
            and node.args
        ):
            continue
        target = node.args[0]
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            hit = target.value.split(".")[0] in SHARED_MODULES
        elif isinstance(target, ast.Name):
            hit = target.id in SHARED_MODULES
        elif isinstance(target, ast.Attribute):
            hit = target.attr in SHARED_MODULES
        else:
            hit = False
        if hit:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_rule_finds_what_it_should() -> None:
    assert process_wide_patches('monkeypatch.setattr(triggers_module.asyncio, "sleep", f)')
    assert process_wide_patches('monkeypatch.setattr(client_module.time, "time", f)')
    assert process_wide_patches('monkeypatch.setattr(asyncio, "sleep", f)')
    assert process_wide_patches('monkeypatch.setattr("time.time", f)')
    assert not process_wide_patches('monkeypatch.setattr(triggers_module, "asyncio", ModuleProxy(asyncio))')
    assert not process_wide_patches('monkeypatch.setattr(AlibabaCloudTaskTrigger, "_hook", f)')


def test_no_test_patches_a_shared_module_for_the_whole_process() -> None:
    """A patched ``asyncio.sleep`` or ``time.time`` is seen by every thread of the test process:
    an event loop another test left in a thread spins on a sleep that returns at once (and a
    fake that records its calls grows without bound). Patch the module inside the module under
    test instead (``fakes.ModuleProxy``)."""
    offenders = {
        path.name: hits
        for path in sorted(TESTS.glob("*.py"))
        if path.name != Path(__file__).name
        and (
            hits := [
                hit
                for hit in process_wide_patches(path.read_text())
                if not any(allowed in hit for allowed in ALLOWED.get(path.name, ()))
            ]
        )
    }
    assert offenders == {}
