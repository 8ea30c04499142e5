"""The emulator: its state, the uvicorn thread, routing, authentication and the counters.

What each service serves lives in its own module (``_dlf``, ``_dataworks``, ``_mma``, ``_pds``,
``_emr_serverless_spark``, ``_dataworks_workflow``, ``_pai_dlc``, ``_adb_spark``, ``_flink_job``,
``_fc_async_task``, ``_sts``), as a
:class:`~._base.Service` table; faults in ``_faults``; the control API in ``_control``. See the
package docstring for the whole API.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from airflow_aliyun_tasks.testing import (
    _adb_spark,
    _dataworks,
    _dataworks_workflow,
    _dlf,
    _emr_serverless_spark,
    _fc_async_task,
    _flink_job,
    _mma,
    _pai_dlc,
    _pds,
    _sts,
)
from airflow_aliyun_tasks.testing._auth import (
    AuthError,
    KeyRecord,
    Principal,
    SignedRequest,
    Verifier,
)
from airflow_aliyun_tasks.testing._base import (
    Call,
    Op,
    Reply,
    Service,
    http_date,
    is_loopback_host,
    iso_seconds,
    pop_error,
    request_id,
)
from airflow_aliyun_tasks.testing._control import control_endpoint
from airflow_aliyun_tasks.testing._faults import (
    DROP,
    DROP_AFTER_ACCEPT,
    SLOW,
    TRUNCATE,
    FaultInjection,
    drop_connection,
    fault_reply,
)

log = logging.getLogger("airflow_aliyun_tasks.testing")

DEFAULT_ACCESS_KEY_ID = "LTAI5tEmulatorKeyId00"
DEFAULT_ACCESS_KEY_SECRET = "EmulatorSecret0000000000000000"  # a fixed, public test secret

#: every emulated service, in the order the stats list them
_SERVICES: tuple[Service, ...] = (
    _dlf.SERVICE,
    _dataworks.SERVICE,
    _mma.SERVICE,
    _pds.SERVICE,
    _emr_serverless_spark.SERVICE,
    _dataworks_workflow.SERVICE,
    _pai_dlc.SERVICE,
    _adb_spark.SERVICE,
    _flink_job.SERVICE,
    _fc_async_task.SERVICE,
    _sts.SERVICE,
)
_BY_NAME: dict[str, Service] = {service.name: service for service in _SERVICES}

#: the four async-task services (DLF, DataWorks, MaxCompute MMA, PDS), by their short names
SERVICES: tuple[str, ...] = ("dlf", "dataworks", "mma", "pds")
#: every service with tasks (STS aside): :data:`SERVICES`, EMR Serverless Spark, DataWorks
#: workflow instances, PAI DLC, AnalyticDB Spark, Flink job instances and Function Compute
#: asynchronous tasks
ALL_SERVICES: tuple[str, ...] = tuple(s.name for s in _SERVICES if s.id_names)

#: lifecycle of the tasks that the emulated start operations create (``Emulator.start_lifecycles``)
DEFAULT_START_LIFECYCLES: dict[str, tuple[str, ...]] = {
    s.name: s.start_lifecycle for s in _SERVICES if s.start_lifecycle
}

_NONCE_TTL_SECONDS = 15 * 60
_NOT_FOUND = "Specified api is not found, please check your url and method."


def _route_tables() -> tuple[dict[str, list[Op]], dict[str, Op]]:
    """The operations of the POP gateway by action, and those routed by path, by path."""
    by_action: dict[str, list[Op]] = {}
    by_path: dict[str, Op] = {}
    for service in _SERVICES:
        for op in service.ops:
            if service.path_prefix is not None and isinstance(op.path, str):
                by_path[op.path] = op
            else:
                by_action.setdefault(op.action, []).append(op)
    return by_action, by_path


_POP_OPS, _PATH_OPS = _route_tables()
_PATH_SERVICES = {s.path_prefix: s for s in _SERVICES if s.path_prefix is not None}
#: every start operation, as (service, action)
_START_OPS = tuple(dict.fromkeys((s.name, op.action) for s in _SERVICES for op in s.ops_of_kind("start")))
#: the start operations the emulator serves, as ``(service, action)``
START_OPERATIONS: tuple[tuple[str, str], ...] = _START_OPS
#: the cancel operations the emulator serves, as ``(service, action)``
CANCEL_OPERATIONS: tuple[tuple[str, str], ...] = tuple(
    dict.fromkeys((s.name, op.action) for s in _SERVICES for op in s.ops_of_kind("cancel"))
)


class Emulator(
    _dlf.DlfTasks,
    _dataworks.DataWorksJobs,
    _mma.MmaTasks,
    _pds.PdsTasks,
    _emr_serverless_spark.EmrServerlessSparkJobRuns,
    _dataworks_workflow.DataWorksWorkflowInstances,
    _pai_dlc.PaiDlcJobs,
    _adb_spark.AdbSparkApps,
    _flink_job.FlinkJobs,
    _fc_async_task.FcAsyncTasks,
    _sts.StsKeys,
    FaultInjection,
):
    """A local Alibaba Cloud: DLF, DataWorks (jobs and workflow instances), MaxCompute MMA, PDS, EMR
    Serverless Spark, PAI DLC, AnalyticDB Spark, Realtime Compute for Apache Flink, Function
    Compute asynchronous tasks and STS.

    See :mod:`airflow_aliyun_tasks.testing` for the full description.
    """

    _faultable = ALL_SERVICES

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
        self._reset_state()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._host: str | None = None
        self._port: int | None = None
        self._scheme = "http"
        self.app = self._build_app()

    def _reset_state(self) -> None:
        super()._reset_state()
        self._requests: Counter[str] = Counter()  # by service
        self._task_requests: Counter[tuple[str, ...]] = Counter()  # status polls, by task
        self._starts: Counter[tuple[str, str]] = Counter()  # by (service, action)
        self._starts_accepted: Counter[tuple[str, str]] = Counter()
        self._cancels: Counter[tuple[str, ...]] = Counter()  # by task
        self._cancels_accepted: Counter[tuple[str, ...]] = Counter()
        self._nonces: dict[tuple[str, str, str], float] = {}
        self._revoked: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> str:
        """Serve on ``host:port`` (0 picks a free port) from a daemon thread; return the base URL.

        Blocks until the port accepts connections. Only loopback hosts are allowed. With
        ``ssl_certfile`` (PEM certificate chain) and ``ssl_keyfile`` (its key) it serves HTTPS.
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
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="aliyun-emulator", daemon=True)
        self._server, self._thread, self._host = server, thread, host
        self._scheme = "https" if ssl_certfile else "http"
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
        return f"{self._scheme}://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """``host:port`` — what SDK ``Config(endpoint=...)`` and the connection extras want."""
        return self.url.split("://", 1)[1]

    # ------------------------------------------------------------------ scripting

    @staticmethod
    def _service(name: str | None) -> Service:
        """The service with tasks named ``name``."""
        service = _BY_NAME.get(name or "")
        if service is None or not service.id_names:
            raise ValueError(f"unknown service {name!r}; expected one of {', '.join(ALL_SERVICES)}")
        return service

    def add_task(self, service: str, **spec: Any) -> dict[str, str]:
        """Generic form of the ``add_*`` methods (used by the control API and ``--tasks`` files).

        ``spec`` holds the ids and options of that method; ``statuses`` is accepted where the
        method says ``states`` (PDS, EMR Serverless Spark). Returns the task's ids.
        """
        table = self._service(service)
        spec = dict(spec)
        if "statuses" in spec and table.statuses_arg not in spec:
            spec[table.statuses_arg] = spec.pop("statuses")
        missing = [name for name in table.id_names if name not in spec]
        if missing:
            raise ValueError(f"{service} task needs {', '.join(missing)}")
        getattr(self, table.adder)(**spec)
        return {name: str(spec[name]) for name in table.id_names}

    def set_start_lifecycle(self, service: str, statuses: Sequence[str]) -> None:
        """Statuses of the tasks that ``service``'s start operations create from now on."""
        if service not in DEFAULT_START_LIFECYCLES or isinstance(statuses, str) or not statuses:
            raise ValueError(
                "start_lifecycle needs a service with start operations and a non-empty statuses list"
            )
        with self._lock:
            self.start_lifecycles[service] = tuple(str(s) for s in statuses)

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
        """Forget tasks, client tokens, pending faults, counters, nonces, issued STS keys and
        revocations; restore the constructor's ``clock_offset`` and the default start lifecycles.
        Keys and the socket stay."""
        with self._lock:
            self._reset_state()
            self.clock_offset = self._initial_clock_offset
            self.start_lifecycles = dict(DEFAULT_START_LIFECYCLES)

    # ------------------------------------------------------------------ observation

    def _task_key_of(self, service: str | None, ids: Mapping[str, Any], caller: str) -> tuple[str, ...]:
        table = self._service(service)
        named = {table.id_aliases.get(k, k): v for k, v in ids.items() if k not in table.ignored_ids}
        if set(named) != set(table.id_names):
            raise TypeError(f"{caller}({service!r}) takes {', '.join(table.id_names)}")
        return (table.name, *(str(named[n]) for n in table.id_names))

    def request_count(self, service: str | None = None, **ids: Any) -> int:
        """Requests that reached a service's API (status polls, start and cancel operations,
        faulted and rejected ones included); ``None`` sums every service but STS. ``"sts"``
        counts STS.

        With ids (as for :meth:`poll_count`), the status polls of that one task, scripted or not,
        faulted and rejected ones included."""
        if ids:
            key = self._task_key_of(service, ids, "request_count")
            with self._lock:
                return self._task_requests[key]
        with self._lock:
            if service is None:
                return sum(self._requests[s] for s in ALL_SERVICES)
            return self._requests[service]

    def poll_count(self, service: str, **ids: Any) -> int:
        """Status polls of one task answered normally (each one moved its lifecycle on).

        Takes the ids as the ``add_*`` methods do, or as the hook and ``TaskStatus.ids`` name
        them (DLF ``async_task_id``; ``catalog_id``, ``domain_id`` and ``region_id`` are ignored)."""
        task = self._task(self._task_key_of(service, ids, "poll_count"))
        return task.polls if task else 0

    def start_count(
        self, service: str | None = None, action: str | None = None, *, accepted: bool = False
    ) -> int:
        """Requests to start operations (of ``service``, named ``action``; ``None``: any).

        Counts every request routed to a start operation, faulted and rejected ones included;
        with ``accepted=True``, only those the operation accepted (it started a task, or, for a
        client token already seen, returned the task it started), whether or not the client got
        the answer (``drop_after_accept``)."""
        if service is not None:
            names = {op.action for op in self._service(service).ops_of_kind("start")}
            if action is not None and action not in names:
                raise ValueError(
                    f"{service} has no start operation {action!r}; it has {', '.join(sorted(names))}"
                )
        counter = self._starts_accepted if accepted else self._starts
        with self._lock:
            return sum(n for (s, a), n in counter.items() if service in (None, s) and action in (None, a))

    def cancel_count(self, service: str | None = None, *, accepted: bool = False, **ids: Any) -> int:
        """Requests to cancel operations (of ``service``; with ids, of that one task), faulted and
        rejected ones included; with ``accepted=True``, only those that were accepted."""
        counter = self._cancels_accepted if accepted else self._cancels
        if ids:
            key = self._task_key_of(service, ids, "cancel_count")
            with self._lock:
                return counter[key]
        if service is not None:
            self._service(service)
        with self._lock:
            return sum(n for key, n in counter.items() if service in (None, key[0]))

    def _ids_of(self, key: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(_BY_NAME[key[0]].id_names, key[1:], strict=True))

    def stats(self) -> dict[str, Any]:
        """Everything ``GET /_emulator/stats`` returns."""
        with self._lock:
            requests = {s: self._requests[s] for s in (*ALL_SERVICES, "sts")}
            requests["total"] = sum(self._requests[s] for s in ALL_SERVICES)
            starts = [
                {
                    "service": service,
                    "action": action,
                    "requests": self._starts[(service, action)],
                    "accepted": self._starts_accepted[(service, action)],
                }
                for service, action in _START_OPS
            ]
            return {
                "requests": requests,
                "tasks": [task.describe() for task in self._tasks.values()],
                **self._describe_faults(),
                "requests_by_task": [
                    {"service": key[0], "ids": self._ids_of(key), "requests": n}
                    for key, n in self._task_requests.items()
                ],
                "starts": starts,
                "cancels": [
                    {
                        "service": key[0],
                        "ids": self._ids_of(key),
                        "requests": n,
                        "accepted": self._cancels_accepted[key],
                    }
                    for key, n in self._cancels.items()
                ],
                "clock_offset": self.clock_offset,
                "server_time": iso_seconds(self.now()),
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

    # ------------------------------------------------------------------ the app

    def _build_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/_emulator/{name:path}", control_endpoint(self), methods=["GET", "POST"]),
                Route("/{path:path}", _ApiApp(self)),
            ]
        )

    def _route(
        self, req: SignedRequest, params: Mapping[str, str]
    ) -> Op | tuple[Service | None, int, str, str]:
        """The operation a request names, or ``(service, status, code, message)`` to answer."""
        path = unquote(req.raw_path)
        for prefix, service in _PATH_SERVICES.items():
            if path.startswith(prefix):
                op = _PATH_OPS.get(path.rstrip("/"))
                if op is None or req.method != op.method:
                    message = f"The API {req.method} {path} is not supported by the emulator."
                    return service, 404, "NotFound.API", message
                return op
        action = req.header("x-acs-action") or params.get("Action")
        version = req.header("x-acs-version") or params.get("Version")
        candidates = _POP_OPS.get(action or "")
        if not candidates:
            return None, 404, "InvalidAction.NotFound", _NOT_FOUND
        op = next((o for o in candidates if o.version == version), None)
        if op is None:
            return (
                _BY_NAME[candidates[0].service],
                400,
                "InvalidVersion",
                "Specified parameter Version is not valid.",
            )
        if op.style == "RPC":
            matches = path in ("", "/") and req.method in ("GET", "POST")
            return op if matches else (_BY_NAME[op.service], 404, "InvalidAction.NotFound", _NOT_FOUND)
        if isinstance(op.path, re.Pattern):  # path parameters: match segments still encoded
            matches = op.path.match(req.raw_path) is not None
        else:
            matches = path == op.path
        if not matches or req.method != op.method:
            return _BY_NAME[op.service], 404, "InvalidApi.NotFound", _NOT_FOUND
        return op

    def _authenticate(self, op: Op, req: SignedRequest, params: Mapping[str, str]) -> Principal | None:
        """Verify the request's credentials; ``None`` for an anonymous call allowed (OIDC)."""
        gateway = _BY_NAME[op.service].gateway
        authorization = (req.header("authorization") or "").strip()
        verifier = Verifier(
            self._lookup_key, self._nonce_checker(gateway), self.now(), self.max_skew_seconds, log.warning
        )
        if gateway == "pds":
            return self._authenticate_pds(req, authorization, verifier)
        if authorization.startswith("ACS3-HMAC-SHA256"):
            return verifier.acs3(req)
        if authorization.startswith("acs ") and op.style == "ROA":
            return verifier.acs_v1(req)
        if "Signature" in params and op.style == "RPC":
            return verifier.rpc_v2(req, params)
        if op.anonymous and not authorization:
            return None
        if authorization:
            raise AuthError(400, "IncompleteSignature", "Unsupported Authorization scheme.")
        raise AuthError(
            400, "MissingAuthorization", "The Authorization header is required (or RPC Signature parameters)."
        )

    def _authenticate_pds(self, req: SignedRequest, authorization: str, verifier: Verifier) -> Principal:
        """PDS's gateway: a user access token (Bearer) or the ``acs`` HMAC-SHA1 signature."""
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

    @staticmethod
    async def _read(scope: Scope, receive: Receive) -> tuple[SignedRequest, dict[str, str]]:
        """The request as the signatures see it, and its query and form parameters."""
        body = await Request(scope, receive).body()
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
        return req, {**dict(query), **dict(form)}

    def _count(self, call: Call, task_key: tuple[str, ...] | None, reply: Reply | None) -> None:
        """Count a request (``reply`` None) or, once answered, whether its operation accepted it."""
        op = call.op
        with self._lock:
            if op.kind == "start":
                counter = self._starts if reply is None else self._starts_accepted
                counter[(op.service, op.action)] += 1
            elif op.kind == "cancel":
                keys = op.task_keys(call) if op.task_keys is not None else (task_key,)
                for key in keys:
                    if key is None:
                        continue
                    if reply is None:
                        self._cancels[key] += 1
                    elif reply.accepted_tasks is None or key in reply.accepted_tasks:
                        self._cancels_accepted[key] += 1
            if reply is None:
                self._requests[op.service] += 1
                if op.kind == "status" and task_key is not None:
                    self._task_requests[task_key] += 1

    async def handle_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point of every emulated cloud API."""
        req, params = await self._read(scope, receive)
        host = req.header("host") or ""
        rid = request_id()
        routed = self._route(req, params)
        if not isinstance(routed, Op):
            service, status, code, message = routed
            if service is None:
                reply, header = pop_error(status, code, message, host, "", rid), "x-acs-request-id"
            else:
                reply, header = service.error(status, code, message, host, rid), service.request_id_header
            await self._send(reply, header, rid, scope, receive, send)
            return
        op, service = routed, _BY_NAME[routed.service]
        call = Call(op, req, params, host, rid)
        task_key = op.task_key(call) if op.task_key else None
        self._count(call, task_key, None)

        kind = None
        if service.name in ALL_SERVICES:
            kind = self._take_fault(service.name, task_key[-1] if task_key and op.kind == "status" else None)
        if kind == SLOW:
            await asyncio.sleep(self.slow_seconds)
        elif kind == DROP:
            await drop_connection(self._server, scope)
            return
        elif kind is not None and kind not in (TRUNCATE, DROP_AFTER_ACCEPT):
            fault = fault_reply(kind, service, host, rid)
            if fault is not None:
                await self._send(fault, service.request_id_header, rid, scope, receive, send)
                return

        call.advance = kind != TRUNCATE
        reply = self._answer(call, service)
        if reply.accepted:
            self._count(call, task_key, reply)
        if kind == DROP_AFTER_ACCEPT:
            await drop_connection(self._server, scope)
            return
        if kind == TRUNCATE:
            reply.content = reply.content[: max(1, len(reply.content) // 2)]
        await self._send(reply, service.request_id_header, rid, scope, receive, send)

    def _answer(self, call: Call, service: Service) -> Reply:
        """Authenticate the call and run its operation; errors in the service's shape."""
        try:
            call.principal = self._authenticate(call.op, call.req, call.params)
        except AuthError as exc:
            reply = service.error(exc.status, exc.code, exc.message, call.host, call.rid)
            reply.accepted = False
            return reply
        try:
            return call.op.handler(self, call)
        except Exception:  # an emulator bug: answer like a gateway would, and log it
            log.exception("emulator handler for %s failed", call.op.action)
            return service.error(500, "InternalError", "Emulator internal error.", call.host, call.rid)

    async def _send(
        self, reply: Reply, request_id_header: str, rid: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = {"Date": http_date(self.now()), request_id_header: rid}
        headers.update(reply.headers)
        if reply.content_type:
            headers["content-type"] = reply.content_type
        response = Response(content=reply.content, status_code=reply.status, headers=headers)
        await response(scope, receive, send)


class _ApiApp:
    """ASGI endpoint (not a request/response function, so it can drop the connection)."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._emulator.handle_api(scope, receive, send)
