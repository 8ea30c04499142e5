"""Client CPU per status poll: the package's hook against the official SDK and a floor.

Run by ``python -m bench`` in its own process, pinned to the client CPU. Every variant polls
the fixed-response server; all variants are measured in one process, interleaved (the order
rotates every repetition), and each measurement is process CPU time (``time.process_time``:
user + system, every thread) divided by the number of polls.

Variants (``kind/service``):

- ``package``: ``AlibabaCloudTasksHook.aget_task_status`` (async) or ``get_task_status``
  (sync); each concurrent worker has its own hook, as each trigger has.
- ``sdk``: the official SDK client's ``*_async`` (async) or plain (sync) method, with a request
  object built per call as the SDK's own examples do.
- ``floor``: hand-written HTTP/1.1 on asyncio streams, one keep-alive connection per worker,
  the package's signer (the same prepared signer), ``json.loads`` of the body, nothing else.
- ``package-aiohttp`` / ``package-httpx`` / ``package-httpx-aiohttp``: the package's hook with
  the client's transport swapped for a lean ``aiohttp`` session (``bench/alt_transports.py``,
  called directly like the package's own), for an ``httpx.AsyncClient`` on httpx's default
  transport, or on ``httpx-aiohttp``'s: the transports the client could have chosen.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.common import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    CONN_ID,
    SERVICES,
    emit,
    ids,
    pin,
    summary,
)

AsyncFn = Callable[[], Awaitable[Any]]
SyncFn = Callable[[], Any]


@dataclass
class Variant:
    kind: str
    service: str
    mode: str  # "async" or "sync"
    concurrency: tuple[int, ...]
    make: Callable[[int], list[Any]]  # concurrency -> one callable per worker
    enter: Callable[[], Awaitable[None]] | None = None
    leave: Callable[[], Awaitable[None]] | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.service}"


# --------------------------------------------------------------------------- package


def package_async(service: str) -> Callable[[int], list[AsyncFn]]:
    def make(concurrency: int) -> list[AsyncFn]:
        from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

        fns: list[AsyncFn] = []
        for i in range(concurrency):
            hook = AlibabaCloudTasksHook(aliyun_conn_id=CONN_ID)
            task_ids = ids(service, i)

            def fn(hook: Any = hook, task_ids: dict[str, str] = task_ids) -> Awaitable[Any]:
                coro: Awaitable[Any] = hook.aget_task_status(service, **task_ids)
                return coro

            fns.append(fn)
        return fns

    return make


def package_sync(service: str) -> Callable[[int], list[SyncFn]]:
    def make(concurrency: int) -> list[SyncFn]:
        from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

        hook = AlibabaCloudTasksHook(aliyun_conn_id=CONN_ID)
        task_ids = ids(service, 0)
        return [lambda: hook.get_task_status(service, **task_ids)]

    return make


class TransportSwitch:
    """Build the client's shared httpx clients on another transport for a variant, then back."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._saved: dict[str, Any] = {}

    async def enter(self) -> None:
        import httpx

        from airflow_aliyun_tasks import _loop_clients as registry
        from airflow_aliyun_tasks._transport import DEFAULT_LIMITS as limits
        from airflow_aliyun_tasks._transport import HttpxAsyncSender, HttpxSyncSender

        await registry.aclose_shared_client()
        self._saved = {"async": registry._new_async_client, "sync": registry._new_sync_client}
        if self.name == "aiohttp":
            from bench.alt_transports import AiohttpTransport

            def new_async() -> tuple[httpx.AsyncClient, Any]:
                transport = AiohttpTransport(limits)
                new = httpx.AsyncClient(
                    transport=transport, limits=limits, trust_env=False, follow_redirects=False
                )
                return new, transport  # the hot path calls it directly
        elif self.name == "httpx-aiohttp":
            import httpx_aiohttp

            def new_async() -> tuple[httpx.AsyncClient, Any]:
                new = httpx.AsyncClient(
                    transport=httpx_aiohttp.AiohttpTransport(),
                    limits=limits,
                    trust_env=False,
                    follow_redirects=False,
                )
                return new, HttpxAsyncSender(new)
        else:

            def new_async() -> tuple[httpx.AsyncClient, Any]:
                new = httpx.AsyncClient(limits=limits, trust_env=False, follow_redirects=False)
                return new, HttpxAsyncSender(new)

        def new_sync() -> tuple[httpx.Client, Any]:
            new = httpx.Client(limits=limits, trust_env=False, follow_redirects=False)
            return new, HttpxSyncSender(new)

        registry._new_async_client = new_async
        registry._new_sync_client = new_sync
        registry.close_sync_clients()

    async def leave(self) -> None:
        from airflow_aliyun_tasks import _loop_clients as registry

        await registry.aclose_shared_client()
        registry._new_async_client = self._saved["async"]
        registry._new_sync_client = self._saved["sync"]
        registry.close_sync_clients()


