"""The shape of a service description: :class:`ServiceSpec` and its parts.

Pure data and pure functions: no Airflow, no HTTP. Everything else in the package (the
connection's extras and form fields, the hook's endpoints, the trigger's id keywords, the console
links, the docs tables) is derived from these descriptions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode

from airflow_aliyun_tasks.errors import ConfigurationError
from airflow_aliyun_tasks.signing import JSON_CONTENT_TYPE
from airflow_aliyun_tasks.status import TaskStatus

MAX_ID_LENGTH = 128
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
_INT_RE = re.compile(r"^[0-9]{1,19}$")
#: One DNS label: what an id placed in a host name (PDS ``domain_id``) must be.
HOST_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

#: Where an id goes: the query, the path, the body, a request header, or the endpoint's host name.
IdLocation = Literal["query", "path", "body", "header", "host"]
#: How a request body is encoded: JSON (``application/json``), a form as tea-openapi sends
#: ``formData`` bodies (``application/x-www-form-urlencoded``), or an opaque payload
#: (``application/octet-stream``). See :func:`encode_body`.
BodyEncoding = Literal["json", "form", "raw"]
#: What a start operation answers: a JSON body, or nothing (an empty 2xx, as Function
#: Compute's asynchronous ``InvokeFunction`` answers 202).
ResponseBody = Literal["json", "none"]
#: Where a start operation takes its idempotency key (a client token, or a caller-chosen id).
IdempotencyLocation = Literal["body", "query", "header"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
RAW_CONTENT_TYPE = "application/octet-stream"
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-]*$")
#: Headers the client sets itself (signed or not): an operation may not set them.
_RESERVED_HEADERS = frozenset(
    {"host", "authorization", "content-type", "content-length", "accept", "user-agent", "date", "connection"}
)
#: The API style: RPC (parameters in the query, ``x-acs-action``) or ROA (REST paths).
ApiStyle = Literal["RPC", "ROA"]
#: How requests are signed: ACS3-HMAC-SHA256 (the OpenAPI services, STS) or PDS's scheme.
SignerKind = Literal["acs3", "pds"]


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


def check_header_name(name: object, field_name: str = "headers") -> str:
    """``name`` as a request header name (lower-cased) an operation may send, or raise
    :class:`ConfigurationError`. Not ``x-acs-*`` (ACS3 signs those: they are the client's) and
    none of the headers the client sets itself (``host``, ``content-type``, ``authorization``...)."""
    if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
        raise ConfigurationError(field_name, f"{name!r} is not a header name (letters, digits and -)")
    lower = name.lower()
    if lower.startswith("x-acs-") or lower in _RESERVED_HEADERS:
        raise ConfigurationError(field_name, f"{name!r} is a header the client sets itself")
    return lower


def check_header_value(name: str, value: object, field_name: str = "headers") -> str:
    """A header's value as text: printable ASCII, no line breaks."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    if not isinstance(value, str | int):
        raise ConfigurationError(field_name, f"{name}: a header value must be a string or a number")
    text = str(value)
    if any(ord(c) < 32 or ord(c) > 126 for c in text):
        raise ConfigurationError(field_name, f"{name}: a header value must be printable ASCII on one line")
    return text


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def form_value(value: Any) -> str:
    """One value of a form body or a query as tea-openapi writes it: text as it is, numbers as
    their digits, booleans ``true``/``false``, lists and objects as compact JSON (the SDKs'
    ``'json'`` array style, ``Ids=[1234]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple | Mapping):
        return _compact(list(value) if isinstance(value, tuple) else value)
    raise ConfigurationError(
        "body", f"a form value must be text, a number, a list or an object, not {type(value).__name__}"
    )


def encode_body(body: Any, encoding: BodyEncoding) -> tuple[bytes, str | None]:
    """The bytes and the content type of ``body`` sent with ``encoding``; ``(b"", None)`` for
    no body (``None``).

    - ``"json"``: compact JSON, UTF-8 (``application/json; charset=utf-8``); bytes are taken as
      already encoded.
    - ``"form"``: a mapping as tea-openapi encodes a ``formData`` body: keys sorted,
      ``urllib.parse.urlencode`` (a space is ``+``), ``None`` values left out, each value as
      :func:`form_value` writes it; a string or bytes is taken as already encoded.
      ``application/x-www-form-urlencoded``; an empty form is no body.
    - ``"raw"``: an opaque payload: bytes as they are, text as UTF-8, anything else as compact
      JSON (``application/octet-stream``).

    ACS3 hashes exactly these bytes (``x-acs-content-sha256``)."""
    if body is None:
        return b"", None
    if encoding == "json":
        if isinstance(body, bytes | bytearray):  # already encoded
            return bytes(body), JSON_CONTENT_TYPE
        return _compact(body).encode(), JSON_CONTENT_TYPE
    if encoding == "raw":
        if isinstance(body, bytes | bytearray):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = _compact(body).encode()
        return data, RAW_CONTENT_TYPE
    if encoding != "form":
        raise ConfigurationError("body_encoding", f"must be json, form or raw, got {encoding!r}")
    if isinstance(body, bytes | bytearray | str):
        data = body.encode() if isinstance(body, str) else bytes(body)
    elif isinstance(body, Mapping):
        pairs = [
            (str(k), form_value(v))
            for k, v in sorted(body.items(), key=lambda kv: str(kv[0]))
            if v is not None
        ]
        data = urlencode(pairs).encode()
    else:
        raise ConfigurationError("body", f"a form body must be a mapping, not {type(body).__name__}")
    return (data, FORM_CONTENT_TYPE) if data else (b"", None)


def decode_form(body: Any) -> dict[str, str]:
    """The fields of a form body given as text or bytes (``a=1&b=2``); ``{}`` otherwise."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", "replace")
    if not isinstance(body, str):
        return {}
    return dict(parse_qsl(body, keep_blank_values=True))


