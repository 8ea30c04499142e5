"""The trigger at scale: thousands of ``AlibabaCloudTaskTrigger.run()`` generators on one loop.

Run by ``python -m bench`` in its own process, pinned to the client CPU. Each trigger is driven
the way Airflow 3.3's triggerer drives it: one asyncio task per trigger that enters a greenback
portal (``await greenback.ensure_portal()``, as ``TriggerRunner.run_trigger`` does unless
``AIRFLOW_DISABLE_GREENBACK_PORTAL=true``) and consumes ``trigger.run()`` with ``async for``.
The hook resolves the ``AIRFLOW_CONN_*`` connection pointed at the fixed-response server, which
answers "running" forever. Waits are spread round-robin over the four services (one server
port each). Airflow's own logging configuration stays in place (trigger log lines go through
structlog to this process's stdout, which the harness sends to a file).

Modes:

- ``steady``: first polls spread evenly over one poll interval (``initial_delay``), as waits
  arrive over time in a real deployment. After one whole interval (every wait has polled and
  resolved its connection), a window measures CPU share of one core, polls, event-loop lag (a
  10 ms ticker), TCP connections per endpoint, and memory per wait (RSS delta).
  ``--variant`` measures the same way what sets the frontier: ``bare`` tasks that only wake
  at the same rate, the trigger with a ``fake-hook`` that does no I/O, and the ``floor``
  client of ``bench/poll.py`` polling at the same rate; ``--no-portal`` and ``--uvloop`` show
  what the triggerer's greenback portal and asyncio's own loop cost. The ticker's own CPU
  (measured alone first) is reported, and subtracted in ``cpu_share_net_of_ticker``.
- ``burst``: every first poll at once (a triggerer restart: the waits are created as fast as
  the triggerer creates triggers, with no initial delay). Until every wait has polled once:
  the longest event-loop lag, failed polls and client retries, connections per endpoint (the
  server's count of connections open at once, and the client pool's own count), and the time
  it takes; then memory per wait (RSS delta).
- ``memory``: without the portal, every wait polled twice (a short interval) and idle: RSS per
  task of bare tasks in a greenback portal, then RSS per wait of the triggers on top (what the
  portal costs, what the trigger costs), the objects each wait keeps, by type, and RSS per wait
  of plain tasks that poll with their own hook and keep the last status (the package's part).
  With ``--traced``: live Python heap bytes (tracemalloc) instead of RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from bench.common import CONN_ID, SERVICES, emit, ids, percentile, pin


class Counts:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.first = 0  # waits that have finished their first poll (or failed it)
        self.events: list[Any] = []
        self.retries = 0
        self.inflight = 0


COUNTS = Counts()


class _RetryCounter(logging.Handler):
    """Counts the client's "attempt N failed, retrying" warnings (each is a failed request)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            COUNTS.retries += 1


def counting_trigger_class() -> type:
    """The package's trigger, whose hook counts polls: the only difference is one frame."""
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
    from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

    class CountingHook(AlibabaCloudTasksHook):
        polled = False

        async def aget_task_status(self, service: str, **task_ids: Any) -> Any:
            COUNTS.inflight += 1
            try:
                status = await super().aget_task_status(service, **task_ids)
            except Exception:
                COUNTS.failed += 1
                if not self.polled:
                    self.polled = True
                    COUNTS.first += 1
                raise
            finally:
                COUNTS.inflight -= 1
            COUNTS.ok += 1
            if not self.polled:
                self.polled = True
                COUNTS.first += 1
            return status

    class CountingTrigger(AlibabaCloudTaskTrigger):
        def _hook(self) -> Any:
            return CountingHook(aliyun_conn_id=self.aliyun_conn_id)

    return CountingTrigger