# --------------------------------------------------------------------------- official SDK


def _sdk_client(service: str, ports: Mapping[str, int]) -> Any:
    from alibabacloud_tea_openapi.utils_models import Config

    config = Config(
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        endpoint=f"127.0.0.1:{ports[service]}",
        protocol="http",
    )
    if service == "dlf":
        from alibabacloud_datalake20200710.client import Client as Dlf

        return Dlf(config)
    if service == "dataworks":
        from alibabacloud_dataworks_public20240518.client import Client as DataWorks

        return DataWorks(config)
    if service == "mma":
        from alibabacloud_maxcompute20220104.client import Client as MaxCompute

        return MaxCompute(config)
    from alibabacloud_pds20220301.client import Client as Pds

    return Pds(config)


def sdk_call(service: str, client: Any, i: int, *, use_async: bool) -> Callable[[], Any]:
    """One status call of the official SDK (a request object per call, as its examples do)."""
    task = ids(service, i)
    if service == "dlf":
        from alibabacloud_datalake20200710.models import GetAsyncTaskStatusRequest

        method = client.get_async_task_status_async if use_async else client.get_async_task_status
        return lambda: method(
            GetAsyncTaskStatusRequest(catalog_id=task["catalog_id"], task_id=task["async_task_id"])
        )
    if service == "dataworks":
        from alibabacloud_dataworks_public20240518.models import GetJobStatusRequest

        method = client.get_job_status_async if use_async else client.get_job_status
        return lambda: method(GetJobStatusRequest(job_id=task["job_id"]))
    if service == "mma":
        method = client.get_mms_async_task_async if use_async else client.get_mms_async_task
        return lambda: method(task["source_id"], task["async_task_id"])
    from alibabacloud_pds20220301.models import GetAsyncTaskRequest

    method = client.get_async_task_async if use_async else client.get_async_task
    return lambda: method(GetAsyncTaskRequest(async_task_id=task["async_task_id"]))


def sdk(service: str, ports: Mapping[str, int], *, use_async: bool) -> Callable[[int], list[Any]]:
    def make(concurrency: int) -> list[Any]:
        client = _sdk_client(service, ports)
        return [sdk_call(service, client, i, use_async=use_async) for i in range(concurrency)]

    return make


# --------------------------------------------------------------------------- the floor


