"""Declarative specs of the four status APIs, and the parsers that turn their bodies into
:class:`~airflow_aliyun_tasks.status.TaskStatus`.

A spec says, as data, how to call one API: product version, style, method, path template,
where each id goes, which signer, and the default endpoints. State mapping tables are data
too. Adding a fifth API is one more spec and parser here plus a thin sensor subclass.

Facts and quirks behind the tables (status vocabularies that are only partly documented,
``"null"`` strings, string booleans) are noted next to each parser.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_aliyun_tasks.errors import BadResponseError, ConfigurationError
from airflow_aliyun_tasks.signing import JSON_CONTENT_TYPE
from airflow_aliyun_tasks.status import (
    CANCELLED,
    FAILED,
    PARTIALLY_SUCCEEDED,
    RUNNING,
    SUCCEEDED,
    UNKNOWN,
    TaskStatus,
)

MAX_ID_LENGTH = 128
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
_INT_RE = re.compile(r"^[0-9]{1,19}$")


def validate_id(name: str, value: object, *, integer: bool = False) -> str:
    """Return ``value`` as a safe id string or raise :class:`ConfigurationError` naming ``name``.

    Ids are put into URL paths, queries and bodies; only ``A-Z a-z 0-9 _ . : -`` are allowed
    (no ``/``, ``..``, ``%``, whitespace, control characters or non-ASCII), so nothing can
    escape the path it is placed in.
    """
    if value is None:
        raise ConfigurationError(name, "is required")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigurationError(name, f"must be a string, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise ConfigurationError(name, "must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise ConfigurationError(name, f"is longer than {MAX_ID_LENGTH} characters")
    if integer:
        # fullmatch: ``$`` in ``match`` also matches before a trailing newline ("12\n").
        if not _INT_RE.fullmatch(text):
            raise ConfigurationError(name, f"must be an integer, got {text!r}")
        return text
    if ".." in text or not _ID_RE.fullmatch(text):
        raise ConfigurationError(
            name, f"{text!r} contains characters not allowed in an id (allowed: letters, digits, _ . : -)"
        )
    return text


@dataclass(frozen=True)
class IdParam:
    """One id of a status call: its keyword name, its name on the wire, and where it goes."""

    name: str
    wire: str
    location: str  # "query", "path", "body", or "host" (part of the endpoint, not the request)
    required: bool = True
    integer: bool = False


@dataclass(frozen=True)
class ApiRequest:
    """What to send, before endpoint, signing and transport (those are the client's)."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    content_type: str | None


Parser = Callable[[Mapping[str, Any], dict[str, str], str | None], TaskStatus]


@dataclass(frozen=True)
class ServiceSpec:
    """Everything the package needs to call one status API."""

    name: str
    title: str
    action: str
    version: str
    style: str  # "RPC" or "ROA"
    method: str
    path: str  # template; ``{wire}`` placeholders for path ids
    ids: tuple[IdParam, ...]
    signer: str  # "acs3" or "pds"
    endpoint: str  # public endpoint host template
    vpc_endpoint: str  # VPC endpoint host template
    endpoint_extra: str  # connection extra that overrides the endpoint
    ram_action: str
    parse: Parser

    @property
    def id_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.ids)

    def validate_ids(self, ids: Mapping[str, object]) -> dict[str, str]:
        """Validate the ids of one call; unknown names and missing required ids are errors."""
        unknown = set(ids) - set(self.id_names)
        if unknown:
            raise ConfigurationError(
                sorted(unknown)[0],
                f"is not an id of {self.title} (expected: {', '.join(self.id_names)})",
            )
        out: dict[str, str] = {}
        for p in self.ids:
            value = ids.get(p.name)
            if value is None or value == "":
                if p.required:
                    raise ConfigurationError(p.name, f"is required for {self.title}")
                continue
            out[p.name] = validate_id(p.name, value, integer=p.integer)
        return out

    def build_request(self, ids: Mapping[str, object]) -> ApiRequest:
        """The request for validated ``ids`` (see :meth:`validate_ids`)."""
        clean = self.validate_ids(ids)
        path_values = {p.wire: clean[p.name] for p in self.ids if p.location == "path"}
        query = {p.wire: clean[p.name] for p in self.ids if p.location == "query" and p.name in clean}
        body_obj = {p.wire: clean[p.name] for p in self.ids if p.location == "body" and p.name in clean}
        body = (
            json.dumps(body_obj, ensure_ascii=False, separators=(",", ":")).encode()
            if body_obj or self.method == "POST"
            else b""
        )
        return ApiRequest(
            method=self.method,
            path=self.path.format(**path_values),
            query=query,
            body=body,
            content_type=JSON_CONTENT_TYPE if body else None,
        )


# --------------------------------------------------------------------------- parsing helpers


