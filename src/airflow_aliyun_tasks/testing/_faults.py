"""Faults: the queue of injected ones, the random fault rate, and what each kind answers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import uvicorn
from starlette.types import Scope

from airflow_aliyun_tasks.testing._base import Drop, Reply, Service, Store

#: the kinds :meth:`Emulator.set_fault_rate` draws from by default
FAULT_KINDS: tuple[str, ...] = (
    "503",
    "500",
    "throttling",
    "throttling_retry_after",
    "pds_gateway",
    "malformed_json",
    "truncated_json",
    "slow",
    "drop",
    "html",
)

#: every kind :meth:`Emulator.inject_fault` knows: :data:`FAULT_KINDS`, and ``drop_after_accept``
#: (the request is served, its effect kept, and the connection closed without the answer)
ALL_FAULT_KINDS: tuple[str, ...] = (*FAULT_KINDS, "drop_after_accept")

#: kinds the core handles itself; the others are answered by :func:`fault_reply`
SLOW, DROP, TRUNCATE, DROP_AFTER_ACCEPT = "slow", "drop", "truncated_json", "drop_after_accept"

_HTML_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
    "<center><h1>502 Bad Gateway</h1></center>\n<hr><center>Tengine</center>\n</body>\n</html>\n"
)


class FaultInjection(Store):
    """Injected faults (served first, in order), the random fault rate, and the tally served."""

    #: the services whose operations may be faulted (STS never is)
    _faultable: tuple[str, ...] = ()
    _fault_queue: list[dict[str, Any]]
    _fault_rate: dict[str, Any] | None
    _faults_served: Counter[str]

    def _reset_state(self) -> None:
        super()._reset_state()
        self._fault_queue = []
        self._fault_rate = None
        self._faults_served = Counter()

    def _check_service(self, service: str | None) -> None:
        if service is not None and service not in self._faultable:
            expected = ", ".join(self._faultable)
            raise ValueError(f"unknown service {service!r}; expected one of {expected} or None")

    def inject_fault(
        self, kind: str, count: int = 1, *, service: str | None = None, task: str | None = None
    ) -> None:
        """Make the next ``count`` requests to an operation of ``service`` (any service but STS
        when ``None``) misbehave in the way ``kind`` names (:data:`ALL_FAULT_KINDS`). With
        ``task``, only status polls of the task whose id is ``task`` match (DLF ``TaskId``,
        DataWorks ``JobId``, MMA ``asyncTaskId``, PDS ``async_task_id``, EMR Serverless Spark
        ``jobRunId``, DataWorks workflow instance ``Id``). Faults queue up in the order injected;
        STS and the control API are never faulted."""
        if kind not in ALL_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(ALL_FAULT_KINDS)}")
        self._check_service(service)
        if int(count) < 1:
            raise ValueError("count must be at least 1")
        if task is not None and (not isinstance(task, str) or not task):
            raise ValueError("task must be a non-empty task id string")
        with self._lock:
            self._fault_queue.append(
                {"kind": kind, "remaining": int(count), "service": service, "task": task}
            )

    def set_fault_rate(
        self,
        rate: float,
        kinds: Sequence[str] | None = None,
        *,
        service: str | None = None,
        seed: int | None = None,
        exempt_tasks: Iterable[str] = (),
    ) -> None:
        """Fault each request to an operation of ``service`` (or of any service but STS) with
        probability ``rate``, the kind drawn uniformly from ``kinds`` (default:
        :data:`FAULT_KINDS`). Queued faults (:meth:`inject_fault`) are served first; status polls
        of the tasks in ``exempt_tasks`` (ids as for ``inject_fault(task=...)``) are never faulted
        at random. ``rate=0`` (or :meth:`reset`) turns it off; ``seed`` makes the draws repeatable."""
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        chosen = tuple(FAULT_KINDS if kinds is None else kinds)
        if not chosen or any(k not in ALL_FAULT_KINDS for k in chosen):
            raise ValueError(f"kinds must be a non-empty list of {', '.join(ALL_FAULT_KINDS)}")
        self._check_service(service)
        with self._lock:
            self._fault_rate = None
            if rate > 0.0:
                self._fault_rate = {
                    "rate": rate,
                    "kinds": chosen,
                    "service": service,
                    "exempt_tasks": frozenset(str(t) for t in exempt_tasks),
                    "rng": random.Random(seed),
                }

    @property
    def fault_counts(self) -> dict[str, int]:
        """Faults served so far, by kind."""
        with self._lock:
            return dict(self._faults_served)

    def _take_fault(self, service: str, task: str | None = None) -> str | None:
        """The fault to serve to this request, if any (``task``: the id of the task a poll names)."""
        with self._lock:
            for fault in self._fault_queue:
                if fault["service"] in (None, service) and fault["task"] in (None, task):
                    fault["remaining"] -= 1
                    self._fault_queue = [f for f in self._fault_queue if f["remaining"] > 0]
                    return self._serve_fault(str(fault["kind"]))
            rate = self._fault_rate
            if (
                rate is not None
                and rate["service"] in (None, service)
                and (task is None or task not in rate["exempt_tasks"])
                and rate["rng"].random() < rate["rate"]
            ):
                return self._serve_fault(str(rate["rng"].choice(rate["kinds"])))
        return None

    def _serve_fault(self, kind: str) -> str:
        self._faults_served[kind] += 1
        return kind

    def _describe_faults(self) -> dict[str, Any]:
        """The ``faults``, ``pending_faults`` and ``fault_rate`` entries of the stats."""
        with self._lock:
            rate = self._fault_rate
            return {
                "faults": dict(self._faults_served),
                "pending_faults": [dict(f) for f in self._fault_queue],
                "fault_rate": None
                if rate is None
                else {
                    "rate": rate["rate"],
                    "kinds": list(rate["kinds"]),
                    "service": rate["service"],
                    "exempt_tasks": sorted(rate["exempt_tasks"]),
                },
            }


def fault_reply(kind: str, service: Service, host: str, rid: str) -> Reply | None:
    """The answer of a fault that answers (``None`` for ``slow``, ``drop``... which the core plays)."""
    if kind == "503":
        message = "The request has failed due to a temporary failure of the server."
        return service.error(503, "ServiceUnavailable", message, host, rid)
    if kind == "500":
        message = "The request processing has failed due to some unknown error, exception or failure."
        return service.server_error(500, "InternalError", message, host, rid)
    if kind in ("throttling", "throttling_retry_after"):
        message = "Request was denied due to user flow control."
        reply = service.error(400, "Throttling.User", message, host, rid)
        if kind == "throttling_retry_after":
            reply.headers["x-acs-retry-after"] = "200"
        return reply
    if kind == "pds_gateway":
        headers = {
            "x-ca-error-code": "D504TO",
            "x-ca-error-message": "Backend service request timeout",
            "x-ca-request-id": rid,
        }
        return Reply(504, raw=b"", content_type="", headers=headers)
    if kind == "malformed_json":
        return Reply(200, raw=b"{'RequestId': '" + rid.encode() + b"', Success: true,}")
    if kind == "html":
        return Reply(502, raw=_HTML_PAGE.encode(), content_type="text/html")
    return None


async def drop_connection(server: uvicorn.Server | None, scope: Scope) -> None:
    """Close the client's TCP connection without answering (in-process: raise :class:`Drop`)."""
    client = scope.get("client")
    if server is not None and client is not None:
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if getattr(conn, "client", None) == tuple(client) and transport is not None:
                transport.close()
                for _ in range(3):  # let connection_lost run, so uvicorn sends nothing more
                    await asyncio.sleep(0)
                return
    raise Drop("emulated dropped connection")
