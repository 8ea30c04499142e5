"""Where a waiting trigger's memory goes: ``python -m bench.trigger_memory``.

Starts K triggers of one kind (``package``: ``AlibabaCloudTaskTrigger`` on DataWorks; ``floor``:
``bench.floor_trigger.FloorTrigger``) the way Airflow's ``TriggerRunner.run_trigger`` runs them
(a task per trigger that enters a greenback portal, binds structlog context variables and
consumes ``trigger.run()``), against the fixed-response server, lets every one poll twice, and
measures, once they are all idle between polls, what stays per trigger:

- ``rss``: the process's resident memory (one run without tracemalloc);
- ``heap``: the live Python heap (tracemalloc, another run), and where it was allocated: each
  block is charged to the innermost frame of the package (or of the floor trigger), then its
  innermost frame; ``--top`` lines, bytes and blocks per trigger;
- ``objects``: garbage-collected objects per trigger, by type;
- ``first_trigger_rss``: what the warm-up trigger's two polls added, once, to a process that
  has imported what a triggerer's runner imports (the trigger's modules, the loop's client,
  the shared caches): at N waits, N-th of it shows in a per-wait
  figure such as ``python -m bench triggerer``'s.

One warm-up trigger polls first, so that what every process holds once (imports, the loop's
shared client, caches keyed per connection) is not charged to the K triggers. Prints one JSON
line per kind. Options: ``--kinds``, ``--triggers`` (K), ``--top``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from typing import Any

from bench.common import child_env
from bench.trigger_probe import drive, make_trigger, server_requests

_OURS = ("airflow_aliyun_tasks", f"bench{os.sep}floor_trigger.py")


def _types() -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] = counts.get(name, 0) + 1
    return counts


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename.rsplit(os.sep + "site-packages" + os.sep, 1)[-1]
    return f"{name.rsplit(os.sep + 'src' + os.sep, 1)[-1].rsplit(os.sep + 'bench' + os.sep, 1)[-1]}:{frame.lineno}"


def _site(tb: tracemalloc.Traceback) -> str:
    """Where a block was allocated: the innermost frame of the trigger's own code (the package,
    or the floor trigger), then the innermost frame of all."""
    frames = list(tb)[::-1]  # most recent first
    ours = next((f for f in frames if any(part in f.filename for part in _OURS)), None)
    inner = _where(frames[0])
    return inner if ours is None or ours is frames[0] else f"{_where(ours)} > {inner}"


async def _polled(port: int, since: int, count: int) -> None:
    while server_requests(port) - since < count:
        await asyncio.sleep(0.05)


async def measure(kind: str, k: int, port: int, traced: bool, top: int) -> dict[str, Any]:
    # A poll interval long enough for every trigger to be idle when measured, short enough for
    # two rounds of polls to take seconds: every trigger polls at once, then again.
    interval = 2.0 + k / 400.0
    # What a triggerer's runner has imported before any trigger runs: not the first trigger's.
    import airflow.jobs.triggerer_job_runner
    import airflow.sdk
    import airflow.triggers.base  # noqa: F401
    import greenback  # noqa: F401
    import structlog.contextvars  # noqa: F401

    gc.collect()
    rss_first = _rss()
    warm = asyncio.create_task(drive(make_trigger(kind, 999_999, interval, port), 999_999, True))
    r0 = server_requests(port)
    await _polled(port, r0, 2)
    await asyncio.sleep(0.2)
    gc.collect()
    rss_first = _rss() - rss_first
    if traced:
        tracemalloc.start(30)
    before = tracemalloc.take_snapshot() if traced else None
    rss0 = _rss()
    types0 = _types()
    r0 = server_requests(port)
    tasks = []
    for i in range(k):
        await asyncio.sleep(0)  # as the runner does between triggers
        trigger = make_trigger(kind, i, interval, port)
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(drive(trigger, i, True)))
    await _polled(port, r0, 2 * k)
    await asyncio.sleep(min(1.0, interval / 4))
    gc.collect()
    out: dict[str, Any] = {"kind": kind, "triggers": k, "polls_each": 2}
    if not traced:  # what the first trigger costs the process once: its modules, shared objects
        out["first_trigger_rss_bytes"] = rss_first
    if traced:
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        assert before is not None
        sites: dict[str, list[int]] = {}
        for stat in after.compare_to(before, "traceback"):
            site = sites.setdefault(_site(stat.traceback), [0, 0])
            site[0] += stat.size_diff
            site[1] += stat.count_diff
        total = sum(size for size, _ in sites.values())
        out["heap_bytes_per_trigger"] = round(total / k, 1)
        ranked = sorted(sites.items(), key=lambda kv: -abs(kv[1][0]))[:top]
        out["heap_sites"] = [
            (site, round(size / k, 1), round(count / k, 2)) for site, (size, count) in ranked
        ]
    else:
        out["rss_bytes_per_trigger"] = round((_rss() - rss0) / k, 1)
    types1 = _types()
    delta = {name: (types1.get(name, 0) - types0.get(name, 0)) / k for name in types1}
    out["objects_per_trigger"] = round(sum(delta.values()), 2)
    out["objects_by_type"] = {
        name: round(v, 2) for name, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v >= 0.5
    }
    for task in (*tasks, warm):
        task.cancel()
    await asyncio.gather(*tasks, warm, return_exceptions=True)
    return out


def _child(kind: str, k: int, traced: bool, top: int) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--watch-stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    try:
        ports = json.loads(server.stdout.readline())["ports"]
        env = child_env(ports, tempfile.mkdtemp(prefix="aliyun-bench-memory-"))
        code = (
            "import asyncio, json, sys; from bench.trigger_memory import measure; "
            f"print(json.dumps(asyncio.run(measure({kind!r}, {k}, {int(ports['dataworks'])}, {traced}, {top}))))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, timeout=1800
        )
        if done.returncode != 0:
            raise RuntimeError(f"the {kind} probe failed:\n{done.stderr[-4000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        with contextlib.suppress(OSError):
            server.stdin.close()
        server.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="floor,package")
    parser.add_argument("--triggers", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for kind in args.kinds.split(","):
        rss = _child(kind, args.triggers, False, args.top)
        heap = _child(kind, args.triggers, True, args.top)
        rss.update({key: value for key, value in heap.items() if key.startswith("heap")})
        print(json.dumps(rss))


if __name__ == "__main__":
    main()