def _body(body: Any, service: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise BadResponseError(f"{service} response is not a JSON object")
    return body


def _obj(body: Mapping[str, Any], key: str, service: str) -> Mapping[str, Any]:
    value = _body(body, service).get(key)
    if not isinstance(value, Mapping):
        raise BadResponseError(f"{service} response has no {key!r} object")
    return value


def _raw(value: Any) -> Any:
    """The body as kept in ``TaskStatus.raw``: keys starting with ``__`` are dropped at every
    level, because Airflow's serializer reserves ``__classname__``/``__id__`` and would refuse
    the trigger event or XCom. No documented field starts with ``__``."""
    if isinstance(value, Mapping):
        return {str(k): _raw(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_raw(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    """A string field, with the quirks normalized: ``"null"`` and blank become ``None``,
    surrounding whitespace (MMA's trailing newlines) is stripped; numbers become strings."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text.lower() == "null":
        return None
    return text


def _state(table: Mapping[str, str], raw: str | None) -> str:
    if raw is None:
        return UNKNOWN
    return table.get(raw.lower(), UNKNOWN)


def _fraction(done: Any, total: Any) -> float | None:
    if isinstance(done, bool) or isinstance(total, bool):
        return None
    if not isinstance(done, int | float) or not isinstance(total, int | float) or total <= 0:
        return None
    try:
        fraction = done / total
    except OverflowError:  # huge JSON integers
        return None
    if math.isnan(fraction):  # inf/inf, NaN inputs
        return None
    return float(min(max(fraction, 0.0), 1.0))


# --------------------------------------------------------------------------- DLF

#: DLF ``TaskStatus.Status``. Only ``Running``, ``Success`` and ``KILLED`` are documented; the
#: official metastore client polls while ``Running``. Compared case-insensitively.
DLF_STATES: dict[str, str] = {
    "running": RUNNING,
    "notstarted": RUNNING,
    "not_started": RUNNING,
    "pending": RUNNING,
    "executing": RUNNING,
    "success": SUCCEEDED,
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "fail": FAILED,
    "failure": FAILED,
    "error": FAILED,
    "killed": CANCELLED,
    "cancelled": CANCELLED,
    "canceled": CANCELLED,
}


def parse_dlf(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    ts = _obj(body, "TaskStatus", "DLF GetAsyncTaskStatus")
    raw_status = _text(ts.get("Status"))
    state = _state(DLF_STATES, raw_status)
    # ``Code`` is the call's code ("OK" when the call itself succeeded), not the task's.
    code = _text(body.get("Code"))
    return TaskStatus(
        service="dlf",
        ids=ids,
        state=state,
        raw_status=raw_status,
        message=_text(ts.get("Message")),
        error_code=code if state == FAILED and code and code.upper() != "OK" else None,
        request_id=_text(body.get("RequestId")) or request_id,
        raw=_raw(body),
    )


# --------------------------------------------------------------------------- DataWorks

#: DataWorks 2024-05-18 ``JobStatus.Status``: ``Success``, ``Fail``, ``Cancel``, ``Running``.
#: ``Completed`` is a *string* ``"True"``/``"False"`` and is not trusted (the documentation's
#: own example pairs ``Completed: "False"`` with ``Status: "Success"``).
DATAWORKS_STATES: dict[str, str] = {
    "running": RUNNING,
    "success": SUCCEEDED,
    "fail": FAILED,
    "failed": FAILED,
    "cancel": CANCELLED,
    "cancelled": CANCELLED,
}


def parse_dataworks(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    js = _obj(body, "JobStatus", "DataWorks GetJobStatus")
    raw_status = _text(js.get("Status"))
    state = _state(DATAWORKS_STATES, raw_status)
    error = _text(js.get("Error"))
    return TaskStatus(
        service="dataworks",
        ids=ids,
        state=state,
        raw_status=raw_status,
        message=error if state != SUCCEEDED else None,
        request_id=_text(body.get("RequestId")) or request_id,
        raw=_raw(body),
    )


# --------------------------------------------------------------------------- MMA

#: MaxCompute MMA ``data.status``. Only ``DONE`` is documented; the rest follows the same API
#: family (``DOING``/``DONE``/``FAILED``) and open-source MMA (``INIT``). ``running: true``
#: keeps an unrecognized status running.
MMA_STATES: dict[str, str] = {
    "init": RUNNING,
    "doing": RUNNING,
    "running": RUNNING,
    "pending": RUNNING,
    "done": SUCCEEDED,
    "success": SUCCEEDED,
    "succeeded": SUCCEEDED,
    "failed": FAILED,
    "fail": FAILED,
    "stopped": CANCELLED,
    "stop": CANCELLED,
    "canceled": CANCELLED,
    "cancelled": CANCELLED,
}


def parse_mma(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    data = _obj(body, "data", "MaxCompute GetMmsAsyncTask")
    raw_status = _text(data.get("status"))
    state = _state(MMA_STATES, raw_status)
    if state == UNKNOWN and raw_status and "fail" in raw_status.lower():
        state = FAILED
    if state == UNKNOWN and data.get("running") is True:
        state = RUNNING
    # ``progress`` is an integer percentage in the documentation's example.
    progress = _fraction(data.get("progress"), 100)
    error = _text(data.get("errorMsg"))
    return TaskStatus(
        service="mma",
        ids=ids,
        state=state,
        raw_status=raw_status,
        progress=progress,
        message=error or (_text(data.get("result")) if state != SUCCEEDED else None),
        request_id=_text(body.get("requestId")) or _text(body.get("RequestId")) or request_id,
        raw=_raw(body),
    )


# --------------------------------------------------------------------------- PDS

#: PDS ``state`` (``status`` is its deprecated twin, read when ``state`` is absent):
#: ``Running``, ``Succeed``, ``PartialSucceed``, ``Failed``. No cancelled state is documented.
PDS_STATES: dict[str, str] = {
    "running": RUNNING,
    "succeed": SUCCEEDED,
    "succeeded": SUCCEEDED,
    "success": SUCCEEDED,
    "partialsucceed": PARTIALLY_SUCCEEDED,
    "failed": FAILED,
    "fail": FAILED,
}


def parse_pds(body: Mapping[str, Any], ids: dict[str, str], request_id: str | None) -> TaskStatus:
    body = _body(body, "PDS GetAsyncTask")
    if not isinstance(body.get("state"), str) and not isinstance(body.get("status"), str):
        raise BadResponseError("PDS GetAsyncTask response has neither 'state' nor 'status'")
    state_value, status_value = body.get("state"), body.get("status")
    raw_status = (_text(state_value) if isinstance(state_value, str) else None) or (
        _text(status_value) if isinstance(status_value, str) else None
    )
    state = _state(PDS_STATES, raw_status)
    return TaskStatus(
        service="pds",
        ids=ids,
        state=state,
        raw_status=raw_status,
        progress=_fraction(body.get("consumed_process"), body.get("total_process")),
        message=_text(body.get("error_message")) or _text(body.get("message")),
        # ``err_code`` is a deprecated integer; 0 means no error.
        error_code=_text(body.get("error_code"))
        or (_text(body.get("err_code")) if body.get("err_code") else None),
        request_id=request_id,
        raw=_raw(body),
    )


# --------------------------------------------------------------------------- the specs

DLF = ServiceSpec(
    name="dlf",
    title="DLF GetAsyncTaskStatus",
    action="GetAsyncTaskStatus",
    version="2020-07-10",
    style="ROA",
    method="GET",
    path="/api/metastore/catalogs/tasks",
    ids=(
        IdParam("async_task_id", "TaskId", "query"),
        IdParam("catalog_id", "CatalogId", "query", required=False),
    ),
    signer="acs3",
    endpoint="dlf.{region_id}.aliyuncs.com",
    vpc_endpoint="dlf-vpc.{region_id}.aliyuncs.com",
    endpoint_extra="dlf_endpoint",
    ram_action="dlf:GetAsyncTaskStatus",
    parse=parse_dlf,
)

DATAWORKS = ServiceSpec(
    name="dataworks",
    title="DataWorks GetJobStatus",
    action="GetJobStatus",
    version="2024-05-18",
    style="RPC",
    method="GET",
    path="/",
    ids=(IdParam("job_id", "JobId", "query"),),
    signer="acs3",
    endpoint="dataworks.{region_id}.aliyuncs.com",
    vpc_endpoint="dataworks-vpc.{region_id}.aliyuncs.com",
    endpoint_extra="dataworks_endpoint",
    ram_action="dataworks:GetJobStatus",
    parse=parse_dataworks,
)

MMA = ServiceSpec(
    name="mma",
    title="MaxCompute GetMmsAsyncTask",
    action="GetMmsAsyncTask",
    version="2022-01-04",
    style="ROA",
    method="GET",
    path="/api/v1/mms/datasources/{sourceId}/asyncTasks/{asyncTaskId}",
    ids=(
        IdParam("source_id", "sourceId", "path", integer=True),
        IdParam("async_task_id", "asyncTaskId", "path", integer=True),
    ),
    signer="acs3",
    endpoint="maxcompute.{region_id}.aliyuncs.com",
    vpc_endpoint="maxcompute-vpc.{region_id}.aliyuncs.com",
    endpoint_extra="mma_endpoint",
    ram_action="odps:GetMmsAsyncTask",
    parse=parse_mma,
)

PDS = ServiceSpec(
    name="pds",
    title="PDS GetAsyncTask",
    action="GetAsyncTask",
    version="2022-03-01",
    style="ROA",
    method="POST",
    path="/v2/async_task/get",
    ids=(
        IdParam("async_task_id", "async_task_id", "body"),
        IdParam("domain_id", "domain_id", "host", required=False),
    ),
    signer="pds",
    endpoint="{domain_id}.api.aliyunpds.com",
    vpc_endpoint="{domain_id}.api-vpc.aliyunpds.com",
    endpoint_extra="pds_endpoint",
    ram_action="pds:GetAsyncTask",
    parse=parse_pds,
)

SERVICES: dict[str, ServiceSpec] = {s.name: s for s in (DLF, DATAWORKS, MMA, PDS)}


def get_service(name: str) -> ServiceSpec:
    """The spec of ``name`` (``dlf``, ``dataworks``, ``mma`` or ``pds``)."""
    try:
        return SERVICES[name]
    except (KeyError, TypeError):
        raise ConfigurationError(
            "service", f"unknown service {name!r} (expected one of: {', '.join(SERVICES)})"
        ) from None