def server_stats(port: int) -> dict[str, Any]:
    """The server's counters (a blocking call: only at the edges of a measured window)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /_stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


def reset_server_max(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /_stats?reset HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass


def rss() -> int:
    """Resident memory of this process; the Python heap's live bytes instead while tracemalloc
    traces (``memory --traced``: no fragmentation, no allocator slack)."""
    import tracemalloc

    if tracemalloc.is_tracing():
        return tracemalloc.get_traced_memory()[0]
    import psutil

    return int(psutil.Process().memory_info().rss)


def client_connections(ports: Mapping[str, int]) -> dict[str, int]:
    """This process's established TCP connections, per server port (psutil)."""
    import psutil

    by_port = {port: name for name, port in ports.items()}
    counts = dict.fromkeys(SERVICES, 0)
    for conn in psutil.Process().net_connections(kind="tcp"):
        if conn.raddr and conn.status == psutil.CONN_ESTABLISHED:
            name = by_port.get(conn.raddr.port)
            if name in counts:
                counts[name] += 1
    return counts


class GcPauses:
    """Durations of the garbage collector's runs (``gc.callbacks``), per generation."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []  # (perf_counter at end, generation, seconds)
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            now = time.perf_counter()
            self.pauses.append((now, int(info.get("generation", 0)), now - self._start))

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        full = [p for t, g, p in self.pauses if g == 2 and t >= since]
        return {
            "collections": sum(1 for t, _, _ in self.pauses if t >= since),
            "full_collections": len(full),
            "longest_full_ms": max(full, default=0.0) * 1e3,
            "longest_ms": max((p for t, _, p in self.pauses if t >= since), default=0.0) * 1e3,
        }


GC = GcPauses()


class Ticker:
    """A 10 ms ticker: how late each tick wakes is the event loop's lag."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.samples: list[tuple[float, float]] = []  # (loop time, lag seconds)
        self.pool_peak = 0
        self.pool: Any = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.period
        while True:
            start = loop.time()
            await asyncio.sleep(period)
            now = loop.time()
            self.samples.append((now, max(0.0, now - start - period)))
            pool = self.pool
            if pool is not None and pool.connections > self.pool_peak:
                self.pool_peak = pool.connections

    def lags(self, since: float, until: float = float("inf")) -> list[float]:
        return [lag for t, lag in self.samples if since <= t <= until]


async def drive(trigger: Any, portal: bool) -> None:
    """What the triggerer's ``run_trigger`` does with a trigger, minus its bookkeeping."""
    if portal:
        import greenback

        await greenback.ensure_portal()
    async for event in trigger.run():
        COUNTS.events.append(event.payload)


async def start_triggers(n: int, interval: float, *, spread: bool, portal: bool) -> list[asyncio.Task[None]]:
    """Create the triggers and their tasks the way ``TriggerRunner.create_triggers`` does: one
    at a time, yielding to the loop (``await asyncio.sleep(0)``) before inflating each trigger
    and again before creating its task, all of them as fast as the loop goes (no database)."""
    cls = counting_trigger_class()
    end = time.time() + 24 * 3600
    tasks = []
    for i in range(n):
        service = SERVICES[i % len(SERVICES)]
        await asyncio.sleep(0)
        trigger = cls(
            service=service,
            ids=ids(service, i),
            aliyun_conn_id=CONN_ID,
            poll_interval=interval,
            end_time=end,
            initial_delay=interval * (i + 0.5) / n if spread else 0.0,
        )
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(drive(trigger, portal)))
    return tasks


async def warm(ports: Mapping[str, int]) -> Any:
    """Import and open what every process of a triggerer has once: the hook path, the shared
    client of this loop. Returns the loop's lean transport (to read its connection count)."""
    from airflow_aliyun_tasks._loop_clients import async_sender
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    hook = AlibabaCloudTasksHook(aliyun_conn_id=CONN_ID)
    for service in SERVICES:
        await hook.aget_task_status(service, **ids(service, 999999))
    return async_sender()