@dataclass(frozen=True)
class IdParam:
    """One id of a status call: its keyword name, its name on the wire, and where it goes.

    ``location`` is ``"query"``, ``"path"``, ``"body"`` (encoded as the operation's body is:
    JSON, or a form), ``"header"`` (a request header named ``wire``, not signed: Flink's
    ``workspace``), or ``"host"`` (part of the endpoint's host name, as PDS's ``domain_id``: not
    sent in the request itself).
    ``connection_default`` names the connection extra that supplies the id when the caller
    gives none (PDS ``domain_id`` from ``pds_domain_id``); such an extra is validated as this
    id is, and accepted by the connection because it is named here.
    ``integer``: the id is a number; in a JSON body, or in a list, it is sent as a JSON number.
    ``as_list``: the id is sent as a one-element list (a JSON array: ``Ids=[1234]`` in a form or
    a query), for an operation that takes several ids at once (DataWorks
    ``StopWorkflowInstances``).
    """

    name: str
    wire: str
    location: IdLocation
    required: bool = True
    integer: bool = False
    connection_default: str | None = None
    label: str = ""  # the connection form's label of ``connection_default``
    example: str = ""  # an example value, shown as the form's placeholder
    as_list: bool = False

    def __post_init__(self) -> None:
        if self.location == "header":
            check_header_name(self.wire, self.name)

    def value(self, text: str) -> Any:
        """The id as it goes into a body (JSON or form): a number when ``integer``, a list when
        ``as_list``."""
        value: Any = int(text) if self.integer else text
        return [value] if self.as_list else value

    def text(self, text: str) -> str:
        """The id as it goes into a query, a path or a header."""
        return _compact(self.value(text)) if self.as_list else text


