"""Where a poll's CPU goes: cProfile of the package's async hook poll (and the official SDK's).

Prints, as JSON, the share of in-function time (``tottime``) per component (the package's
modules, aiohttp, asyncio, json, hashing...) and the top functions, for ``--polls`` polls at
``--concurrency``. Profiling slows everything down several times: the shares, not the
absolute times, are the finding.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
from collections.abc import Mapping
from typing import Any

from bench.common import emit, pin
from bench.poll import measure_async, package_async, sdk

COMPONENTS: tuple[tuple[str, str], ...] = (
    ("airflow_aliyun_tasks/signing.py", "package: signing"),
    ("airflow_aliyun_tasks/_transport/", "package: transport"),
    ("airflow_aliyun_tasks/client.py", "package: client (retry, headers, decode)"),
    ("airflow_aliyun_tasks/_call.py", "package: client (retry, headers, decode)"),
    ("airflow_aliyun_tasks/_decode.py", "package: client (retry, headers, decode)"),
    ("airflow_aliyun_tasks/_loop_clients.py", "package: client (retry, headers, decode)"),
    ("airflow_aliyun_tasks/hooks.py", "package: hook"),
    ("airflow_aliyun_tasks/services/", "package: parse"),
    ("airflow_aliyun_tasks/status.py", "package: parse"),
    ("airflow_aliyun_tasks/credentials.py", "package: credentials"),
    ("/aiohttp/", "aiohttp"),
    ("/yarl/", "aiohttp (yarl, multidict)"),
    ("/multidict/", "aiohttp (yarl, multidict)"),
    ("/httpx/", "httpx"),
    ("/httpcore/", "httpx"),
    ("/asyncio/", "asyncio event loop"),
    ("/selectors.py", "asyncio event loop"),
    ("/json/", "json"),
    ("/Tea/", "official SDK"),
    ("/darabonba/", "official SDK"),
    ("/alibabacloud_", "official SDK"),
    ("/tenacity/", "tenacity"),
    ("/greenback/", "Airflow triggerer: greenback portal"),
    ("/greenlet/", "Airflow triggerer: greenback portal"),
    ("/outcome/", "Airflow triggerer: greenback portal"),
    ("airflow_aliyun_tasks/triggers.py", "package: trigger"),
    ("/structlog/", "Airflow logging (structlog)"),
    ("/airflow/", "Airflow"),
    ("/bench/", "benchmark harness"),
    ("/heapq.py", "asyncio event loop"),
)
BUILTIN_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("_hashlib", "hashing (C)"),
    ("_hmac", "hashing (C)"),
    ("hmac", "hashing (C)"),
    ("socket", "sockets (C)"),
    ("select", "asyncio event loop"),
    ("epoll", "asyncio event loop"),
    ("json", "json"),
    ("loads", "json"),
)


def component(filename: str, name: str) -> str:
    for needle, label in COMPONENTS:
        if needle in filename:
            return label
    if filename == "~":
        for needle, label in BUILTIN_COMPONENTS:
            if needle in name:
                return label
        return "other built-ins"
    return "other Python"


def digest(profiler: cProfile.Profile, polls: int, top: int = 25) -> dict[str, Any]:
    """A profile's in-function time per component, and its top functions, per poll."""
    stats = pstats.Stats(profiler)
    raw: Mapping[Any, Any] = {
        # the time the loop sleeps in epoll/select waiting for I/O is idle, not CPU
        k: v
        for k, v in stats.stats.items()  # type: ignore[attr-defined]
        if not (k[0] == "~" and ("of 'select.epoll'" in k[2] or "select.select" in k[2]))
    }
    total = sum(v[2] for v in raw.values()) or 1.0
    groups: dict[str, float] = {}
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        label = component(filename, name)
        groups[label] = groups.get(label, 0.0) + tottime
        short = filename.replace("\\", "/").split("site-packages/")[-1].split("/src/")[-1]
        short = short.split("/lib/python3")[-1]
        if "/bench/" in short:
            short = "bench/" + short.rsplit("/bench/", 1)[1]
        rows.append(
            {
                "function": f"{short}:{line}({name})" if filename != "~" else name,
                "component": label,
                "calls_per_poll": ncalls / max(1, polls),
                "tottime_share": tottime / total,
                "cumtime_share": cumtime / total,
            }
        )
    rows.sort(key=lambda r: r["tottime_share"], reverse=True)
    return {
        "polls": polls,
        "function_calls_per_poll": sum(v[1] for v in raw.values()) / max(1, polls),
        "components": dict(sorted(((k, v / total) for k, v in groups.items()), key=lambda kv: -kv[1])),
        "top": rows[:top],
    }


def profile(fns: list[Any], polls: int) -> dict[str, Any]:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(measure_async(fns, len(fns)))  # warm
        profiler = cProfile.Profile()
        profiler.enable()
        loop.run_until_complete(measure_async(fns, polls))
        profiler.disable()
        from airflow_aliyun_tasks import client

        loop.run_until_complete(client.aclose_shared_client())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    return digest(profiler, polls)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True)
    parser.add_argument("--polls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--service", default="dataworks")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args(argv)
    if args.cpu is not None:
        pin(args.cpu)
    ports = json.loads(args.ports)
    result = {
        "service": args.service,
        "concurrency": args.concurrency,
        "package": profile(package_async(args.service)(args.concurrency), args.polls),
        "sdk": profile(sdk(args.service, ports, use_async=True)(args.concurrency), max(200, args.polls // 4)),
    }
    emit(result)


if __name__ == "__main__":
    main()