def lag_summary(lags: list[float]) -> dict[str, Any]:
    return {
        "samples": len(lags),
        "max_ms": max(lags, default=0.0) * 1e3,
        "p99_ms": percentile(lags, 0.99) * 1e3,
        "p50_ms": percentile(lags, 0.50) * 1e3,
    }


async def start_bare(n: int, interval: float) -> list[asyncio.Task[None]]:
    """``bare``: tasks that only wake every ``interval`` (no trigger, no I/O): the event loop's
    own cost of that many timer wake-ups."""

    async def bare(delay: float) -> None:
        await asyncio.sleep(delay)
        while True:
            COUNTS.ok += 1
            await asyncio.sleep(interval)

    tasks = []
    for i in range(n):
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(bare(interval * (i + 0.5) / n)))
    return tasks


async def start_floor(n: int, interval: float, ports: Mapping[str, int]) -> list[asyncio.Task[None]]:
    """``floor``: tasks that poll with the hand-written HTTP/1.1 client of ``bench/poll.py``
    (the package's signer, ``json.loads``, 16 keep-alive connections per service)."""
    from bench.poll import floor

    pools: dict[str, asyncio.Queue[Any]] = {}
    for service in SERVICES:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for fn in floor(service, ports)(16):
            queue.put_nowait(fn)
        pools[service] = queue

    async def poll(service: str, delay: float) -> None:
        await asyncio.sleep(delay)
        queue = pools[service]
        while True:
            fn = await queue.get()
            try:
                await fn()
            finally:
                queue.put_nowait(fn)
            COUNTS.ok += 1
            await asyncio.sleep(interval)

    tasks = []
    for i in range(n):
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(poll(SERVICES[i % len(SERVICES)], interval * (i + 0.5) / n)))
    return tasks


def fake_hook() -> None:
    """``fake-hook``: the trigger as it is, its hook answering "running" without any I/O."""
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
    from airflow_aliyun_tasks.status import RUNNING, TaskStatus

    async def aget_task_status(self: Any, service: str, **task_ids: Any) -> TaskStatus:
        await asyncio.sleep(0)
        return TaskStatus(service=service, ids=dict(task_ids), state=RUNNING, raw_status="Running")

    AlibabaCloudTasksHook.aget_task_status = aget_task_status  # type: ignore[method-assign]