@dataclass(frozen=True)
class ApiRequest:
    """What to send, before endpoint, signing and transport (those are the client's).
    ``headers``: request headers of the operation itself (ids in headers), not signed."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict)


def _place(
    params: Sequence[IdParam], ids: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str], dict[str, Any], dict[str, str]]:
    """Where each of ``ids`` (validated) goes: path values, query, body and header fields."""
    path: dict[str, str] = {}
    query: dict[str, str] = {}
    body: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for p in params:
        if p.name not in ids:
            continue
        value = ids[p.name]
        if p.location == "path":
            path[p.wire] = p.text(value)
        elif p.location == "query":
            query[p.wire] = p.text(value)
        elif p.location == "body":
            body[p.wire] = p.value(value)
        elif p.location == "header":
            headers[p.wire.lower()] = p.text(value)
    return path, query, body, headers


@dataclass(frozen=True)
class ConsoleLink:
    """The console page a task's extra link opens. ``url`` is a template with ``{region_id}``
    (and any id name of the service); ``class_name`` is the link class's name in
    :mod:`airflow_aliyun_tasks.links` (its import path is stored in serialized DAGs: never rename).
    """

    class_name: str
    title: str
    url: str
    note: str = ""


@dataclass(frozen=True)
class StartOperation:
    """An operation that starts a task of this service, as its official SDK describes it.

    ``task_ids`` maps each id of the status call to where the start response holds it (a dotted
    path into the JSON body, such as ``AsyncJob.Id``), or to ``"request:<name>"`` when the id is
    one the caller passed in (a path parameter such as MMA's ``sourceId``).
    A path with ``*`` (``Result.WorkflowInstanceIds.*``) names every element of a list: the
    operation starts several tasks, one per element.
    ``idempotency_param`` is the request parameter that makes a repeated start idempotent,
    ``None`` when the API has none: a client token, or an id the caller chooses for the task
    (Function Compute's ``x-fc-async-task-id`` header). ``idempotency_location`` says where it
    goes: ``"body"`` (a key of the body), ``"query"`` or ``"header"``; ``idempotency_format``
    makes the derived token fit the API's rules for the value (``"airflow-{token}"``: an id that
    must start with a letter).
    ``headers`` are constant request headers the operation needs (``x-fc-invocation-type:
    Async``); ``body_encoding`` overrides the service's (:attr:`ServiceSpec.body_encoding`);
    ``response_body="none"``: the operation answers with an empty 2xx body, and the task's ids
    come from the request. ``follow_up``: the operation starts no task itself but an operation
    whose result a second call reads (see :class:`FollowUp`); ``task_ids`` are then unused.
    ``may_finish_at_once``: the operation may do its work before answering and then return no
    task id (PDS file operations on a single file). ``duplicate_status``: the HTTP status with
    which the API refuses a start whose idempotency key, a caller-chosen task id, names a task
    that exists already (Function Compute's task deduplication answers 409): the start that sent
    the key took effect earlier (a lost answer, retried), so the operator waits on that task, its
    ids from the request, instead of failing. ``note`` says where the facts come from.
    """

    action: str
    method: str
    path: str
    task_ids: Mapping[str, str]
    idempotency_param: str | None = None
    idempotency_location: IdempotencyLocation = "body"
    idempotency_format: str = "{token}"
    may_finish_at_once: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    body_encoding: BodyEncoding | None = None
    response_body: ResponseBody = "json"
    follow_up: FollowUp | None = None
    duplicate_status: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.duplicate_status is not None and self.idempotency_param is None:
            raise ConfigurationError(self.action, "duplicate_status needs an idempotency_param")
        for name, value in self.headers.items():
            check_header_value(check_header_name(name, self.action), value, self.action)
        if "{token}" not in self.idempotency_format:
            raise ConfigurationError(self.action, "idempotency_format must contain {token}")

    def request_values(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """The parameters of a request to this operation that ``"request:<name>"`` ids may name:
        the path parameters (``path`` matched against the operation's template), then the query,
        then the top-level keys of the body (a JSON object, or a form), then the request headers
        (by lower-case name)."""
        return request_values(self.path, path, query, body, headers)

    def several(self) -> bool:
        """Whether the operation may start several tasks (an id path with ``*``)."""
        source = self.follow_up.task_ids if self.follow_up is not None else self.task_ids
        return any(is_list_path(where) for where in source.values())


@dataclass(frozen=True)
class FollowUp:
    """The second call of a two-phase start: the start operation answers with the id of an
    operation (DataWorks ``CreateWorkflowInstances`` -> ``OperationId``), and this call
    (``GetCreateWorkflowInstancesResult``) says when the tasks exist and which they are.

    :param params: the follow-up's request parameters (wire names) and the dotted path of each
        in the start operation's answer; they go where ``location`` says.
    :param status: dotted path of the creation's status in the follow-up's answer; a value in
        ``pending`` (or any value not listed) polls again, one in ``done`` reads the task ids,
        one in ``failed`` fails the start with the text at ``message``.
    :param task_ids: id name -> dotted path in the follow-up's answer (``*`` for every element
        of a list: several tasks).
    :param poll_interval / timeout: seconds between the follow-up's polls and at most in all
        (the operator polls it on the worker).
    """

    action: str
    method: str
    path: str
    params: Mapping[str, str]
    status: str
    pending: tuple[str, ...]
    done: tuple[str, ...]
    failed: tuple[str, ...]
    task_ids: Mapping[str, str]
    message: str = ""
    location: IdLocation = "query"
    body_encoding: BodyEncoding | None = None
    poll_interval: float = 2.0
    timeout: float = 600.0
    note: str = ""

    def values(self, response: Any) -> tuple[dict[str, str], list[str]]:
        """The follow-up's parameters from the start's ``response``, and the names missing."""
        return ids_from_response(self.params, response, {})

    def build_request(self, values: Mapping[str, str], encoding: BodyEncoding) -> ApiRequest:
        """The follow-up's request for the recorded ``values`` (wire name -> value)."""
        params = [IdParam(wire, wire, self.location) for wire in self.params]
        clean = {wire: validate_id(wire, values.get(wire)) for wire in self.params}
        return _build(self.method, self.path, params, clean, self.body_encoding or encoding)

    def outcome(self, response: Any) -> tuple[str, str | None]:
        """``("done" | "failed" | "pending", the status value)`` of a follow-up answer."""
        raw = lookup(response, self.status)
        text = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else None
        if text in self.done:
            return "done", text
        if text in self.failed:
            return "failed", text
        return "pending", text


def is_list_path(dotted: str) -> bool:
    """Whether a response path names every element of a list (a ``*`` part)."""
    return "*" in _parts(dotted)


def request_values(
    template: str,
    path: str,
    query: Mapping[str, Any] | None = None,
    body: Any = None,
    headers: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """See :meth:`StartOperation.request_values`; ``template`` is a path with ``{name}`` parts."""
    out: dict[str, str] = {}
    out.update(
        {
            str(k).lower(): str(v)
            for k, v in (headers or {}).items()
            if isinstance(v, str | int) and not isinstance(v, bool)
        }
    )
    fields = body if isinstance(body, Mapping) else decode_form(body)
    out.update(
        {str(k): str(v) for k, v in fields.items() if isinstance(v, str | int) and not isinstance(v, bool)}
    )
    out.update({str(k): str(v) for k, v in (query or {}).items() if isinstance(v, str | int)})
    pattern = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", template)
    )
    match = re.fullmatch(pattern + "/?", path)
    if match:
        out.update({k: unquote(v) for k, v in match.groupdict().items()})
    return out


def _parts(dotted: str) -> list[str]:
    """``Result.Ids[0]`` -> ``["Result", "Ids", "0"]``; ``a[*]`` -> ``["a", "*"]``."""
    return [p for p in re.sub(r"\[(\*|[0-9]+)\]", r".\1", dotted).split(".") if p != ""]


def _walk(value: Any, parts: list[str]) -> Any:
    for i, part in enumerate(parts):
        if isinstance(value, Mapping):
            if part not in value:
                return None
            value = value[part]
        elif isinstance(value, list):
            if part == "*":
                rest = parts[i + 1 :]
                found = [_walk(item, rest) for item in value]
                return [v for v in found if v is not None]
            if not part.isdigit() or int(part) >= len(value):
                return None
            value = value[int(part)]
        else:
            return None
    return value


def lookup(body: Any, dotted: str) -> Any:
    """The value at a dotted path (``AsyncJob.Id``, ``data.asyncTaskId``) of a JSON body, or
    ``None``. A number walks a list by index (``Result.WorkflowInstanceIds.0``, also written
    ``Result.WorkflowInstanceIds[0]``); ``*`` (``[*]``) walks every element and gives the list of
    the values found."""
    return _walk(body, _parts(dotted))


def ids_from_response(
    task_ids: Mapping[str, str],
    response: Any,
    request: Mapping[str, str],
    optional: Collection[str] = (),
) -> tuple[dict[str, str], list[str]]:
    """The task's ids per ``task_ids`` (see :class:`StartOperation`): from ``response`` (dotted
    paths) or from ``request`` (``"request:<name>"``, as :func:`request_values` gives them).
    Returns the ids found and the names of those not found. An ``optional`` id (one the status
    call may go without, such as FC's ``qualifier``) that the request does not carry is left
    out, not missing."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name, where in task_ids.items():
        if where.startswith("request:"):
            value: Any = request.get(where.removeprefix("request:"))
        else:
            value = lookup(response, where)
        if value is None or isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
            if not (value is None and where.startswith("request:") and name in optional):
                missing.append(name)
        else:
            found[name] = str(value)
    return found, missing


def tasks_from_response(
    task_ids: Mapping[str, str],
    response: Any,
    request: Mapping[str, str],
    optional: Collection[str] = (),
) -> tuple[list[dict[str, str]], list[str]]:
    """The ids of every task a start created, per ``task_ids``: as :func:`ids_from_response`
    for one task; a path with ``*`` gives one task per element of its list (several such paths
    pair their lists element by element, the other ids are shared). Returns the tasks and the
    names of the ids not found (an empty list, or lists of unequal lengths, is missing)."""
    single = {n: w for n, w in task_ids.items() if not is_list_path(w)}
    found, missing = ids_from_response(single, response, request, optional)
    listed = {n: lookup(response, w) for n, w in task_ids.items() if is_list_path(w)}
    if not listed:
        return ([found] if not missing else []), missing
    lengths = {len(v) if isinstance(v, list) else 0 for v in listed.values()}
    for name, values in listed.items():
        if not isinstance(values, list) or not values or len(lengths) != 1:
            missing.append(name)
            continue
        if any(isinstance(v, bool) or not isinstance(v, str | int) or str(v) == "" for v in values):
            missing.append(name)
    if missing:
        return [], missing
    (count,) = lengths
    return [{**found, **{name: str(values[i]) for name, values in listed.items()}} for i in range(count)], []


#: A cancel operation's judge of an HTTP 200 answer: (response body, the task's ids) -> the
#: reason the cancel did not take effect, or ``None``.
CancelCheck = Callable[[Mapping[str, Any], Mapping[str, str]], "str | None"]


@dataclass(frozen=True)
class CancelOperation:
    """The operation that cancels a running task. ``note`` says where the facts come from.

    By default the ids go where the status call puts them, and ``path`` is a template of the
    status call's wire names (EMR Serverless Spark ``CancelJobRun``). ``params``: the cancel's
    own placement of the ids instead (their names are the service's id names; ``path`` is a
    template of their wire names): DataWorks ``StopWorkflowInstances`` takes the id the status
    call sends as query ``Id`` in a form field ``Ids``, as a JSON list (``as_list``).
    ``body``: constant body fields sent with the ids (Flink ``{"stopStrategy": "NONE"}``);
    ``body_encoding`` overrides the service's. ``check``: judges an HTTP 200 answer that reports
    per-task results (DataWorks ``SuccessInfo.<id>.Success``): the text it returns makes the
    cancel an error. ``response_body="none"``: the cancel answers with an empty 2xx body
    (Function Compute's ``StopAsyncTask``), taken as ``{}``.
    """

    action: str
    method: str
    path: str
    note: str = ""
    params: tuple[IdParam, ...] | None = None
    body: Mapping[str, Any] | None = None
    body_encoding: BodyEncoding | None = None
    check: CancelCheck | None = None
    response_body: ResponseBody = "json"


Parser = Callable[[Mapping[str, Any], dict[str, str], str | None], TaskStatus]


@dataclass(frozen=True)
class ServiceSpec:
    """Everything the package knows about one service.

    :param name: the short name used everywhere (``get_task_status(name, ...)``, trigger kwargs).
    :param label: the service as people name it (``"DLF"``, ``"EMR Serverless Spark"``).
    :param product: the product code of the OpenAPI (``Product`` in Alibaba Cloud's API
        explorer), as the official SDK names it.
    :param endpoint / vpc_endpoint: public and VPC host templates (``{region_id}`` or a
        ``"host"`` id such as ``{domain_id}``).
    :param endpoint_exceptions: public hosts of the regions where the official SDK's endpoint
        map differs from ``endpoint`` and the package follows it. Where the package deliberately
        keeps its template against the SDK, the spec's module says why.
    :param extra_query: constant query parameters the status call sends besides the ids
        (``"{region_id}"`` is replaced by the connection's region).
    :param body_encoding: how the service's request bodies are encoded: ``"json"``, or
        ``"form"`` where its SDK sends ``formData`` bodies (RPC APIs such as DataWorks and
        AnalyticDB). It applies to the ids a call puts in the body, to ``call_api(service=...,
        body=...)`` and to the operations that do not say otherwise.
    """

    name: str
    label: str
    product: str
    action: str
    version: str
    style: ApiStyle
    method: str
    path: str  # template; ``{wire}`` placeholders for path ids
    ids: tuple[IdParam, ...]
    signer: SignerKind
    endpoint: str
    vpc_endpoint: str
    ram_action: str
    parse: Parser
    console: ConsoleLink
    endpoint_exceptions: Mapping[str, str] = field(default_factory=dict)
    extra_query: Mapping[str, str] = field(default_factory=dict)
    start_operations: tuple[StartOperation, ...] = ()
    cancel: CancelOperation | None = None
    docs_page: str = ""
    #: The service's full name where ``label`` abbreviates it ("Data Lake Formation (DLF)").
    long_label: str = ""
    body_encoding: BodyEncoding = "json"

    @property
    def title(self) -> str:
        """How messages name the status call: ``"DLF GetAsyncTaskStatus"``."""
        return f"{self.label} {self.action}"

    @property
    def endpoint_extra(self) -> str:
        """The connection extra that overrides this service's endpoint."""
        return f"{self.name}_endpoint"

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

    def with_defaults(self, ids: Mapping[str, str], defaults: Mapping[str, str | None]) -> dict[str, str]:
        """``ids`` with the connection's defaults (``defaults``: extra name to value) filled in
        where an id that has a ``connection_default`` is missing."""
        out = dict(ids)
        for p in self.ids:
            if p.connection_default and not out.get(p.name):
                value = defaults.get(p.connection_default)
                if value:
                    out[p.name] = value
        return out

    def host_for(self, region_id: str, ids: Mapping[str, str], *, vpc: bool) -> str:
        """The default host for ``region_id`` and the ``"host"`` ids in ``ids``."""
        if not vpc and region_id in self.endpoint_exceptions:
            return self.endpoint_exceptions[region_id]
        values: dict[str, str] = {"region_id": region_id}
        for p in self.ids:
            if p.location != "host":
                continue
            value = ids.get(p.name)
            if not value:
                source = (
                    f" or set the connection extra {p.connection_default}" if p.connection_default else ""
                )
                raise ConfigurationError(p.name, f"{self.title} calls need {p.name}: pass {p.name}{source}")
            if not HOST_LABEL_RE.match(value):
                raise ConfigurationError(p.name, f"{value!r} cannot be part of a host name")
            values[p.name] = value.lower()
        return (self.vpc_endpoint if vpc else self.endpoint).format(**values)

    def build_request(self, ids: Mapping[str, object], region_id: str | None = None) -> ApiRequest:
        """The status request for ``ids`` (validated here). ``region_id`` fills ``extra_query``.
        A POST with a JSON body sends ``{}`` when no id goes in the body."""
        clean = self.validate_ids(ids)
        return _build(
            self.method,
            self.path,
            self.ids,
            clean,
            self.body_encoding,
            extra_query=self._extra_query(region_id),
            empty_json_post=True,
        )

    def _extra_query(self, region_id: str | None) -> dict[str, str]:
        query: dict[str, str] = {}
        for key, template in self.extra_query.items():
            if "{region_id}" in template and not region_id:
                raise ConfigurationError("region_id", f"is required for {self.title}")
            query[key] = template.format(region_id=region_id)
        return query

    def build_cancel_request(self, ids: Mapping[str, object], region_id: str | None = None) -> ApiRequest:
        """The request of :attr:`cancel` for ``ids`` (validated here): the ids where the status
        call puts them (the status call's query, and its body where the cancel's method has
        one), or where the cancel's own ``params`` say; the path is the cancel operation's."""
        cancel = self.cancel
        if cancel is None:
            raise ConfigurationError("service", f"{self.label} has no operation that cancels a task")
        clean = self.validate_ids(ids)
        encoding = cancel.body_encoding or self.body_encoding
        if cancel.params is not None:
            return _build(cancel.method, cancel.path, cancel.params, clean, encoding, constant=cancel.body)
        status = self.build_request(ids, region_id)
        path_values, _, _, _ = _place(self.ids, clean)
        body, content_type = b"", None
        if cancel.method in ("POST", "PUT", "PATCH"):
            body, content_type = status.body, status.content_type
            if cancel.body:
                _, _, body_obj, _ = _place(self.ids, clean)
                body, content_type = encode_body({**cancel.body, **body_obj}, encoding)
        return ApiRequest(
            method=cancel.method,
            path=cancel.path.format(**path_values),
            query=status.query,
            body=body,
            content_type=content_type if body else None,
            headers=status.headers,
        )

    def check_cancel(self, body: Mapping[str, Any], ids: Mapping[str, str]) -> str | None:
        """Why an HTTP 200 answer of :attr:`cancel` says the cancel did not take effect, or
        ``None`` (see :attr:`CancelOperation.check`)."""
        if self.cancel is None or self.cancel.check is None:
            return None
        return self.cancel.check(body, ids)

    def console_url(self, region_id: str, ids: Mapping[str, str]) -> str:
        """The console page of a task (ids URL-quoted)."""
        values = {k: quote(str(v), safe="") for k, v in ids.items()}
        values["region_id"] = quote(region_id, safe="")
        for p in self.ids:
            values.setdefault(p.name, "")
        return self.console.url.format(**values)

    def start_operation(self, action: str) -> StartOperation | None:
        """The known start operation named ``action``, if any."""
        return next((op for op in self.start_operations if op.action == action), None)


def _build(
    method: str,
    path: str,
    params: Sequence[IdParam],
    ids: Mapping[str, str],
    encoding: BodyEncoding,
    *,
    extra_query: Mapping[str, str] | None = None,
    constant: Mapping[str, Any] | None = None,
    empty_json_post: bool = False,
) -> ApiRequest:
    """One request: ``ids`` (validated) placed as ``params`` say, ``constant`` body fields
    beside them, the body encoded with ``encoding``. ``empty_json_post``: a POST with a JSON
    body and nothing in it sends ``{}`` (the status calls always have)."""
    path_values, query, body_obj, headers = _place(params, ids)
    query.update(extra_query or {})
    fields = {**(constant or {}), **body_obj}
    if fields or (empty_json_post and encoding == "json" and method == "POST"):
        body, content_type = encode_body(fields, encoding)
    else:
        body, content_type = b"", None
    return ApiRequest(
        method=method,
        path=path.format(**path_values),
        query=query,
        body=body,
        content_type=content_type if body else None,
        headers=headers,
    )
