"""Test doubles the trigger tests share.

:class:`ModuleProxy` replaces a module *inside one module under test* (``monkeypatch.setattr(
triggers_module, "asyncio", ModuleProxy(asyncio, sleep=fake))``). Never patch the real module's
attribute (``asyncio.sleep``, ``time.time``) instead: that changes it for every thread of the
test process, and an event loop another test left running in a thread (an emulator, a client's
loop) would then spin on a sleep that returns at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from airflow_aliyun_tasks.status import TaskStatus

_real_sleep = asyncio.sleep


class ModuleProxy:
    """Stands in for a module inside the module under test: overrides some names, delegates
    the rest."""

    def __init__(self, real: Any, **overrides: Any) -> None:
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FakeHook:
    """``aget_task_status`` walks ``script``: TaskStatus objects are returned, exceptions raised;
    a poll past the end of the script fails the test. ``clock`` (anything with ``now``) stamps
    :attr:`call_times` instead of ``time.time()``."""

    def __init__(self, script: Iterable[TaskStatus | BaseException], clock: Any = None) -> None:
        self.script = list(script)
        self.clock = clock
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.call_times: list[float] = []

    async def aget_task_status(self, service: str, **ids: Any) -> TaskStatus:
        self.calls.append((service, ids))
        self.call_times.append(self.clock.now if self.clock else time.time())
        await _real_sleep(0)
        if not self.script:
            raise AssertionError("the trigger polled more often than the test scripted")
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item
