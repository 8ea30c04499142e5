"""What one poll of a trigger costs the event loop: ``python -m bench.trigger_probe``.

Drives K triggers of one kind (``package``: ``AlibabaCloudTaskTrigger``; ``floor``:
``bench.floor_trigger.FloorTrigger``) the way Airflow's ``TriggerRunner.run_trigger`` does (a
task per trigger that enters a greenback portal, binds structlog context variables and consumes
``trigger.run()``), against the fixed-response server, and counts over a steady window, per poll:

- ``steps``: task steps run by the loop (each resumption of a suspended task: in the triggerer,
  each one goes through the task's greenback portal, a greenlet switch in and out);
- ``callbacks``: every other callback the loop ran (``call_soon`` handles, I/O callbacks);
- ``timers``: timers scheduled (``loop.call_at``/``call_later``), and how many were cancelled;
- ``tasks``: tasks created, ``futures``: futures created by ``loop.create_future``;
- ``calls``: Python function calls (``sys.setprofile``, a separate window: it slows the loop;
  a coroutine's resumption counts as a call);
- ``gc``: garbage collections per 1,000 polls by generation, and their time per poll;
- ``alloc_peak``: the Python heap's peak growth while K triggers poll once at the same moment,
  per poll (tracemalloc), a measure of what one poll allocates;
- ``cpu_us``: process CPU per poll in a window without any of the counting hooks.

Prints one JSON line. Options: ``--kind``, ``--triggers`` (K), ``--interval``, ``--window``,
``--no-portal``, ``--batch`` (N: the triggers start N at a time and each batch polls together, as
in a triggerer, which starts at most 50 per loop; by default each polls at a moment of its own,
and the loop wakes once per poll, a cost that hides the triggers' own difference).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from bench.common import CONN_ID, child_env

POLLS = [0]


def make_trigger(kind: str, i: int, interval: float, port: int) -> Any:
    if kind == "floor":
        from bench.floor_trigger import FloorTrigger

        return FloorTrigger(
            host="127.0.0.1", port=port, job_id=f"70ecdaec-bf21-{i:06d}", poll_interval=interval
        )
    from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

    return AlibabaCloudTaskTrigger(
        service="dataworks",
        ids={"job_id": f"70ecdaec-bf21-{i:06d}"},
        aliyun_conn_id=CONN_ID,
        poll_interval=interval,
    )


async def drive(trigger: Any, trigger_id: int, portal: bool) -> None:
    if portal:
        import greenback

        await greenback.ensure_portal()
    from structlog.contextvars import bind_contextvars

    bind_contextvars(
        trigger_id=trigger_id, dag_id="bench", task_id="wait", run_id="r", try_number=1, map_index=-1
    )
    async for _ in trigger.run():
        pass


class Counters:
    def __init__(self) -> None:
        self.steps = 0
        self.callbacks = 0
        self.timers = 0
        self.cancelled = 0
        self.tasks = 0
        self.futures = 0
        self.on = False

    def snapshot(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "on"}


def install(loop: asyncio.AbstractEventLoop, c: Counters) -> None:
    handle_run = asyncio.events.Handle._run

    def counted_run(self: asyncio.Handle) -> None:
        if c.on:
            callback = self._callback
            if (
                type(callback).__name__ == "TaskStepMethWrapper"
                or getattr(callback, "__name__", "") == "task_wakeup"
            ):
                c.steps += 1
            else:
                c.callbacks += 1
        handle_run(self)

    asyncio.events.Handle._run = counted_run  # type: ignore[method-assign]
    call_at = loop.call_at

    def counted_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
        if c.on:
            c.timers += 1
        return call_at(when, callback, *args, **kw)

    loop.call_at = counted_call_at  # type: ignore[method-assign]
    cancel = asyncio.TimerHandle.cancel

    def counted_cancel(self: asyncio.TimerHandle) -> None:
        if c.on and not self.cancelled():
            c.cancelled += 1
        cancel(self)

    asyncio.TimerHandle.cancel = counted_cancel  # type: ignore[method-assign]
    create_future = loop.create_future

    def counted_future() -> asyncio.Future[Any]:
        if c.on:
            c.futures += 1
        return create_future()

    loop.create_future = counted_future  # type: ignore[method-assign]

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        if c.on:
            c.tasks += 1
        return asyncio.Task(coro, loop=loop, **kw)

    loop.set_task_factory(factory)  # type: ignore[arg-type]


def server_requests(port: int) -> int:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(sum(json.loads(data.split(b"\r\n\r\n", 1)[1])["requests"].values()))


async def probe(
    kind: str, k: int, interval: float, window: float, port: int, portal: bool, batch: int = 0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    c = Counters()
    out: dict[str, Any] = {
        "kind": kind,
        "triggers": k,
        "interval": interval,
        "portal": portal,
        "batch": batch,
    }
    # 1. the alloc peak of one round of polls, all at once, from a quiet loop
    tracemalloc.start()
    triggers = [make_trigger(kind, i, 3600.0, port) for i in range(k)]
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    first = [loop.create_task(drive(t, i, portal)) for i, t in enumerate(triggers)]
    r0 = server_requests(port)
    while server_requests(port) - r0 < k:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out["first_poll_peak_bytes_per_trigger"] = (peak - base) / k
    out["retained_bytes_per_trigger"] = (cur - base) / k
    for t in first:
        t.cancel()
    await asyncio.gather(*first, return_exceptions=True)
    gc.collect()

    # 2. steady polling, spread over the interval; or (batch) started as a triggerer starts them,
    # `batch` at a time, so that the triggers of a batch poll together from then on
    install(loop, c)
    tasks = []
    batches = -(-k // batch) if batch else k
    for i in range(k):
        t = make_trigger(kind, 10_000 + i, interval, port)
        slot = i // batch if batch else i
        tasks.append(loop.create_task(_delayed(drive(t, 10_000 + i, portal), interval * slot / batches)))
    await asyncio.sleep(interval * 2)

    async def window_of(seconds: float, hooks: bool, calls: bool) -> dict[str, Any]:
        counts: collections.Counter[str] = collections.Counter()
        r0 = server_requests(port)
        s0 = c.snapshot()
        c.on = hooks
        if calls:
            n = [0]

            def prof(frame: Any, event: str, arg: Any) -> None:
                if event == "call":
                    n[0] += 1
                    counts[
                        f"{frame.f_code.co_filename.rsplit('site-packages/', 1)[-1]}:{frame.f_code.co_name}"
                    ] += 1

            sys.setprofile(prof)
        gcs = [0, 0, 0]
        gc_time = [0.0, 0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_time[1] = time.perf_counter()
            else:
                gcs[info["generation"]] += 1
                gc_time[0] += time.perf_counter() - gc_time[1]

        gc.callbacks.append(on_gc)
        cpu0 = time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        gc.callbacks.remove(on_gc)
        if calls:
            sys.setprofile(None)
        c.on = False
        polls = server_requests(port) - r0
        s1 = c.snapshot()
        res: dict[str, Any] = {
            "polls": polls,
            "cpu_us": cpu / polls * 1e6 if polls else None,
            "gc_per_1000_polls": [g * 1000 / polls for g in gcs] if polls else None,
            "gc_us": gc_time[0] / polls * 1e6 if polls else None,
        }
        if hooks:
            res.update({key: (s1[key] - s0[key]) / polls for key in s1})
        if calls:
            res["calls"] = sum(counts.values()) / polls
            res["top_calls"] = [(name, round(v / polls, 2)) for name, v in counts.most_common(120)]
        return res

    out["cpu"] = await window_of(window, hooks=False, calls=False)
    out["counts"] = await window_of(window, hooks=True, calls=False)
    out["calls"] = await window_of(min(window, interval), hooks=False, calls=True)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return out


async def _delayed(coro: Any, delay: float) -> None:
    await asyncio.sleep(delay)
    await coro


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("package", "floor"), default="package")
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--no-portal", action="store_true")
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="start the triggers N at a time, each batch polling together (a triggerer starts "
        "50 per loop: --batch 50); 0: every trigger at its own moment",
    )
    parser.add_argument("--port", type=int, default=0, help="a running bench.server's dataworks port")
    args = parser.parse_args(argv)
    server = None
    port = args.port
    if not port:
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--watch-stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        ports = json.loads(server.stdout.readline())["ports"]
        port = int(ports["dataworks"])
        if os.environ.get(f"AIRFLOW_CONN_{CONN_ID.upper()}") is None:
            import tempfile

            os.environ.update(child_env(ports, tempfile.mkdtemp(prefix="aliyun-bench-probe-")))
    try:
        result = asyncio.run(
            probe(args.kind, args.triggers, args.interval, args.window, port, not args.no_portal, args.batch)
        )
    finally:
        if server is not None and server.stdin is not None:
            with contextlib.suppress(OSError):
                server.stdin.close()
            server.wait(timeout=10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
