"""The emulator: state, the Starlette app, and the uvicorn thread. See the package docstring."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from airflow_aliyun_tasks.testing import _bodies
from airflow_aliyun_tasks.testing._auth import (
    AuthError,
    KeyRecord,
    Principal,
    SignedRequest,
    Verifier,
)

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "DEFAULT_START_LIFECYCLES",
    "FAULT_KINDS",
    "SERVICES",
    "Emulator",
    "is_loopback_host",
]

log = logging.getLogger("airflow_aliyun_tasks.testing")

DEFAULT_ACCESS_KEY_ID = "LTAI5tEmulatorKeyId00"
DEFAULT_ACCESS_KEY_SECRET = "EmulatorSecret0000000000000000"  # a fixed, public test secret

#: the four status APIs, by the short names used throughout the package
SERVICES: tuple[str, ...] = ("dlf", "dataworks", "mma", "pds")

#: what :meth:`Emulator.inject_fault` can do to the next matching requests
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

#: lifecycle of the tasks that the emulated start operations create (``Emulator.start_lifecycles``)
DEFAULT_START_LIFECYCLES: dict[str, tuple[str, ...]] = {
    "dlf": ("Running", "Running", "Success"),
    "dataworks": ("Running", "Running", "Success"),
    "mma": ("DOING", "DOING", "DONE"),
    "pds": ("Running", "Running", "Succeed"),
}

_NONCE_TTL_SECONDS = 15 * 60
_POP_JSON = "application/json;charset=utf-8"
_PDS_JSON = "application/json; charset=utf-8"
_MMA_PATH = re.compile(r"^/api/v1/mms/datasources/(?P<source>[^/]+)/asyncTasks/(?P<task>[^/]+)/?$")
_MMA_JOBS_PATH = re.compile(r"^/api/v1/mms/datasources/(?P<source>[^/]+)/jobs/?$")
_ROLE_ARN = re.compile(r"^acs:ram::(?P<account>\d+):role/(?P<role>[A-Za-z0-9._@\-/]+)$")
_ID_KWARGS: dict[str, tuple[str, ...]] = {
    "dlf": ("task_id",),
    "dataworks": ("job_id",),
    "mma": ("source_id", "async_task_id"),
    "pds": ("async_task_id",),
}


@dataclass(frozen=True)
class _Op:
    service: str  # dlf | dataworks | mma | pds | sts
    action: str
    version: str
    style: str  # RPC | ROA | PDS
    method: str | None = None  # ROA/PDS: the one method; RPC: GET or POST
    path: str | re.Pattern[str] | None = None


_POP_OPS: dict[str, _Op] = {
    op.action: op
    for op in (
        _Op("dlf", "GetAsyncTaskStatus", "2020-07-10", "ROA", "GET", "/api/metastore/catalogs/tasks"),
        _Op("dlf", "DeleteDatabase", "2020-07-10", "ROA", "DELETE", "/api/metastore/catalogs/databases"),
        _Op("dataworks", "GetJobStatus", "2024-05-18", "RPC"),
        _Op("dataworks", "ImportWorkflowDefinition", "2024-05-18", "RPC"),
        _Op("mma", "GetMmsAsyncTask", "2022-01-04", "ROA", "GET", _MMA_PATH),
        _Op("mma", "CreateMmsJob", "2022-01-04", "ROA", "POST", _MMA_JOBS_PATH),
        _Op("sts", "GetCallerIdentity", "2015-04-01", "RPC"),
        _Op("sts", "AssumeRole", "2015-04-01", "RPC"),
        _Op("sts", "AssumeRoleWithOIDC", "2015-04-01", "RPC"),
    )
}
_PDS_OPS: dict[str, _Op] = {
    "/v2/async_task/get": _Op("pds", "GetAsyncTask", "2022-03-01", "PDS", "POST", "/v2/async_task/get"),
    "/v2/file/archive_files": _Op(
        "pds", "ArchiveFiles", "2022-03-01", "PDS", "POST", "/v2/file/archive_files"
    ),
    # Alias: the path the brief named; the SDK and the docs use /v2/file/archive_files.
    "/v2/file/archive": _Op("pds", "ArchiveFiles", "2022-03-01", "PDS", "POST", "/v2/file/archive"),
}
_PRODUCT = {
    "dlf": "DataLake",
    "dataworks": "dataworks-public",
    "mma": "MaxCompute",
    "sts": "Sts",
    "pds": "pds",
}


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


def _iso_seconds(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


class _Reply:
    """A response in the making: status, headers and a JSON body (or raw bytes)."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = _POP_JSON,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.content = raw if raw is not None else (b"" if body is None else _bodies.dumps(body))
        self.content_type = content_type
        self.headers = dict(headers or {})


class _Drop(ConnectionResetError):
    """Raised in-process (no socket to close) for the ``drop`` fault."""