def cpu_times() -> tuple[float, float]:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def steady(
    n: int,
    interval: float,
    warmup: float,
    window: float,
    ports: Mapping[str, int],
    portal: bool,
    profile: bool = False,
    variant: str = "trigger",
) -> dict[str, Any]:
    pool = await warm(ports)
    gc.collect()
    rss0 = rss()
    ticker = Ticker()
    ticker.pool = pool
    tick = asyncio.create_task(ticker.run())
    loop = asyncio.get_running_loop()
    # The ticker's own cost (a 10 ms timer is 100 loop wake-ups a second): measured alone.
    await asyncio.sleep(0.5)
    base_cpu, base_t = time.process_time(), loop.time()
    await asyncio.sleep(min(3.0, window))
    ticker_share = (time.process_time() - base_cpu) / (loop.time() - base_t)
    if variant == "bare":
        tasks = await start_bare(n, interval)
    elif variant == "floor":
        tasks = await start_floor(n, interval, ports)
    else:
        if variant == "fake-hook":
            fake_hook()
        tasks = await start_triggers(n, interval, spread=True, portal=portal)
    await asyncio.sleep(warmup)  # every first poll is due within one interval of its creation
    first_polls_done = COUNTS.first
    # Steady state: what the start-up left for the collector is collected before the window
    # (a full collection's pause is a burst's, see burst mode), then nothing grows.
    gc.collect()
    # The collection blocks the loop: let the tick it delayed land before the window starts,
    # so that the window measures the waits, not the harness.
    await asyncio.sleep(2 * ticker.period)
    stats0 = server_stats(ports["sts"])  # blocks for a fraction of a millisecond
    ok0, failed0, retries0 = COUNTS.ok, COUNTS.failed, COUNTS.retries
    profiler = None
    if profile:  # the window's polls under cProfile: for the shares, not the absolute figures
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = loop.time()
    gc_since = time.perf_counter()
    cpu0 = time.process_time()
    user0, sys0 = cpu_times()
    # Sample the client's connections a few times; subtract the sampling's own CPU.
    conn_peak = dict.fromkeys(SERVICES, 0)
    sampling_cpu = 0.0
    samples = 1 if profiler is not None else max(1, int(window))
    for _ in range(samples):
        await asyncio.sleep(window / samples)
        if profiler is not None:
            break
        c0 = time.process_time()
        for name, count in client_connections(ports).items():
            conn_peak[name] = max(conn_peak[name], count)
        sampling_cpu += time.process_time() - c0
    cpu = time.process_time() - cpu0 - sampling_cpu
    user1, sys1 = cpu_times()
    elapsed = loop.time() - t0
    gc_window = GC.summary(gc_since)
    if profiler is not None:
        profiler.disable()
    stats1 = server_stats(ports["sts"])
    requests = sum(stats1["requests"][s] - stats0["requests"][s] for s in SERVICES)
    polls = COUNTS.ok - ok0 if variant in ("bare", "fake-hook") else requests
    lags = ticker.lags(t0, t0 + elapsed)
    gc.collect()
    rss1 = rss()
    tick.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, tick, return_exceptions=True)
    share = cpu / elapsed if elapsed else 0.0
    return {
        "variant": variant,
        "waits": n,
        "poll_interval_s": interval,
        "greenback_portal": portal and variant in ("trigger", "fake-hook"),
        "warmup_s": warmup,
        "window_s": elapsed,
        "first_polls_before_window": first_polls_done,
        "polls": polls,
        "requests": requests,
        "polls_per_s": polls / elapsed if elapsed else 0.0,
        "expected_polls_per_s": n / interval,
        "cpu_share": share,
        "ticker_cpu_share": ticker_share,
        "cpu_share_net_of_ticker": max(0.0, share - ticker_share),
        "user_share": (user1 - user0) / elapsed if elapsed else 0.0,
        "system_share": (sys1 - sys0) / elapsed if elapsed else 0.0,
        "cpu_per_poll_us": cpu / polls * 1e6 if polls else None,
        "net_cpu_per_poll_us": max(0.0, share - ticker_share) * elapsed / polls * 1e6 if polls else None,
        "lag": lag_summary(lags),
        "client_connections_peak": conn_peak,
        "pool_connections_peak": ticker.pool_peak,
        "failed_polls": COUNTS.failed - failed0,
        "client_retries": COUNTS.retries - retries0,
        "events": len(COUNTS.events),
        "rss_per_wait_bytes": (rss1 - rss0) / n,
        "gc": gc_window,
        "profile": _digest(profiler, polls) if profiler is not None else None,
    }


