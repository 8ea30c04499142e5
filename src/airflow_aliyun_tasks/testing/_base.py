"""What every part of the emulator shares: replies, scripted tasks, and the tables of services.

A service module (``_dlf``, ``_dataworks``, ...) declares one :class:`Service`: its operations
(:class:`Op`: action, version, style, method, path, handler, kind) and how its tasks are named,
scripted and answered. The core routes requests with these tables and never asks which service
it is talking to.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_aliyun_tasks.testing._auth import Principal, SignedRequest

if TYPE_CHECKING:
    from airflow_aliyun_tasks.testing._core import Emulator

POP_JSON = "application/json;charset=utf-8"
PDS_JSON = "application/json; charset=utf-8"


def dumps(body: Any) -> bytes:
    """JSON as the gateways send it: compact, UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def iso_seconds(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(epoch: float) -> str:
    """RFC 1123 date in GMT, as the ``Date`` header carries it."""
    return formatdate(epoch, usegmt=True)


def truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def json_object(body: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object (an empty body is ``{}``); ``None`` if it is not one."""
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


class Reply:
    """A response in the making: status, headers and a JSON body (or raw bytes).

    ``accepted`` says whether the operation took effect (a 2xx, unless the service reports an
    error inside a successful response, as DLF does). ``accepted_tasks``: for an operation on
    several tasks (a batch cancel), the keys of those it took effect on (``None``: all of them,
    when ``accepted``).
    """

    def __init__(
        self,
        status: int,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = POP_JSON,
        headers: Mapping[str, str] | None = None,
        accepted: bool | None = None,
    ) -> None:
        self.status = status
        self.content = raw if raw is not None else (b"" if body is None else dumps(body))
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.accepted = 200 <= status < 300 if accepted is None else accepted
        self.accepted_tasks: frozenset[tuple[str, ...]] | None = None

    @classmethod
    def empty(cls, status: int = 202, headers: Mapping[str, str] | None = None) -> Reply:
        """An answer without a body (Function Compute's asynchronous invocation: 202)."""
        return cls(status, raw=b"", content_type="", headers=headers)


def envelope_error(code: str, message: str, rid: str, *, http_code: int = 200, **extra: Any) -> Reply:
    """An error reported inside an HTTP 200 answer, in the camelCase envelope (Realtime Compute
    for Apache Flink): ``success: false``, ``errorCode``, ``errorMessage``, ``httpCode``,
    ``requestId``, ``data: {}``; not accepted."""
    body = {
        "requestId": rid,
        "success": False,
        "httpCode": http_code,
        "errorCode": code,
        "errorMessage": message,
        "data": {},
        **extra,
    }
    return Reply(200, body, accepted=False)


class Drop(ConnectionResetError):
    """Raised in-process (no socket to close) for the faults that drop the connection."""


def pop_error(status: int, code: str, message: str, host: str, product: str, rid: str) -> Reply:
    """An error in the POP gateway's shape: ``RequestId``, ``HostId``, ``Code``, ``Message``, ``Recommend``."""
    body = {
        "RequestId": rid,
        "HostId": host,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={quote(code)}&product={product}&requestId={rid}",
    }
    return Reply(status, body)


# ------------------------------------------------------------------------------ scripted tasks


@dataclass
class Task:
    """One scripted task: each normally answered poll returns the next status; the last sticks."""

    service: str
    ids: dict[str, str]
    statuses: tuple[str, ...]
    options: dict[str, Any]
    created_at: float
    running: frozenset[str] = frozenset()  # upper-case raw statuses that do not end the task
    polls: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    history: list[str] = field(default_factory=list)

    def is_terminal(self, status: str) -> bool:
        """Whether a raw status ends the task's lifecycle (drives ``Completed``, ``endTime``...)."""
        return status.upper() not in self.running

    @property
    def current(self) -> str:
        """The status last reported, or the first scripted one before any poll."""
        return self.history[-1] if self.history else self.statuses[0]

    def step(self, *, advance: bool, now: float) -> int:
        """The index of the status to report now; counts the poll when ``advance``."""
        index = min(self.polls, len(self.statuses) - 1)
        if self.started_at is None:
            self.started_at = now
        if self.finished_at is None and self.is_terminal(self.statuses[index]):
            self.finished_at = now
        if advance:
            self.polls += 1
            self.history.append(self.statuses[index])
        return index

    def describe(self) -> dict[str, Any]:
        index = min(self.polls, len(self.statuses) - 1)
        return {
            "service": self.service,
            "ids": dict(self.ids),
            "statuses": list(self.statuses),
            "polls": self.polls,
            "next_status": self.statuses[index],
            "history": list(self.history),
        }


def pick(values: Sequence[Any] | None, index: int) -> Any:
    """The ``index``-th of per-poll values (the last one sticks); ``None`` when there are none."""
    if not values:
        return None
    return values[min(index, len(values) - 1)]


# --------------------------------------------------------------------------------- the tables


@dataclass
class Call:
    """One request to an emulated operation, as its handler sees it."""

    op: Op
    req: SignedRequest
    params: Mapping[str, str]  # query and form parameters, decoded
    host: str
    rid: str
    principal: Principal | None = None
    advance: bool = True  # False when a fault hides the answer: the lifecycle does not move

    def path_match(self) -> re.Match[str] | None:
        """The match of the operation's path pattern against the path as sent."""
        return self.op.path.match(self.req.raw_path) if isinstance(self.op.path, re.Pattern) else None

    def header(self, name: str) -> str | None:
        """A request header (an id in a header: Flink's ``workspace``; FC's ``x-fc-*``)."""
        return self.req.header(name)

    def json_list(self, name: str) -> list[Any] | None:
        """A query or form parameter holding a JSON array (``Ids=[1234,5678]``); ``None`` when
        absent or not one."""
        try:
            value = json.loads(self.params.get(name) or "null")
        except ValueError:
            return None
        return value if isinstance(value, list) else None


Handler = Callable[["Emulator", Call], Reply]
TaskKey = Callable[[Call], "tuple[str, ...] | None"]
ErrorReply = Callable[[int, str, str, str, str], Reply]  # (status, code, message, host, request id)


def param_key(service: str, name: str) -> TaskKey:
    """The task key of an operation whose one id is the query or form parameter ``name``."""

    def key(call: Call) -> tuple[str, ...] | None:
        value = call.params.get(name)
        return (service, value) if value else None

    return key


def header_key(service: str, name: str) -> TaskKey:
    """The task key of an operation whose one id is the request header ``name``."""

    def key(call: Call) -> tuple[str, ...] | None:
        value = call.header(name)
        return (service, value) if value else None

    return key


TaskKeys = Callable[[Call], "tuple[tuple[str, ...], ...]"]


def list_param_keys(service: str, name: str) -> TaskKeys:
    """The task keys of an operation on several tasks whose ids are the JSON array parameter
    ``name`` (a batch cancel: DataWorks ``StopWorkflowInstances`` ``Ids=[1234,5678]``)."""

    def keys(call: Call) -> tuple[tuple[str, ...], ...]:
        return tuple((service, str(v)) for v in call.json_list(name) or () if not isinstance(v, bool))

    return keys


#: what an operation does, for the counters: read a task's status, start one, cancel one, or other
OP_KINDS = ("status", "start", "cancel", "other")


@dataclass(frozen=True)
class Op:
    """One emulated API operation."""

    service: str
    action: str
    version: str
    style: str  # RPC | ROA | PDS (routed by path on PDS's own gateway)
    handler: Handler
    method: str | None = None  # ROA/PDS: the one method; RPC: GET or POST
    path: str | re.Pattern[str] | None = None  # ROA/PDS; a pattern matches the path still encoded
    kind: str = "other"  # one of OP_KINDS
    #: status polls and cancels: the task the request names, as ``(service, *ids)``
    task_key: TaskKey | None = None
    anonymous: bool = False  # may be called unsigned (STS AssumeRoleWithOIDC)
    #: cancels of several tasks in one request: the tasks it names (counted each; the reply's
    #: ``accepted_tasks`` says which it took effect on)
    task_keys: TaskKeys | None = None


@dataclass(frozen=True)
class Service:
    """One emulated service: its operations and how its tasks are named, scripted and answered."""

    name: str
    product: str  # the product code in error ``Recommend`` links
    ops: tuple[Op, ...]
    id_names: tuple[str, ...] = ()  # a task's ids, in key order, as the ``add_*`` method names them
    adder: str = ""  # the Emulator method that scripts a task (``add_task(service, ...)`` calls it)
    statuses_arg: str = "statuses"  # that method's name for the statuses
    running: frozenset[str] = frozenset()  # upper-case statuses that do not end a task
    start_lifecycle: tuple[str, ...] = ()  # default statuses of the tasks its start operations create
    gateway: str = "pop"  # "pop" (ACS3, RPC V2, ROA acs) or "pds" (PDS's own: acs v1 or Bearer)
    path_prefix: str | None = None  # routed by path under this prefix instead of by x-acs-action
    request_id_header: str = "x-acs-request-id"
    id_aliases: Mapping[str, str] = field(default_factory=dict)  # other names of ids (the hook's)
    ignored_ids: frozenset[str] = frozenset()  # ids that do not name the task (catalog, domain...)
    error_reply: ErrorReply | None = None  # gateway errors; default: the POP shape
    server_error_reply: ErrorReply | None = None  # InternalError faults; default: ``error_reply``

    def error(self, status: int, code: str, message: str, host: str, rid: str) -> Reply:
        """A gateway-level error (auth, throttling, 5xx) in this service's error shape."""
        if self.error_reply is not None:
            return self.error_reply(status, code, message, host, rid)
        return pop_error(status, code, message, host, self.product, rid)

    def server_error(self, status: int, code: str, message: str, host: str, rid: str) -> Reply:
        if self.server_error_reply is not None:
            return self.server_error_reply(status, code, message, host, rid)
        return self.error(status, code, message, host, rid)

    def ops_of_kind(self, kind: str) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if op.kind == kind)


# ------------------------------------------------------------------------------------- the store


class Store:
    """The scripted tasks and the clock: what the service modules script, poll and change.

    The :class:`~airflow_aliyun_tasks.testing.Emulator` is one; each service module adds its
    ``add_*`` method as a mixin on this class. ``_reset_state`` is cooperative: a mixin that
    keeps state of its own extends it.
    """

    account_id: str
    clock_offset: float
    start_lifecycles: dict[str, tuple[str, ...]]
    _lock: threading.RLock
    _tasks: dict[tuple[str, ...], Task]

    def now(self) -> float:
        """The emulator's clock: wall time plus :attr:`clock_offset`."""
        return time.time() + self.clock_offset

    def _reset_state(self) -> None:
        self._tasks = {}

    def _put_task(
        self, service: Service, ids: dict[str, str], statuses: Sequence[str], options: dict[str, Any]
    ) -> Task:
        if isinstance(statuses, str) or not statuses:
            raise ValueError("statuses must be a non-empty sequence of status strings")
        task = Task(
            service=service.name,
            ids=ids,
            statuses=tuple(str(s) for s in statuses),
            options=options,
            created_at=self.now(),
            running=service.running,
        )
        with self._lock:
            self._tasks[(service.name, *ids.values())] = task
        return task

    def _task(self, key: tuple[str, ...] | None) -> Task | None:
        if key is None:
            return None
        with self._lock:
            return self._tasks.get(key)

    def _poll(self, key: tuple[str, ...] | None, advance: bool) -> tuple[Task, int] | None:
        """The task ``key`` names and the index of the status to report now (``None``: no such task)."""
        with self._lock:
            task = self._task(key)
            if task is None:
                return None
            return task, task.step(advance=advance, now=self.now())
