"""A loopback fixed-response HTTP/1.1 server for the benchmarks.

It answers every status API with that API's documented body shape (a task that is still
running), keeps connections alive, and does not verify signatures: the benchmark measures the
client, so the server must be cheap and predictable. One port per service, so that
connections can be counted per endpoint.

Run as ``python -m bench.server [--cpu N] [--watch-stdin]``: it prints one JSON line with its
ports on stdout, then serves until it is terminated (or stdin closes). ``GET /_stats`` on any
port returns the requests served and the connections accepted, open now and most open at once,
per port; ``GET /_stats?reset`` also restarts the "most open at once" counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import json
import os
import signal
import sys
import time
from typing import Any

from bench.common import pin

SERVICES = ("dlf", "dataworks", "mma", "pds", "sts")

#: The documented body of each status API (reference: each API's response example), for a
#: task that is still running.
BODIES: dict[str, dict[str, Any]] = {
    "dlf": {
        "Code": "OK",
        "Message": "success",
        "RequestId": "B7F4B621-E41E-4C84-B97F-42B5380A32BB",
        "Success": True,
        "TaskStatus": {"Status": "Running", "Message": "running"},
    },
    "dataworks": {
        "RequestId": "5E2BFE96-9E6A-4E49-9CE6-8A1C0DDA0F5E",
        "JobStatus": {
            "JobId": "C664CDE3-2A6C-4D5C-9B5F-5E2BFE969E6A",
            "JobType": "Create",
            "Completed": "False",
            "Status": "Running",
            "CreateTime": 1729063449802,
        },
    },
    "mma": {
        "requestId": "688003E1-0E6A-4BEC-8E1B-38D1B4F2C3A0",
        "data": {
            "id": 1000286,
            "sourceId": 2000028,
            "type": "TASK_CREATE",
            "objectId": 232,
            "status": "DOING",
            "running": True,
            "progress": 40,
            "result": "null",
            "errorMsg": "null",
            "startTime": "2024-12-17 15:44:17\n",
            "endTime": "null",
            "createTime": "2024-12-17 15:44:00\n",
        },
    },
    "pds": {
        "async_task_id": "000e89fb-cf8f-4d7b-a0c8-bc9a4cd47a21",
        "state": "Running",
        "status": "Running",
        "total_process": 100,
        "consumed_process": 40,
        "failed_process": 0,
        "skipped_process": 0,
        "category": "",
        "task_type": "",
        "created_at": "2024-12-17T07:44:00.000Z",
        "started_at": "2024-12-17T07:44:17.000Z",
        "uncompress_file_list": [],
    },
    "sts": {
        "RequestId": "D9A6F2C5-9B8A-4C5E-8F3A-1B2C3D4E5F60",
        "AccountId": "1234567890123456",
        "Arn": "acs:ram::1234567890123456:user/bench",
        "IdentityType": "RAMUser",
        "PrincipalId": "200000000000000",
        "UserId": "200000000000000",
    },
}

_BY_PATH = (
    (b"/api/metastore/catalogs/tasks", "dlf"),
    (b"/api/v1/mms/", "mma"),
    (b"/v2/async_task/get", "pds"),
)


def service_of(path: bytes, port_service: str) -> str:
    for prefix, service in _BY_PATH:
        if path.startswith(prefix):
            return service
    return port_service if port_service not in ("dlf", "mma", "pds") else "dataworks"


class Responses:
    """Pre-rendered responses; the ``Date`` header is re-rendered once a second."""

    def __init__(self) -> None:
        self.payloads = {
            name: json.dumps(body, separators=(",", ":")).encode() for name, body in BODIES.items()
        }
        self._second = -1
        self._cache: dict[str, bytes] = {}

    def get(self, service: str) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            date = email.utils.formatdate(now, usegmt=True)
            self._cache = {
                name: (
                    "HTTP/1.1 200 OK\r\n"
                    f"Date: {date}\r\n"
                    "Content-Type: application/json;charset=utf-8\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    f"x-acs-request-id: {BODIES[name].get('RequestId') or BODIES[name].get('requestId') or 'bench'}\r\n"
                    "\r\n"
                ).encode()
                + payload
                for name, payload in self.payloads.items()
            }
        return self._cache[service]


class Stats:
    def __init__(self) -> None:
        self.requests: dict[str, int] = dict.fromkeys(SERVICES, 0)
        self.connections: dict[str, int] = dict.fromkeys(SERVICES, 0)  # accepted, per port
        self.open: dict[str, int] = dict.fromkeys(SERVICES, 0)  # open now, per port
        self.max_open: dict[str, int] = dict.fromkeys(SERVICES, 0)  # most open at once, per port

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "connections": self.connections,
                "open": self.open,
                "max_open": self.max_open,
            }
        ).encode()

    def reset_max(self) -> None:
        self.max_open = dict(self.open)


class HttpProtocol(asyncio.Protocol):
    def __init__(self, port_service: str, responses: Responses, stats: Stats) -> None:
        self.port_service = port_service
        self.responses = responses
        self.stats = stats
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        s, port = self.stats, self.port_service
        s.connections[port] += 1
        s.open[port] += 1
        s.max_open[port] = max(s.max_open[port], s.open[port])

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open[self.port_service] -= 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        transport = self.transport
        assert transport is not None
        out = []
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            lower = head.lower()
            length = 0
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17 : stop if stop >= 0 else len(lower)].strip() or b"0")
            if len(buf) < end + 4 + length:
                break
            first = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            parts = first.split(b" ")
            path = parts[1] if len(parts) > 1 else b"/"
            buf = buf[end + 4 + length :]
            if path.startswith(b"/_stats"):
                payload = self.stats.as_json()
                if b"reset" in path:
                    self.stats.reset_max()
                out.append(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(payload)).encode()
                    + b"\r\n\r\n"
                    + payload
                )
            else:
                service = service_of(path, self.port_service)
                self.stats.requests[service] += 1
                out.append(self.responses.get(service))
            if b"\r\nconnection: close" in lower:
                close = True
                break
        self.buf = buf
        if out:
            transport.write(b"".join(out) if len(out) > 1 else out[0])
        if close:
            transport.close()


async def serve(ports: dict[str, int] | None = None) -> tuple[dict[str, int], list[asyncio.Server]]:
    loop = asyncio.get_running_loop()
    responses, stats = Responses(), Stats()
    servers: list[asyncio.Server] = []
    bound: dict[str, int] = {}
    for service in SERVICES:
        server = await loop.create_server(
            lambda s=service: HttpProtocol(s, responses, stats),  # type: ignore[misc]
            "127.0.0.1",
            (ports or {}).get(service, 0),
            backlog=16384,
            reuse_address=True,
        )
        servers.append(server)
        bound[service] = server.sockets[0].getsockname()[1]
    return bound, servers


async def _main(cpu: int | None, watch_stdin: bool) -> None:
    pinned = pin(cpu) if cpu is not None else None
    bound, servers = await serve()
    print(json.dumps({"ports": bound, "cpu": pinned, "pid": os.getpid()}), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    watcher = None
    if watch_stdin:  # stop when the parent goes away (its pipe to our stdin closes)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def watch() -> None:
            await reader.read()
            stop.set()

        watcher = loop.create_task(watch())
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU index")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when stdin closes")
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    runner(_main(args.cpu, args.watch_stdin))


if __name__ == "__main__":
    main()