async def burst(
    n: int, interval: float, ports: Mapping[str, int], portal: bool, limit: float
) -> dict[str, Any]:
    pool = await warm(ports)
    gc.collect()
    rss0 = rss()
    ticker = Ticker()
    ticker.pool = pool
    tick = asyncio.create_task(ticker.run())
    await asyncio.sleep(0.05)
    reset_server_max(ports["sts"])
    stats0 = server_stats(ports["sts"])
    await asyncio.sleep(2 * ticker.period)  # the tick the blocking calls above delayed lands now
    loop = asyncio.get_running_loop()
    gc_since = time.perf_counter()
    t0 = loop.time()
    cpu0 = time.process_time()
    tasks = await start_triggers(n, interval, spread=False, portal=portal)
    created = loop.time() - t0
    while COUNTS.first < n and loop.time() - t0 < limit:
        await asyncio.sleep(0.01)
    elapsed = loop.time() - t0
    cpu = time.process_time() - cpu0
    gc_burst = GC.summary(gc_since)
    await asyncio.sleep(0.05)  # the ticker's tick that was due while the last polls ran
    lags = ticker.lags(t0)
    stats1 = server_stats(ports["sts"])
    gc.collect()
    rss1 = rss()
    conns_end = client_connections(ports)
    tick.cancel()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, tick, return_exceptions=True)
    return {
        "waits": n,
        "greenback_portal": portal,
        "completed_first_polls": COUNTS.first,
        "seconds_to_all_first_polls": elapsed,
        "seconds_to_create_tasks": created,
        "cpu_s": cpu,
        "cpu_per_poll_us": cpu / max(1, COUNTS.ok + COUNTS.failed) * 1e6,
        "lag": lag_summary(lags),
        "failed_polls": COUNTS.failed,
        "client_retries": COUNTS.retries,
        "requests": sum(stats1["requests"][s] - stats0["requests"][s] for s in SERVICES),
        "server_max_open_connections": {s: stats1["max_open"][s] for s in SERVICES},
        "server_connections_accepted": {
            s: stats1["connections"][s] - stats0["connections"][s] for s in SERVICES
        },
        "pool_connections_peak": ticker.pool_peak,
        "pool_limit": getattr(pool, "max_connections", None),
        "client_connections_after": conns_end,
        "events": len(COUNTS.events),
        "rss_per_wait_bytes": (rss1 - rss0) / n,
        "gc": gc_burst,
    }


def _digest(profiler: Any, polls: int) -> dict[str, Any]:
    from bench.profile import digest

    return digest(profiler, polls)


def _types() -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] = counts.get(name, 0) + 1
    return counts


