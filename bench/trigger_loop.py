"""CPU per poll of ``AlibabaCloudTaskTrigger.run`` itself, beside a bare loop doing the same awaits.

A triggerer holds thousands of waits, each polling every 30 s: what ``run()`` does around the
status call (the deadline check, the poll tracker, the sleep) is paid per poll, per wait. This
measures it without HTTP: a fake hook returns a prepared status at once and ``asyncio.sleep`` is
replaced by a coroutine that returns at once, so only the loop's own Python runs. ``floor`` is the
least loop that polls: await the status, look at its state, await the sleep.

Cases: ``steady`` (the same running status every poll: the hot path, nothing logged) and
``progress`` (the progress changes every poll: a change is logged each time, on a logger that
drops it).

``python -m bench.trigger_loop [--polls N] [--repeat R]``; prints JSON: ns per poll for each
case and for the floor, and run()'s overhead over the floor. Figures are ratios of one run, read
side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")

IDS = {"async_task_id": "t-1", "catalog_id": "1234567890"}


class _NullLog:
    def _drop(self, *args: Any, **kwargs: Any) -> None:
        return None

    debug = info = warning = error = exception = _drop


class _Hook:
    """Returns ``statuses[i]`` for the i-th poll, then the final status."""

    def __init__(self, statuses: list[Any], final: Any) -> None:
        self.statuses = statuses
        self.final = final
        self.i = 0

    async def aget_task_status(self, service: str, **ids: Any) -> Any:
        i = self.i
        self.i = i + 1
        return self.statuses[i] if i < len(self.statuses) else self.final


class _AsyncioProxy:
    """``asyncio`` with a ``sleep`` that returns at once."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float) -> None:
        return None


def _statuses(status_cls: Any, case: str, polls: int) -> tuple[list[Any], Any]:
    final = status_cls(service="dlf", ids=dict(IDS), state="succeeded", raw_status="Success")
    if case == "steady":
        running = status_cls(service="dlf", ids=dict(IDS), state="running", raw_status="Executing")
        return [running] * polls, final
    return [
        status_cls(service="dlf", ids=dict(IDS), state="running", raw_status="Executing", progress=i / polls)
        for i in range(polls)
    ], final


def _timed(run: Callable[[], Any]) -> float:
    gc.collect()
    gc.disable()
    try:
        started = time.process_time_ns()
        asyncio.run(run())
        return time.process_time_ns() - started
    finally:
        gc.enable()


def measure_run(triggers: ModuleType, status_cls: Any, case: str, polls: int) -> float:
    """ns per poll of ``triggers.AlibabaCloudTaskTrigger.run`` (``triggers``: a module like
    :mod:`airflow_aliyun_tasks.triggers`, ``status_cls`` its ``TaskStatus``)."""
    statuses, final = _statuses(status_cls, case, polls)
    trigger = triggers.AlibabaCloudTaskTrigger(
        service="dlf", ids=IDS, poll_interval=30.0, end_time=time.time() + 10**9
    )
    trigger._log = _NullLog()
    hook = _Hook(statuses, final)
    trigger._hook = lambda: hook
    real_asyncio = triggers.asyncio
    triggers.asyncio = _AsyncioProxy()

    async def run() -> None:
        async for _event in trigger.run():
            pass

    try:
        elapsed = _timed(run)
    finally:
        triggers.asyncio = real_asyncio
    assert hook.i == polls + 1, hook.i
    return elapsed / (polls + 1)


def measure_floor(status_cls: Any, case: str, polls: int) -> float:
    """ns per poll of the least loop: await the status, check its state, await the sleep."""
    statuses, final = _statuses(status_cls, case, polls)
    hook = _Hook(statuses, final)
    sleep = _AsyncioProxy.sleep

    async def run() -> None:
        while True:
            status = await hook.aget_task_status("dlf", **IDS)
            if status.state == "succeeded":
                return
            await sleep(30.0)

    elapsed = _timed(run)
    assert hook.i == polls + 1
    return elapsed / (polls + 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)

    import airflow_aliyun_tasks.triggers as triggers
    from airflow_aliyun_tasks.status import TaskStatus

    out: dict[str, Any] = {"polls": args.polls, "repeat": args.repeat}
    for case in ("steady", "progress"):
        runs: list[float] = []
        floors: list[float] = []
        for _ in range(args.repeat):  # interleaved
            runs.append(measure_run(triggers, TaskStatus, case, args.polls))
            floors.append(measure_floor(TaskStatus, case, args.polls))
        run_ns, floor_ns = statistics.median(runs), statistics.median(floors)
        out[case] = {
            "run_ns_per_poll": round(run_ns),
            "floor_ns_per_poll": round(floor_ns),
            "overhead_ns_per_poll": round(run_ns - floor_ns),
            "run_over_floor": round(run_ns / floor_ns, 2),
        }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