class FloorConnection:
    """HTTP/1.1 over one asyncio stream: write the request, read the head, read Content-Length
    bytes. Only what a fixed-response keep-alive server needs; a lower bound, not a client."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        writer.write(head + body if body else head)
        raw = await reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        lower = raw.lower()
        at = lower.find(b"\r\ncontent-length:")
        length = int(lower[at + 17 : lower.find(b"\r\n", at + 2)]) if at >= 0 else 0
        return status, await reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def floor(service: str, ports: Mapping[str, int]) -> Callable[[int], list[AsyncFn]]:
    def make(concurrency: int) -> list[AsyncFn]:
        from airflow_aliyun_tasks import signing
        from airflow_aliyun_tasks.services import get_service

        spec = get_service(service)
        fns: list[AsyncFn] = []
        for i in range(concurrency):
            task = ids(service, i)
            task.pop("domain_id", None)
            request = spec.build_request(task)
            host = f"127.0.0.1:{ports[service]}"
            target = signing.encode_path(request.path)
            query = signing.canonical_query(request.query)
            if query:
                target += "?" + query
            common = {
                "method": request.method,
                "host": host,
                "pathname": request.path,
                "query": request.query,
                "action": spec.action,
                "version": spec.version,
                "content_type": request.content_type,
                "access_key_id": ACCESS_KEY_ID,
                "access_key_secret": ACCESS_KEY_SECRET,
                "security_token": None,
            }
            pds = spec.signer == "pds"
            signer: Any = (
                signing.PreparedPdsSigner(**common)  # type: ignore[arg-type]
                if pds
                else signing.PreparedAcs3Signer(body=request.body, **common)  # type: ignore[arg-type]
            )
            body = request.body
            start = f"{request.method} {target} HTTP/1.1\r\n"
            length = f"content-length: {len(body)}\r\n" if body else ""
            conn = FloorConnection("127.0.0.1", ports[service])

            async def fn(
                signer: Any = signer,
                conn: FloorConnection = conn,
                start: str = start,
                length: str = length,
                body: bytes = body,
                which: int = 1 if pds else 0,
            ) -> Any:
                headers = signer.headers(signing.dates(time.time())[which], uuid.uuid4().hex)
                head = start + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + length + "\r\n"
                status, payload = await conn.request(head.encode(), body)
                if status != 200:
                    raise RuntimeError(f"floor: HTTP {status}")
                return json.loads(payload)

            fns.append(fn)
        return fns

    return make


# --------------------------------------------------------------------------- measuring


async def measure_async(fns: list[AsyncFn], polls: int) -> tuple[float, float, int]:
    per = max(1, polls // len(fns))

    async def worker(fn: AsyncFn) -> None:
        for _ in range(per):
            await fn()

    # one poll per worker first: connections open, caches warm
    await asyncio.gather(*(fn() for fn in fns))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(fn) for fn in fns))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = per * len(fns)
    return cpu / n, wall / n, n


def measure_sync(fns: list[SyncFn], polls: int) -> tuple[float, float, int]:
    (fn,) = fns
    fn()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(polls):
        fn()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / polls, wall / polls, polls


def variants(ports: Mapping[str, int], concurrency: tuple[int, ...]) -> list[Variant]:
    out: list[Variant] = []
    for service in SERVICES:
        out.append(Variant("package", service, "async", concurrency, package_async(service)))
        out.append(Variant("sdk", service, "async", concurrency, sdk(service, ports, use_async=True)))
        out.append(Variant("floor", service, "async", concurrency, floor(service, ports)))
        out.append(Variant("package", service, "sync", (1,), package_sync(service)))
        out.append(Variant("sdk", service, "sync", (1,), sdk(service, ports, use_async=False)))
    for name in ("aiohttp", "httpx", "httpx-aiohttp"):
        switch = TransportSwitch(name)
        out.append(
            Variant(
                f"package-{name}",
                "dataworks",
                "async",
                concurrency,
                package_async("dataworks"),
                switch.enter,
                switch.leave,
            )
        )
    switch = TransportSwitch("httpx")
    out.append(
        Variant(
            "package-httpx", "dataworks", "sync", (1,), package_sync("dataworks"), switch.enter, switch.leave
        )
    )
    return out


def run(
    ports: Mapping[str, int],
    *,
    reps: int,
    polls: int,
    concurrency: tuple[int, ...],
    kinds: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    todo = [
        (v, c)
        for v in variants(ports, concurrency)
        if kinds is None or v.kind in kinds
        for c in v.concurrency
    ]
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    errors: dict[str, str] = {}

    def key(v: Variant, c: int) -> str:
        return f"{v.kind}/{v.service}/{v.mode}/c{c}"

    def one(v: Variant, c: int, n: int) -> tuple[float, float, int]:
        if v.enter:
            loop.run_until_complete(v.enter())
        try:
            fns = v.make(c)
            if v.mode == "async":
                return loop.run_until_complete(measure_async(fns, n))
            return measure_sync(fns, n)
        finally:
            if v.leave:
                loop.run_until_complete(v.leave())

    # warm-up: imports, first connections, first-use caches of every variant
    for v, c in todo:
        try:
            one(v, c, max(c, 4))
        except Exception as exc:  # a variant that cannot run is reported, not fatal
            errors[key(v, c)] = f"{type(exc).__name__}: {exc}"
    todo = [(v, c) for v, c in todo if key(v, c) not in errors]
    started = time.time()
    for rep in range(reps):
        shift = (rep * 7) % max(1, len(todo))
        for v, c in todo[shift:] + todo[:shift]:
            gc.collect()
            per_cpu, per_wall, n = one(v, c, polls if c == 1 else polls * 2)
            k = key(v, c)
            cpu.setdefault(k, []).append(per_cpu * 1e6)
            wall.setdefault(k, []).append(per_wall * 1e6)
            counts[k] = n
    from airflow_aliyun_tasks import client

    loop.run_until_complete(client.aclose_shared_client())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    return {
        "cpu_us": {k: summary(v) for k, v in cpu.items()},
        "wall_us": {k: summary(v) for k, v in wall.items()},
        "polls_per_measurement": counts,
        "errors": errors,
        "reps": reps,
        "seconds": time.time() - started,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", required=True)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--concurrency", default="1,100")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--kinds", default=None, help="only these variant kinds (comma-separated)")
    args = parser.parse_args(argv)
    pinned = pin(args.cpu) if args.cpu is not None else None
    result = run(
        json.loads(args.ports),
        reps=args.reps,
        polls=args.polls,
        concurrency=tuple(int(c) for c in args.concurrency.split(",")),
        kinds=tuple(args.kinds.split(",")) if args.kinds else None,
    )
    result["cpu"] = pinned
    result["pid"] = os.getpid()
    emit(result)


if __name__ == "__main__":
    main()
