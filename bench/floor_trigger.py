"""A minimal DataWorks wait for Airflow's triggerer: the floor the package's trigger is measured
against inside a real ``airflow triggerer`` (``python -m bench triggerer``).

:class:`FloorTrigger` polls one DataWorks job with the least a correct client does: HTTP/1.1
keep-alive on asyncio streams (one pool of idle connections per event loop), ACS3 signing with
the package's prepared signer, ``json.loads`` of the body, no retries, no connection lookup
(the benchmark's AccessKey pair is a constant), no logging per poll. It ends only when the job
reaches a terminal status, which the benchmark server never reports.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from bench.common import ACCESS_KEY_ID, ACCESS_KEY_SECRET

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]

#: Idle keep-alive connections of each event loop, per (host, port).
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], list[_Conn]]] = (
    weakref.WeakKeyDictionary()
)

TERMINAL = frozenset({"Success", "Failed", "Cancelled"})


def _pool(host: str, port: int) -> list[_Conn]:
    loop = asyncio.get_running_loop()
    pools = _pools.get(loop)
    if pools is None:
        pools = _pools[loop] = {}
    return pools.setdefault((host, port), [])


async def request(host: str, port: int, head: bytes) -> tuple[int, bytes]:
    """One request on an idle connection of the loop's pool (a new one when none is idle)."""
    idle = _pool(host, port)
    reader, writer = idle.pop() if idle else await asyncio.open_connection(host, port)
    try:
        writer.write(head)
        raw = await reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        lower = raw.lower()
        at = lower.find(b"\r\ncontent-length:")
        length = int(lower[at + 17 : lower.find(b"\r\n", at + 2)]) if at >= 0 else 0
        body = await reader.readexactly(length)
    except BaseException:
        writer.close()
        raise
    idle.append((reader, writer))
    return status, body


class FloorTrigger(BaseTrigger):
    """Poll DataWorks ``GetJobStatus`` for ``job_id`` at ``http://host:port`` every
    ``poll_interval`` seconds until the job ends."""

    def __init__(self, *, host: str, port: int, job_id: str, poll_interval: float = 30.0) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.host = host
        self.port = int(port)
        self.job_id = job_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "host": self.host,
                "port": self.port,
                "job_id": self.job_id,
                "poll_interval": self.poll_interval,
            },
        )

    def _prepare(self) -> tuple[Any, str]:
        from airflow_aliyun_tasks import signing
        from airflow_aliyun_tasks.services import get_service

        spec = get_service("dataworks")
        req = spec.build_request({"job_id": self.job_id})
        target = signing.encode_path(req.path)
        query = signing.canonical_query(req.query)
        if query:
            target += "?" + query
        signer = signing.PreparedAcs3Signer(
            method=req.method,
            host=f"{self.host}:{self.port}",
            pathname=req.path,
            query=req.query,
            action=spec.action,
            version=spec.version,
            content_type=req.content_type,
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            security_token=None,
            body=req.body,
        )
        start = f"{req.method} {target} HTTP/1.1\r\n"
        if req.body:  # GetJobStatus is a query-only call: the floor sends no body
            raise ValueError("the floor trigger sends no request body")
        return signer, start

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_aliyun_tasks.signing import dates

        signer, start = self._prepare()
        while True:
            headers = signer.headers(dates(time.time())[0], uuid.uuid4().hex)
            head = start + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            try:
                status, body = await request(self.host, self.port, head.encode())
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, body = 0, b""
            if status == 200:
                job = json.loads(body).get("JobStatus") or {}
                if job.get("Status") in TERMINAL:
                    yield TriggerEvent({"status": job["Status"], "job_id": self.job_id})  # type: ignore[no-untyped-call]
                    return
            await asyncio.sleep(self.poll_interval)