class Emulator:
    """A local Alibaba Cloud: DLF, DataWorks, MaxCompute MMA, PDS and STS on one loopback port.

    See :mod:`airflow_aliyun_tasks.testing` for the full description.
    """

    def __init__(
        self,
        access_keys: Mapping[str, str] | None = None,
        bearer_tokens: Iterable[str] = (),
        account_id: str = "1234567890123456",
        max_skew_seconds: float = 900,
        sts_ttl_seconds: int = 3600,
        clock_offset: float = 0.0,
    ) -> None:
        self._lock = threading.RLock()
        self._access_keys = (
            dict(access_keys)
            if access_keys is not None
            else {DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET}
        )
        self._bearer_tokens = set(bearer_tokens)
        self.account_id = str(account_id)
        self.max_skew_seconds = float(max_skew_seconds)
        self.sts_ttl_seconds = int(sts_ttl_seconds)
        self.clock_offset = float(clock_offset)
        self._initial_clock_offset = self.clock_offset
        #: seconds a ``slow`` fault waits before answering
        self.slow_seconds = 3.0
        #: statuses of the tasks created by the emulated start operations, per service
        self.start_lifecycles: dict[str, tuple[str, ...]] = dict(DEFAULT_START_LIFECYCLES)
        self._tasks: dict[tuple[str, ...], _bodies.Task] = {}
        self._faults: list[dict[str, Any]] = []
        self._requests: Counter[str] = Counter()
        self._task_requests: Counter[tuple[str, ...]] = Counter()
        self._fault_counts: Counter[str] = Counter()
        self._fault_rate: dict[str, Any] | None = None
        self._nonces: dict[tuple[str, str, str], float] = {}
        self._sts_keys: dict[str, KeyRecord] = {}
        self._revoked: set[str] = set()
        self._mma_ids = 1_000_000
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._host: str | None = None
        self._port: int | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port) from a daemon thread; return the base URL.

        Blocks until the port accepts connections. Only loopback hosts are allowed.
        """
        if not is_loopback_host(host):
            raise ValueError(f"the emulator only listens on loopback addresses, not {host!r}")
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            date_header=False,  # the emulator sends its own Date (clock_offset applies)
            server_header=False,
            timeout_graceful_shutdown=2,
            http="h11",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="aliyun-emulator", daemon=True)
        self._server, self._thread, self._host = server, thread, host
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive():
                self._server = self._thread = None
                raise RuntimeError(f"the emulator failed to start on {host}:{port}")
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the emulator did not start within 15 s")
            time.sleep(0.005)
        sockets = [s for srv in (server.servers or []) for s in (srv.sockets or [])]
        self._port = int(sockets[0].getsockname()[1]) if sockets else port
        with socket.create_connection((host.strip("[]"), self._port), timeout=5):
            pass
        return self.url

    def stop(self) -> None:
        """Stop serving and join the thread (state is kept; :meth:`start` may be called again)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None
        self._port = None

    def __enter__(self) -> Emulator:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._port

    @property
    def url(self) -> str:
        host = self._host or "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """``host:port`` — what SDK ``Config(endpoint=...)`` and the connection extras want."""
        return self.url.removeprefix("http://")

    def now(self) -> float:
        """The emulator's clock: wall time plus :attr:`clock_offset`."""
        return time.time() + self.clock_offset

    # ------------------------------------------------------------------ scripting

    def _put_task(
        self, service: str, ids: dict[str, str], statuses: Sequence[str], options: dict[str, Any]
    ) -> None:
        if isinstance(statuses, str) or not statuses:
            raise ValueError("statuses must be a non-empty sequence of status strings")
        task = _bodies.Task(
            service=service,
            ids=ids,
            statuses=tuple(str(s) for s in statuses),
            options=options,
            created_at=self.now(),
        )
        with self._lock:
            self._tasks[(service, *ids.values())] = task

    def add_dlf_task(
        self,
        task_id: str,
        statuses: Sequence[str] = ("Running", "Success"),
        *,
        catalog_id: str | None = None,
        message: str = "successful",
    ) -> None:
        """Script a DLF async task (GetAsyncTaskStatus ``TaskId``; ``CatalogId`` checked when given)."""
        self._put_task(
            "dlf", {"task_id": str(task_id)}, statuses, {"catalog_id": catalog_id, "message": message}
        )

    def add_dataworks_job(
        self,
        job_id: str,
        statuses: Sequence[str] = ("Running", "Success"),
        *,
        error: str | None = None,
        job_type: str = "Create",
        create_time_as_string: bool = False,
    ) -> None:
        """Script a DataWorks async job (GetJobStatus ``JobId``)."""
        self._put_task(
            "dataworks",
            {"job_id": str(job_id)},
            statuses,
            {"error": error, "job_type": job_type, "create_time_as_string": create_time_as_string},
        )

    def add_mma_task(
        self,
        source_id: int | str,
        async_task_id: int | str,
        statuses: Sequence[str] = ("DOING", "DONE"),
        *,
        progress: Sequence[int] | None = None,
        error_msg: str | None = None,
    ) -> None:
        """Script a MaxCompute MMA async task (GetMmsAsyncTask ``sourceId``/``asyncTaskId``)."""
        self._put_task(
            "mma",
            {"source_id": str(source_id), "async_task_id": str(async_task_id)},
            statuses,
            {"progress": list(progress) if progress is not None else None, "error_msg": error_msg},
        )

    def add_pds_task(
        self,
        async_task_id: str,
        states: Sequence[str] = ("Running", "Succeed"),
        *,
        domain_id: str | None = None,
        total_process: int | None = None,
        consumed_process: Sequence[int] | None = None,
        failed_process: int = 0,
        skipped_process: int = 0,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> None:
        """Script a PDS async task (GetAsyncTask ``async_task_id``)."""
        self._put_task(
            "pds",
            {"async_task_id": str(async_task_id)},
            states,
            {
                "domain_id": domain_id,
                "total_process": total_process,
                "consumed_process": list(consumed_process) if consumed_process is not None else None,
                "failed_process": failed_process,
                "skipped_process": skipped_process,
                "error_code": error_code,
                "error_message": error_message,
            },
        )

    def add_task(self, service: str, **spec: Any) -> dict[str, str]:
        """Generic form of the ``add_*`` methods (used by the control API and ``--tasks`` files).

        ``spec`` holds the ids and options of that method; ``statuses`` is accepted for PDS too.
        Returns the task's ids.
        """
        spec = dict(spec)
        if service == "pds" and "statuses" in spec and "states" not in spec:
            spec["states"] = spec.pop("statuses")
        adders: dict[str, Callable[..., None]] = {
            "dlf": self.add_dlf_task,
            "dataworks": self.add_dataworks_job,
            "mma": self.add_mma_task,
            "pds": self.add_pds_task,
        }
        if service not in adders:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
        missing = [name for name in _ID_KWARGS[service] if name not in spec]
        if missing:
            raise ValueError(f"{service} task needs {', '.join(missing)}")
        adders[service](**spec)
        return {name: str(spec[name]) for name in _ID_KWARGS[service]}

    def inject_fault(
        self, kind: str, count: int = 1, *, service: str | None = None, task: str | None = None
    ) -> None:
        """Make the next ``count`` requests to a status API or start operation (of ``service``,
        or any of the four when ``None``) misbehave in the way ``kind`` names (:data:`FAULT_KINDS`).
        With ``task``, only status polls of the task whose id is ``task`` match (DLF ``TaskId``,
        DataWorks ``JobId``, MMA ``asyncTaskId``, PDS ``async_task_id``).
        Faults queue up in the order injected; STS and the control API are never faulted."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if service is not None and service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)} or None")
        if int(count) < 1:
            raise ValueError("count must be at least 1")
        if task is not None and (not isinstance(task, str) or not task):
            raise ValueError("task must be a non-empty task id string")
        with self._lock:
            self._faults.append({"kind": kind, "remaining": int(count), "service": service, "task": task})

    def set_fault_rate(
        self,
        rate: float,
        kinds: Sequence[str] | None = None,
        *,
        service: str | None = None,
        seed: int | None = None,
        exempt_tasks: Iterable[str] = (),
    ) -> None:
        """Fault each request to a status API or start operation (of ``service``, or any of the
        four) with probability ``rate``, the kind drawn uniformly from ``kinds`` (default: every
        kind). Queued faults (:meth:`inject_fault`) are served first; status polls of the tasks
        in ``exempt_tasks`` (ids as for ``inject_fault(task=...)``) are never faulted at random.
        ``rate=0`` (or :meth:`reset`) turns it off; ``seed`` makes the draws repeatable."""
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        chosen = tuple(FAULT_KINDS if kinds is None else kinds)
        unknown = [k for k in chosen if k not in FAULT_KINDS]
        if unknown or not chosen:
            raise ValueError(f"kinds must be a non-empty list of {', '.join(FAULT_KINDS)}")
        if service is not None and service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)} or None")
        with self._lock:
            self._fault_rate = (
                None
                if rate == 0.0
                else {
                    "rate": rate,
                    "kinds": chosen,
                    "service": service,
                    "exempt_tasks": frozenset(str(t) for t in exempt_tasks),
                    "rng": random.Random(seed),
                }
            )

    def revoke_key(self, access_key_id: str) -> None:
        """From now on, requests signed with this key get ``InvalidAccessKeyId.NotFound`` (404)."""
        with self._lock:
            self._revoked.add(access_key_id)

    def add_access_key(self, access_key_id: str, access_key_secret: str) -> None:
        """Accept one more long-term access key."""
        with self._lock:
            self._access_keys[access_key_id] = access_key_secret
            self._revoked.discard(access_key_id)

    def add_bearer_token(self, token: str) -> None:
        """Accept one more PDS access token."""
        with self._lock:
            self._bearer_tokens.add(token)

    def reset(self) -> None:
        """Forget tasks, pending faults, counters, nonces, issued STS keys and revocations; restore
        the constructor's ``clock_offset`` and the default start lifecycles. Keys and the socket stay."""
        with self._lock:
            self._tasks.clear()
            self._faults.clear()
            self._requests.clear()
            self._task_requests.clear()
            self._fault_counts.clear()
            self._fault_rate = None
            self._nonces.clear()
            self._sts_keys.clear()
            self._revoked.clear()
            self.clock_offset = self._initial_clock_offset
            self.start_lifecycles = dict(DEFAULT_START_LIFECYCLES)

    # ------------------------------------------------------------------ observation

    def request_count(self, service: str | None = None, **ids: Any) -> int:
        """Requests that reached a service's API (status polls and start operations, faulted and
        rejected ones included); ``None`` sums the four status services. ``"sts"`` counts STS.

        With ids (as for :meth:`poll_count`), the status polls of that one task, scripted or not,
        faulted and rejected ones included."""
        if ids:
            key = self._task_key_of(service, ids, "request_count")
            with self._lock:
                return self._task_requests[key]
        with self._lock:
            if service is None:
                return sum(self._requests[s] for s in SERVICES)
            return self._requests[service]

    @staticmethod
    def _task_key_of(service: str | None, ids: Mapping[str, Any], caller: str) -> tuple[str, ...]:
        names = _ID_KWARGS.get(service or "")
        if names is None:
            raise ValueError(f"unknown service {service!r}")
        ids = {k: v for k, v in ids.items() if k not in ("catalog_id", "domain_id")}
        if service == "dlf" and "async_task_id" in ids:
            ids["task_id"] = ids.pop("async_task_id")
        if set(ids) != set(names):
            raise TypeError(f"{caller}({service!r}) takes {', '.join(names)}")
        return (str(service), *(str(ids[n]) for n in names))

    def poll_count(self, service: str, **ids: Any) -> int:
        """Status polls of one task answered normally (each one moved its lifecycle on).

        Takes the ids as the ``add_*`` methods do, or as the hook and ``TaskStatus.ids`` name
        them (DLF ``async_task_id``; ``catalog_id`` and ``domain_id`` are ignored)."""
        key = self._task_key_of(service, ids, "poll_count")
        with self._lock:
            task = self._tasks.get(key)
            return task.polls if task else 0

    @property
    def fault_counts(self) -> dict[str, int]:
        """Faults served so far, by kind."""
        with self._lock:
            return dict(self._fault_counts)

    def stats(self) -> dict[str, Any]:
        """Everything ``GET /_emulator/stats`` returns."""
        with self._lock:
            requests = {s: self._requests[s] for s in (*SERVICES, "sts")}
            requests["total"] = sum(self._requests[s] for s in SERVICES)
            return {
                "requests": requests,
                "tasks": [task.describe() for task in self._tasks.values()],
                "faults": dict(self._fault_counts),
                "pending_faults": [dict(f) for f in self._faults],
                "fault_rate": (
                    None
                    if self._fault_rate is None
                    else {
                        "rate": self._fault_rate["rate"],
                        "kinds": list(self._fault_rate["kinds"]),
                        "service": self._fault_rate["service"],
                        "exempt_tasks": sorted(self._fault_rate["exempt_tasks"]),
                    }
                ),
                "requests_by_task": [
                    {
                        "service": key[0],
                        "ids": dict(zip(_ID_KWARGS[key[0]], key[1:], strict=True)),
                        "requests": n,
                    }
                    for key, n in self._task_requests.items()
                ],
                "clock_offset": self.clock_offset,
                "server_time": _iso_seconds(self.now()),
            }

    def tasks(self, service: str | None = None) -> list[dict[str, Any]]:
        """Scripted and started tasks (ids, statuses, polls so far)."""
        with self._lock:
            return [t.describe() for t in self._tasks.values() if service is None or t.service == service]

    # ------------------------------------------------------------------ credentials

    def _lookup_key(self, access_key_id: str) -> KeyRecord | None:
        with self._lock:
            if access_key_id in self._revoked:
                return None
            secret = self._access_keys.get(access_key_id)
            if secret is not None:
                return KeyRecord(access_key_id, secret, identity=self._user_identity(access_key_id))
            return self._sts_keys.get(access_key_id)

    def _user_identity(self, access_key_id: str) -> dict[str, str]:
        user_id = str(int(hashlib.sha256(access_key_id.encode()).hexdigest(), 16))[:16]
        return {
            "AccountId": self.account_id,
            "UserId": user_id,
            "PrincipalId": user_id,
            "Arn": f"acs:ram::{self.account_id}:user/emulator-user",
            "IdentityType": "RAMUser",
        }

    def _nonce_checker(self, gateway: str) -> Callable[[str, str], bool]:
        """Nonces are remembered per gateway (POP or PDS) and access key, for 15 minutes."""

        def check(access_key_id: str, nonce: str) -> bool:
            mono = time.monotonic()
            key = (gateway, access_key_id, nonce)
            with self._lock:
                if len(self._nonces) > 10_000:
                    cutoff = mono - _NONCE_TTL_SECONDS
                    self._nonces = {k: t for k, t in self._nonces.items() if t > cutoff}
                seen = self._nonces.get(key)
                if seen is not None and mono - seen < _NONCE_TTL_SECONDS:
                    return False
                self._nonces[key] = mono
                return True

        return check

    def issue_sts_credentials(
        self,
        role_arn: str | None = None,
        role_session_name: str = "emulator-session",
        duration_seconds: int | None = None,
    ) -> dict[str, str]:
        """Mint STS credentials as AssumeRole would (lifetime ``min(duration, sts_ttl_seconds)``).

        Returns ``{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}``.
        """
        record = self._issue_sts(
            role_arn or f"acs:ram::{self.account_id}:role/emulator-role",
            role_session_name,
            duration_seconds if duration_seconds is not None else self.sts_ttl_seconds,
        )
        return {
            "AccessKeyId": record.access_key_id,
            "AccessKeySecret": record.secret,
            "SecurityToken": record.security_token or "",
            "Expiration": _iso_seconds(record.expires_at or 0.0),
        }

    def _issue_sts(self, role_arn: str, session: str, duration: int) -> KeyRecord:
        match = _ROLE_ARN.match(role_arn)
        role = match["role"] if match else "emulator-role"
        account = match["account"] if match else self.account_id
        role_id = str(int(hashlib.sha256(role_arn.encode()).hexdigest(), 16))[:19]
        lifetime = max(1, min(int(duration), self.sts_ttl_seconds))
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
        access_key_id = "STS.NT" + "".join(secrets.choice(alphabet) for _ in range(26))
        token = "CAIS" + base64.b64encode(secrets.token_bytes(240)).decode()
        record = KeyRecord(
            access_key_id=access_key_id,
            secret="".join(secrets.choice(alphabet) for _ in range(44)),
            security_token=token,
            expires_at=self.now() + lifetime,
            identity={
                "AccountId": account,
                "UserId": f"{role_id}:{session}",
                "PrincipalId": f"{role_id}:{session}",
                "RoleId": role_id,
                "Arn": f"acs:ram::{account}:assumed-role/{role.lower()}/{session}",
                "IdentityType": "AssumedRoleUser",
                "AssumedRoleArn": f"acs:ram::{account}:role/{role.lower()}/{session}",
            },
        )
        with self._lock:
            self._sts_keys[access_key_id] = record
        return record

    # ------------------------------------------------------------------ the app

    def _build_app(self) -> Starlette:
        control_methods = ["GET", "POST"]
        return Starlette(
            routes=[
                Route("/_emulator/{name:path}", self._control, methods=control_methods),
                Route("/{path:path}", _ApiApp(self)),
            ]
        )

    def _reply_headers(self, service: str, request_id: str) -> dict[str, str]:
        headers = {"Date": format_http_date(self.now())}
        if service == "pds":
            headers["x-ca-request-id"] = request_id
        else:
            headers["x-acs-request-id"] = request_id
        return headers

    def _pop_error(self, status: int, code: str, message: str, host: str, service: str, rid: str) -> _Reply:
        body = {
            "RequestId": rid,
            "HostId": host,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={quote(code)}&product={_PRODUCT.get(service, '')}"
            f"&requestId={rid}",
        }
        return _Reply(status, body)

    @staticmethod
    def _pds_error(status: int, code: str, message: str, rid: str) -> _Reply:
        return _Reply(status, {"Code": code, "Message": message, "RequestId": rid}, content_type=_PDS_JSON)

    @staticmethod
    def _mma_error(status: int, code: str, message: str, rid: str) -> _Reply:
        return _Reply(status, {"requestId": rid, "code": code, "message": message})

    def _error(self, service: str, status: int, code: str, message: str, host: str, rid: str) -> _Reply:
        """A gateway-level error (auth, throttling, 5xx) in the service's error shape."""
        if service == "pds":
            return self._pds_error(status, code, message, rid)
        return self._pop_error(status, code, message, host, service, rid)

    def _take_fault(self, service: str, task: str | None = None) -> str | None:
        with self._lock:
            for fault in self._faults:
                if (
                    fault["service"] in (None, service)
                    and fault.get("task") in (None, task)
                    and fault["remaining"] > 0
                ):
                    fault["remaining"] -= 1
                    kind = str(fault["kind"])
                    self._fault_counts[kind] += 1
                    self._faults = [f for f in self._faults if f["remaining"] > 0]
                    return kind
            rate = self._fault_rate
            if (
                rate is not None
                and rate["service"] in (None, service)
                and (task is None or task not in rate["exempt_tasks"])
                and rate["rng"].random() < rate["rate"]
            ):
                kind = str(rate["rng"].choice(rate["kinds"]))
                self._fault_counts[kind] += 1
                return kind
        return None

    def _status_task_key(
        self, op: _Op, req: SignedRequest, params: Mapping[str, str]
    ) -> tuple[str, ...] | None:
        """The task a status poll asks about, as ``(service, *ids)``; ``None`` for other calls."""
        value: Any
        if op.action == "GetAsyncTaskStatus":
            value = params.get("TaskId")
            return ("dlf", value) if value else None
        if op.action == "GetJobStatus":
            value = params.get("JobId")
            return ("dataworks", value) if value else None
        if op.action == "GetMmsAsyncTask":
            match = _MMA_PATH.match(req.raw_path)
            return ("mma", unquote(match["source"]), unquote(match["task"])) if match else None
        if op.action == "GetAsyncTask":
            body = self._json_body(req)
            value = body.get("async_task_id") if body is not None else None
            return ("pds", value) if isinstance(value, str) and value else None
        return None

    def _fault_reply(self, kind: str, service: str, host: str, rid: str) -> _Reply | None:
        mma_product = service == "mma"
        if kind == "503":
            return self._error(
                service,
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
                host,
                rid,
            )
        if kind == "500":
            message = "The request processing has failed due to some unknown error, exception or failure."
            if mma_product:
                return self._mma_error(500, "InternalError", message, rid)
            return self._error(service, 500, "InternalError", message, host, rid)
        if kind in ("throttling", "throttling_retry_after"):
            reply = self._error(
                service, 400, "Throttling.User", "Request was denied due to user flow control.", host, rid
            )
            if kind == "throttling_retry_after":
                reply.headers["x-acs-retry-after"] = "200"
            return reply
        if kind == "pds_gateway":
            return _Reply(
                504,
                raw=b"",
                content_type="",
                headers={
                    "x-ca-error-code": "D504TO",
                    "x-ca-error-message": "Backend service request timeout",
                    "x-ca-request-id": rid,
                },
            )
        if kind == "malformed_json":
            return _Reply(200, raw=b"{'RequestId': '" + rid.encode() + b"', Success: true,}")
        if kind == "html":
            page = (
                "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
                "<center><h1>502 Bad Gateway</h1></center>\n<hr><center>Tengine</center>\n</body>\n</html>\n"
            )
            return _Reply(502, raw=page.encode(), content_type="text/html")
        return None  # slow, drop, truncated_json: handled by the caller

    async def _drop(self, scope: Scope) -> None:
        """Close the client's TCP connection without answering (in-process: raise)."""
        client = scope.get("client")
        server = self._server
        if server is not None and client is not None:
            for conn in list(server.server_state.connections):
                transport = getattr(conn, "transport", None)
                if getattr(conn, "client", None) == tuple(client) and transport is not None:
                    transport.close()
                    for _ in range(3):  # let connection_lost run, so uvicorn sends nothing more
                        await asyncio.sleep(0)
                    return
        raise _Drop("emulated dropped connection")

    def _route(self, req: SignedRequest, params: Mapping[str, str]) -> _Op | tuple[str, int, str, str]:
        """The operation a request names, or ``(service, status, code, message)``."""
        path = unquote(req.raw_path)
        if path.startswith("/v2/"):
            pds_op = _PDS_OPS.get(path.rstrip("/"))
            if pds_op is None or req.method != "POST":
                return (
                    "pds",
                    404,
                    "NotFound.API",
                    f"The API {req.method} {path} is not supported by the emulator.",
                )
            return pds_op
        action = req.header("x-acs-action") or params.get("Action")
        version = req.header("x-acs-version") or params.get("Version")
        if not action:
            return (
                "pop",
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )
        op = _POP_OPS.get(action)
        if op is None:
            return (
                "pop",
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            )
        if version != op.version:
            return (op.service, 400, "InvalidVersion", "Specified parameter Version is not valid.")
        if op.style == "RPC":
            if path not in ("", "/") or req.method not in ("GET", "POST"):
                return (
                    op.service,
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            return op
        if isinstance(op.path, re.Pattern):  # path parameters: match segments still encoded
            matches = op.path.match(req.raw_path) is not None
        else:
            matches = path == op.path
        if not matches or req.method != op.method:
            return (
                op.service,
                404,
                "InvalidApi.NotFound",
                "Specified api is not found, please check your url and method.",
            )
        return op

    def _authenticate(self, op: _Op, req: SignedRequest, params: Mapping[str, str]) -> Principal | None:
        """Verify the request's credentials; ``None`` for an anonymous call allowed (OIDC)."""
        authorization = (req.header("authorization") or "").strip()
        gateway = "pds" if op.service == "pds" else "pop"
        verifier = Verifier(
            self._lookup_key, self._nonce_checker(gateway), self.now(), self.max_skew_seconds, log.warning
        )
        if op.service == "pds":
            if authorization.startswith("Bearer "):
                token = authorization[len("Bearer ") :].strip()
                with self._lock:
                    known = token in self._bearer_tokens
                if not known:
                    raise AuthError(
                        401, "AccessTokenInvalid", "AccessToken is invalid. The access token is unknown."
                    )
                return Principal(key=None, scheme="bearer", bearer_token=token)
            if authorization.startswith("acs "):
                return verifier.acs_v1(req, skew_error=(403, "RequestTimeTooSkewed"), mismatch_status=403)
            if not authorization:
                raise AuthError(
                    401, "AccessTokenInvalid", "AccessToken is invalid. The Authorization header is missing."
                )
            raise AuthError(
                400, "IncompleteSignature", "Unsupported Authorization scheme for PDS (use 'acs' or Bearer)."
            )
        if authorization.startswith("ACS3-HMAC-SHA256"):
            return verifier.acs3(req)
        if authorization.startswith("acs ") and op.style == "ROA":
            return verifier.acs_v1(req)
        if "Signature" in params and op.style == "RPC":
            return verifier.rpc_v2(req, params)
        if op.action == "AssumeRoleWithOIDC" and not authorization:
            return None
        if authorization:
            raise AuthError(400, "IncompleteSignature", "Unsupported Authorization scheme.")
        raise AuthError(
            400, "MissingAuthorization", "The Authorization header is required (or RPC Signature parameters)."
        )

    async def handle_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point of every emulated cloud API."""
        request = Request(scope, receive)
        body = await request.body()
        raw_path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        query = parse_qsl(
            bytes(scope.get("query_string", b"")).decode("utf-8", "replace"), keep_blank_values=True
        )
        form: list[tuple[str, str]] = []
        content_type = (headers.get("content-type") or [""])[0]
        if content_type.startswith("application/x-www-form-urlencoded") and body:
            form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        req = SignedRequest(scope["method"].upper(), raw_path, query, headers, body, form)
        params = {**dict(query), **dict(form)}
        host = req.header("host") or ""
        rid = _request_id()

        routed = self._route(req, params)
        if not isinstance(routed, _Op):
            service, status, code, message = routed
            reply = (
                self._pds_error(status, code, message, rid)
                if service == "pds"
                else self._pop_error(status, code, message, host, service, rid)
            )
            await self._send(reply, "pds" if service == "pds" else "pop", rid, scope, receive, send)
            return
        op = routed
        task_key = self._status_task_key(op, req, params)
        with self._lock:
            self._requests[op.service] += 1
            if task_key is not None:
                self._task_requests[task_key] += 1

        truncate = False
        if op.service in SERVICES:
            kind = self._take_fault(op.service, task_key[-1] if task_key else None)
            if kind == "slow":
                await asyncio.sleep(self.slow_seconds)
            elif kind == "drop":
                await self._drop(scope)
                return
            elif kind == "truncated_json":
                truncate = True
            elif kind is not None:
                fault_reply = self._fault_reply(kind, op.service, host, rid)
                if fault_reply is not None:
                    await self._send(fault_reply, op.service, rid, scope, receive, send)
                    return

        try:
            principal = self._authenticate(op, req, params)
        except AuthError as exc:
            reply = self._error(op.service, exc.status, exc.code, exc.message, host, rid)
        else:
            try:
                reply = self._dispatch(op, req, params, principal, host, rid, advance=not truncate)
            except Exception:  # an emulator bug: answer like a gateway would, and log it
                log.exception("emulator handler for %s failed", op.action)
                reply = self._error(op.service, 500, "InternalError", "Emulator internal error.", host, rid)
        if truncate:
            reply.content = reply.content[: max(1, len(reply.content) // 2)]
        await self._send(reply, op.service, rid, scope, receive, send)

    async def _send(
        self, reply: _Reply, service: str, rid: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = self._reply_headers(service, rid)
        headers.update(reply.headers)
        if reply.content_type:
            headers["content-type"] = reply.content_type
        response = Response(content=reply.content, status_code=reply.status, headers=headers)
        await response(scope, receive, send)

    # ------------------------------------------------------------------ operations

    def _dispatch(
        self,
        op: _Op,
        req: SignedRequest,
        params: Mapping[str, str],
        principal: Principal | None,
        host: str,
        rid: str,
        *,
        advance: bool,
    ) -> _Reply:
        handlers: dict[str, Callable[..., _Reply]] = {
            "GetAsyncTaskStatus": self._dlf_status,
            "DeleteDatabase": self._dlf_delete_database,
            "GetJobStatus": self._dataworks_status,
            "ImportWorkflowDefinition": self._dataworks_import,
            "GetMmsAsyncTask": self._mma_status,
            "CreateMmsJob": self._mma_create_job,
            "GetAsyncTask": self._pds_status,
            "ArchiveFiles": self._pds_archive,
            "GetCallerIdentity": self._sts_caller_identity,
            "AssumeRole": self._sts_assume_role,
            "AssumeRoleWithOIDC": self._sts_assume_role_oidc,
        }
        return handlers[op.action](
            req=req, params=params, principal=principal, host=host, rid=rid, advance=advance
        )

    def _poll(self, key: tuple[str, ...], advance: bool) -> tuple[_bodies.Task, int] | None:
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                return None
            return task, task.step(advance=advance, now=self.now())

    # DLF ---------------------------------------------------------------

    @staticmethod
    def _dlf_body_error(code: str, message: str, rid: str) -> _Reply:
        # DLF reports product errors inside an HTTP 200 body with Success=false.
        return _Reply(200, {"Code": code, "Message": message, "RequestId": rid, "Success": False})

    def _dlf_status(
        self, *, req: SignedRequest, params: Mapping[str, str], rid: str, advance: bool, **_: Any
    ) -> _Reply:
        task_id = params.get("TaskId")
        if not task_id:
            return self._dlf_body_error("InvalidParameter", "TaskId is required.", rid)
        with self._lock:
            task = self._tasks.get(("dlf", task_id))
            catalog = task.options.get("catalog_id") if task else None
        asked = params.get("CatalogId")
        if task is None or (catalog and asked and asked != catalog):
            return self._dlf_body_error("NoSuchObject", f"Task {task_id} does not exist.", rid)
        polled = self._poll(("dlf", task_id), advance)
        assert polled is not None
        return _Reply(200, _bodies.dlf_task_status(polled[0], polled[1], rid))

    def _dlf_delete_database(self, *, params: Mapping[str, str], rid: str, **_: Any) -> _Reply:
        name = params.get("Name")
        if not name:
            return self._dlf_body_error("InvalidParameter", "Name is required.", rid)
        body: dict[str, Any] = {"Code": "OK", "Message": ".", "RequestId": rid, "Success": True}
        if _truthy(params.get("Async", "false")):
            task_id = uuid.uuid4().hex
            self.add_dlf_task(
                task_id, self.start_lifecycles["dlf"], catalog_id=params.get("CatalogId") or self.account_id
            )
            body["TaskId"] = task_id
        return _Reply(200, body)

    # DataWorks -----------------------------------------------------------

    def _dataworks_status(
        self, *, params: Mapping[str, str], host: str, rid: str, advance: bool, **_: Any
    ) -> _Reply:
        job_id = params.get("JobId")
        if not job_id:
            return self._pop_error(
                400, "MissingJobId", "JobId is mandatory for this action.", host, "dataworks", rid
            )
        polled = self._poll(("dataworks", job_id), advance)
        if polled is None:
            return self._pop_error(
                404,
                "InvalidJob.NotFound",
                f"The specified job {job_id} does not exist.",
                host,
                "dataworks",
                rid,
            )
        return _Reply(200, _bodies.dataworks_job_status(polled[0], polled[1], rid))

    def _dataworks_import(self, *, params: Mapping[str, str], host: str, rid: str, **_: Any) -> _Reply:
        for name in ("ProjectId", "Spec"):
            if not params.get(name):
                return self._pop_error(
                    400, f"Missing{name}", f"{name} is mandatory for this action.", host, "dataworks", rid
                )
        job_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        workflow_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        self.add_dataworks_job(job_id, self.start_lifecycles["dataworks"], job_type="Create")
        with self._lock:
            created = self._tasks[("dataworks", job_id)].created_at
        return _Reply(
            200,
            {
                "RequestId": rid,
                "AsyncJob": {
                    "Completed": False,
                    "CreateTime": int(created * 1000),
                    "Id": job_id,
                    "Progress": 0,
                    "Response": workflow_id,
                    "Status": "Running",
                    "Type": "Create",
                },
            },
        )

    # MMA -------------------------------------------------------------------

    def _mma_status(self, *, req: SignedRequest, rid: str, advance: bool, **_: Any) -> _Reply:
        match = _MMA_PATH.match(req.raw_path)
        assert match is not None
        source_id, task_id = unquote(match["source"]), unquote(match["task"])
        polled = self._poll(("mma", source_id, task_id), advance)
        if polled is None:
            return self._mma_error(
                404, "NotFound", f"async task {task_id} of data source {source_id} does not exist", rid
            )
        return _Reply(200, _bodies.mma_async_task(polled[0], polled[1], rid))

    def _mma_create_job(self, *, req: SignedRequest, rid: str, **_: Any) -> _Reply:
        match = _MMA_JOBS_PATH.match(req.raw_path)
        assert match is not None
        source_id = unquote(match["source"])
        try:
            spec = json.loads(req.body or b"{}")
        except ValueError:
            return self._mma_error(400, "InvalidParameter", "request body is not valid JSON", rid)
        if not isinstance(spec, dict) or not spec.get("dstDbName"):
            return self._mma_error(400, "InvalidParameter", "dstDbName is required", rid)
        with self._lock:
            self._mma_ids += 1
            task_id = self._mma_ids
        self.add_mma_task(source_id, task_id, self.start_lifecycles["mma"])
        with self._lock:
            self._tasks[("mma", source_id, str(task_id))].options["object_id"] = task_id - 1_000_000
        return _Reply(200, {"requestId": rid, "data": {"asyncTaskId": task_id}})

    # PDS -------------------------------------------------------------------

    @staticmethod
    def _json_body(req: SignedRequest) -> dict[str, Any] | None:
        try:
            parsed = json.loads(req.body or b"{}")
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @staticmethod
    def _host_domain(host: str) -> str | None:
        name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1:].split("]")[0]
        if not name or is_loopback_host(name) or re.fullmatch(r"[\d.]+", name):
            return None
        return name.split(".", 1)[0]

    def _pds_status(self, *, req: SignedRequest, host: str, rid: str, advance: bool, **_: Any) -> _Reply:
        body = self._json_body(req)
        if body is None:
            return self._pds_error(
                400, "InvalidParameter", "The request body is not a valid JSON object.", rid
            )
        task_id = body.get("async_task_id")
        if not task_id or not isinstance(task_id, str):
            return self._pds_error(
                400, "InvalidParameter.AsyncTaskId", "The input parameter async_task_id is not valid.", rid
            )
        with self._lock:
            task = self._tasks.get(("pds", task_id))
            domain = task.options.get("domain_id") if task else None
        asked_domain = self._host_domain(host)
        if task is None or (domain and asked_domain and asked_domain != domain):
            return self._pds_error(
                404,
                "NotFound.AsyncTask",
                f"The resource async_task cannot be found. async_task_id: {task_id}",
                rid,
            )
        polled = self._poll(("pds", task_id), advance)
        assert polled is not None
        return _Reply(200, _bodies.pds_async_task(polled[0], polled[1]), content_type=_PDS_JSON)

    def _pds_archive(self, *, req: SignedRequest, host: str, rid: str, **_: Any) -> _Reply:
        body = self._json_body(req)
        if body is None:
            return self._pds_error(
                400, "InvalidParameter", "The request body is not a valid JSON object.", rid
            )
        file_ids = body.get("file_ids")
        if not isinstance(file_ids, list) or not file_ids:
            return self._pds_error(
                400, "InvalidParameter.FileIds", "The input parameter file_ids is not valid.", rid
            )
        if not body.get("name"):
            return self._pds_error(
                400, "InvalidParameter.Name", "The input parameter name is not valid.", rid
            )
        if not body.get("drive_id") and not body.get("share_id"):
            return self._pds_error(
                400, "InvalidParameter.DriveId", "One of drive_id and share_id is required.", rid
            )
        task_id = str(uuid.uuid4())
        self.add_pds_task(
            task_id,
            self.start_lifecycles["pds"],
            domain_id=self._host_domain(host),
            total_process=len(file_ids),
        )
        with self._lock:
            self._tasks[("pds", task_id)].options.update(category="archive_files", task_type="ArchiveFiles")
        # UNVERIFIED: 202 Accepted, as PDS answers other asynchronous file operations.
        return _Reply(202, {"async_task_id": task_id}, content_type=_PDS_JSON)

    # STS -------------------------------------------------------------------

    def _sts_caller_identity(self, *, principal: Principal | None, rid: str, **_: Any) -> _Reply:
        identity = dict(principal.key.identity) if principal and principal.key else {}
        identity.pop("AssumedRoleArn", None)
        return _Reply(200, {"RequestId": rid, **identity})

    def _sts_credentials_reply(
        self, record: KeyRecord, rid: str, extra: dict[str, Any] | None = None
    ) -> _Reply:
        body: dict[str, Any] = {
            "RequestId": rid,
            "AssumedRoleUser": {
                "Arn": record.identity["Arn"],
                "AssumedRoleId": record.identity["PrincipalId"],
            },
            "Credentials": {
                "AccessKeyId": record.access_key_id,
                "AccessKeySecret": record.secret,
                "SecurityToken": record.security_token,
                "Expiration": _iso_seconds(record.expires_at or 0.0),
            },
        }
        body.update(extra or {})
        return _Reply(200, body)

    def _sts_validate(self, params: Mapping[str, str], host: str, rid: str) -> _Reply | int:
        role_arn = params.get("RoleArn")
        if not role_arn:
            return self._pop_error(
                400, "MissingRoleArn", "RoleArn is mandatory for this action.", host, "sts", rid
            )
        if not _ROLE_ARN.match(role_arn):
            return self._pop_error(
                400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.", host, "sts", rid
            )
        duration_text = params.get("DurationSeconds") or "3600"
        try:
            duration = int(duration_text)
        except ValueError:
            duration = -1
        if not 900 <= duration <= 43200:
            return self._pop_error(
                400,
                "InvalidParameter.DurationSeconds",
                "The DurationSeconds must be between 900 and 43200 (the role's maximum session duration).",
                host,
                "sts",
                rid,
            )
        policy = params.get("Policy")
        if policy:
            try:
                json.loads(policy)
            except ValueError:
                return self._pop_error(
                    400,
                    "InvalidParameter.PolicyGrammar",
                    "The parameter Policy has not passed grammar check.",
                    host,
                    "sts",
                    rid,
                )
        return duration

    def _sts_assume_role(self, *, params: Mapping[str, str], host: str, rid: str, **_: Any) -> _Reply:
        checked = self._sts_validate(params, host, rid)
        if isinstance(checked, _Reply):
            return checked
        session = params.get("RoleSessionName")
        if not session:
            return self._pop_error(
                400,
                "MissingRoleSessionName",
                "RoleSessionName is mandatory for this action.",
                host,
                "sts",
                rid,
            )
        record = self._issue_sts(params["RoleArn"], session, checked)
        return self._sts_credentials_reply(record, rid)

    def _sts_assume_role_oidc(self, *, params: Mapping[str, str], host: str, rid: str, **_: Any) -> _Reply:
        for name in ("OIDCProviderArn", "OIDCToken"):
            if not params.get(name):
                return self._pop_error(
                    400, f"Missing{name}", f"{name} is mandatory for this action.", host, "sts", rid
                )
        checked = self._sts_validate(params, host, rid)
        if isinstance(checked, _Reply):
            return checked
        claims: dict[str, Any] = {}
        parts = params["OIDCToken"].split(".")
        if len(parts) == 3:
            try:
                claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            except ValueError:
                claims = {}
        if not isinstance(claims, dict):
            claims = {}
        session = params.get("RoleSessionName") or f"oidc-{secrets.token_hex(4)}"
        record = self._issue_sts(params["RoleArn"], session, checked)
        audience = claims.get("aud", "")
        info = {
            "OIDCTokenInfo": {
                "Subject": str(claims.get("sub", "")),
                "Issuer": str(claims.get("iss", "")),
                "ClientIds": ",".join(audience) if isinstance(audience, list) else str(audience),
            }
        }
        return self._sts_credentials_reply(record, rid, info)

    # ------------------------------------------------------------------ control API

    async def _control(self, request: Request) -> Response:
        response = await self._control_response(request)
        response.headers["Date"] = format_http_date(self.now())
        return response

    async def _control_response(self, request: Request) -> Response:
        name = request.path_params["name"].strip("/")
        method = request.method
        try:
            if method == "GET" and name == "health":
                return JSONResponse({"ok": True, "server_time": _iso_seconds(self.now())})
            if method == "GET" and name == "stats":
                return JSONResponse(self.stats())
            if method == "GET" and name == "tasks":
                return JSONResponse({"tasks": self.tasks()})
            if method == "GET" and name == "credentials":
                return JSONResponse({"Code": "Success", **self.issue_sts_credentials()})
            if method != "POST":
                return JSONResponse({"error": f"unknown control endpoint {method} /_emulator/{name}"}, 404)
            payload = await self._control_payload(request)
            if name == "tasks":
                specs = payload if isinstance(payload, list) else [payload]
                created = []
                for spec in specs:
                    spec = dict(spec)
                    created.append({"service": spec.get("service"), "ids": self.add_task(**spec)})
                return JSONResponse({"ok": True, "tasks": created}, 201)
            if name == "faults":
                for fault in payload if isinstance(payload, list) else [payload]:
                    self.inject_fault(
                        str(fault["kind"]),
                        int(fault.get("count", 1)),
                        service=fault.get("service"),
                        task=fault.get("task"),
                    )
                return JSONResponse({"ok": True})
            if name == "fault_rate":
                seed = payload.get("seed")
                self.set_fault_rate(
                    float(payload["rate"]),
                    payload.get("kinds"),
                    service=payload.get("service"),
                    seed=None if seed is None else int(seed),
                    exempt_tasks=[str(t) for t in payload.get("exempt_tasks", [])],
                )
                return JSONResponse({"ok": True})
            if name == "slow_seconds":
                seconds = float(payload["seconds"])
                if not 0.0 <= seconds <= 600.0:
                    raise ValueError("seconds must be between 0 and 600")
                self.slow_seconds = seconds
                return JSONResponse({"ok": True, "seconds": self.slow_seconds})
            if name == "reset":
                self.reset()
                return JSONResponse({"ok": True})
            if name == "revoke":
                self.revoke_key(str(payload["access_key_id"]))
                return JSONResponse({"ok": True})
            if name == "clock":
                self.clock_offset = float(payload["offset"])
                return JSONResponse({"ok": True, "offset": self.clock_offset})
            if name == "start_lifecycle":
                service = str(payload["service"])
                statuses = payload["statuses"]
                if service not in SERVICES or not isinstance(statuses, list) or not statuses:
                    raise ValueError("start_lifecycle needs a service and a non-empty statuses list")
                with self._lock:
                    self.start_lifecycles[service] = tuple(str(s) for s in statuses)
                return JSONResponse({"ok": True})
            return JSONResponse({"error": f"unknown control endpoint POST /_emulator/{name}"}, 404)
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 400)

    @staticmethod
    async def _control_payload(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return {}
        return json.loads(raw)


class _ApiApp:
    """ASGI endpoint (not a request/response function, so it can drop the connection)."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._emulator.handle_api(scope, receive, send)