async def memory(n: int, ports: Mapping[str, int], limit: float, polls: int, traced: bool) -> dict[str, Any]:
    """Memory per wait once every wait has polled ``polls`` times and none is polling."""
    import greenback

    await warm(ports)
    if traced:
        import tracemalloc

        tracemalloc.start(1)
    forever = asyncio.Event()

    async def bare() -> None:
        await greenback.ensure_portal()
        await forever.wait()

    gc.collect()
    rss0 = rss()
    portals = [asyncio.create_task(bare()) for _ in range(n)]
    await asyncio.sleep(0.5)
    gc.collect()
    rss1 = rss()
    types0 = _types()
    # A short interval so that every wait polls ``polls`` times (the prepared signer is built
    # at the second poll), long enough for all of them to be idle between rounds.
    interval = max(1.0, n / 1000.0 + 1.0)
    tasks = await start_triggers(n, interval, spread=False, portal=False)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while (COUNTS.ok + COUNTS.failed < polls * n or COUNTS.inflight) and loop.time() - t0 < limit:
        await asyncio.sleep(0.005)
    gc.collect()
    rss2 = rss()
    types1 = _types()
    delta = {k: (types1.get(k, 0) - types0.get(k, 0)) / n for k in types1}
    # The package's part alone: a task per wait that polls with its own hook and keeps the last
    # status, as the trigger does, without the trigger object and its logger.
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    kept: list[Any] = [None] * n
    done = [0]

    async def hook_only(i: int) -> None:
        service = SERVICES[i % len(SERVICES)]
        hook = AlibabaCloudTasksHook(aliyun_conn_id=CONN_ID)
        task_ids = ids(service, n + i)
        for _ in range(polls):
            kept[i] = await hook.aget_task_status(service, **task_ids)
            await asyncio.sleep(interval * 0.5)
        done[0] += 1
        await forever.wait()

    loops = []
    for i in range(n):
        await asyncio.sleep(0)
        loops.append(asyncio.create_task(hook_only(i)))
    while done[0] < n and loop.time() - t0 < limit:
        await asyncio.sleep(0.02)
    gc.collect()
    rss3 = rss()
    for task in tasks + portals + loops:
        task.cancel()
    await asyncio.gather(*tasks, *portals, *loops, return_exceptions=True)
    what = "traced" if traced else "rss"
    return {
        "waits": n,
        "polls_each": polls,
        "completed_polls": COUNTS.ok,
        "measure": "Python heap (tracemalloc)" if traced else "RSS",
        f"portal_{what}_per_task_bytes": (rss1 - rss0) / n,
        f"trigger_{what}_per_wait_bytes": (rss2 - rss1) / n,
        f"hook_only_{what}_per_wait_bytes": (rss3 - rss2) / n,
        "gc_objects_per_wait": sum(delta.values()),
        "gc_objects_per_wait_by_type": {
            k: round(v, 2) for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v >= 0.5
        },
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    ports = json.loads(args.ports)
    if args.mode == "steady":
        warmup = args.warmup if args.warmup is not None else args.interval + 1.0
        return await steady(
            args.waits,
            args.interval,
            warmup,
            args.window,
            ports,
            not args.no_portal,
            args.profile,
            args.variant,
        )
    if args.mode == "burst":
        return await burst(args.waits, args.interval, ports, not args.no_portal, args.limit)
    return await memory(args.waits, ports, args.limit, args.polls, args.traced)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--ports", required=True)
    p.add_argument("--mode", choices=("steady", "burst", "memory"), default="steady")
    p.add_argument("--waits", type=int, default=0)
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument(
        "--warmup", type=float, default=None, help="steady: seconds after the last wait starts (interval + 1)"
    )
    p.add_argument("--window", type=float, default=15.0)
    p.add_argument("--limit", type=float, default=120.0, help="give up on a burst after this long")
    p.add_argument("--no-portal", action="store_true")
    p.add_argument("--polls", type=int, default=2, help="memory: polls per wait before measuring")
    p.add_argument("--traced", action="store_true", help="memory: Python heap bytes, not RSS")
    p.add_argument("--profile", action="store_true", help="steady: cProfile the window")
    p.add_argument(
        "--variant",
        choices=("trigger", "fake-hook", "bare", "floor"),
        default="trigger",
        help="steady: what waits (see the module docstring)",
    )
    p.add_argument(
        "--batch",
        default=None,
        help="a JSON list of argument lists: run them one after another in this process (--tiny)",
    )
    p.add_argument("--uvloop", action="store_true", help="run on uvloop instead of asyncio's loop")
    p.add_argument("--cpu", type=int, default=None)
    p.add_argument("--out", required=True, help="write the JSON result (a list, with --batch) here")
    return p


def measure(args: argparse.Namespace) -> dict[str, Any]:
    global COUNTS
    COUNTS = Counts()
    GC.pauses.clear()
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    original = AlibabaCloudTasksHook.aget_task_status
    try:
        if args.uvloop:
            import uvloop

            result = uvloop.run(main_async(args))
        else:
            result = asyncio.run(main_async(args))
    finally:
        AlibabaCloudTasksHook.aget_task_status = original  # type: ignore[method-assign]
    result["mode"] = args.mode
    result["pid"] = os.getpid()
    result["event_loop"] = "uvloop" if args.uvloop else "asyncio"
    return result


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    pinned = pin(args.cpu) if args.cpu is not None else None
    import airflow.sdk  # noqa: F401 - Airflow's logging set-up, as in a triggerer

    logging.getLogger("airflow_aliyun_tasks.client").addHandler(_RetryCounter())
    gc.callbacks.append(GC)
    if args.batch:
        output: Any = []
        for extra in json.loads(args.batch):
            one = parser().parse_args(["--ports", args.ports, "--out", args.out, *extra])
            output.append(dict(measure(one), cpu=pinned))
    else:
        output = dict(measure(args), cpu=pinned)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(output, fh)
    emit({"ok": True, "out": args.out})


if __name__ == "__main__":
    main()
