"""The shape of a service description: :class:`ServiceSpec` and its parts.

Pure data and pure functions: no Airflow, no HTTP. Everything else in the package (the
connection's extras and form fields, the hook's endpoints, the trigger's id keywords, the console
links, the docs tables) is derived from these descriptions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote

from airflow_aliyun_tasks.errors import ConfigurationError
from airflow_aliyun_tasks.signing import JSON_CONTENT_TYPE
from airflow_aliyun_tasks.status import TaskStatus

MAX_ID_LENGTH = 128
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
_INT_RE = re.compile(r"^[0-9]{1,19}$")
#: One DNS label: what an id placed in a host name (PDS ``domain_id``) must be.
HOST_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

#: Where an id goes: the query, the path, the JSON body, or the endpoint's host name.
IdLocation = Literal["query", "path", "body", "host"]
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


@dataclass(frozen=True)
class IdParam:
    """One id of a status call: its keyword name, its name on the wire, and where it goes.

    ``location`` is ``"query"``, ``"path"``, ``"body"``, or ``"host"`` (part of the endpoint's
    host name, as PDS's ``domain_id``: not sent in the request itself).
    ``connection_default`` names the connection extra that supplies the id when the caller
    gives none (PDS ``domain_id`` from ``pds_domain_id``); such an extra is validated as this
    id is, and accepted by the connection because it is named here.
    """

    name: str
    wire: str
    location: IdLocation
    required: bool = True
    integer: bool = False
    connection_default: str | None = None
    label: str = ""  # the connection form's label of ``connection_default``
    example: str = ""  # an example value, shown as the form's placeholder


@dataclass(frozen=True)
class ApiRequest:
    """What to send, before endpoint, signing and transport (those are the client's)."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    content_type: str | None


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
    ``idempotency_param`` is the request parameter (a client token) that makes a repeated start idempotent, ``None``
    when the API has none; ``idempotency_location`` says where it goes (``"body"``: a key of
    the JSON body, ``"query"``). ``may_finish_at_once``: the operation may do its work before
    answering and then return no task id (PDS file operations on a single file). ``note`` says
    where the facts come from.
    """

    action: str
    method: str
    path: str
    task_ids: Mapping[str, str]
    idempotency_param: str | None = None
    idempotency_location: str = "body"
    may_finish_at_once: bool = False
    note: str = ""

    def request_values(
        self, path: str, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, str]:
        """The parameters of a request to this operation that ``"request:<name>"`` ids may name:
        the path parameters (``path`` matched against the operation's template), then the query,
        then the top-level keys of a JSON object body."""
        return request_values(self.path, path, query, body)


def request_values(
    template: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None
) -> dict[str, str]:
    """See :meth:`StartOperation.request_values`; ``template`` is a path with ``{name}`` parts."""
    out: dict[str, str] = {}
    if isinstance(body, Mapping):
        out.update(
            {str(k): str(v) for k, v in body.items() if isinstance(v, str | int) and not isinstance(v, bool)}
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


def lookup(body: Any, dotted: str) -> Any:
    """The value at a dotted path (``AsyncJob.Id``, ``data.asyncTaskId``) of a JSON body, or
    ``None``."""
    value = body
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def ids_from_response(
    task_ids: Mapping[str, str], response: Any, request: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The task's ids per ``task_ids`` (see :class:`StartOperation`): from ``response`` (dotted
    paths) or from ``request`` (``"request:<name>"``, as :func:`request_values` gives them).
    Returns the ids found and the names of those not found."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name, where in task_ids.items():
        if where.startswith("request:"):
            value: Any = request.get(where.removeprefix("request:"))
        else:
            value = lookup(response, where)
        if value is None or isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
            missing.append(name)
        else:
            found[name] = str(value)
    return found, missing


@dataclass(frozen=True)
class CancelOperation:
    """The operation that cancels a running task: ``path`` is a template of the status call's
    wire names, and the ids go where the status call puts them. ``note`` says where the facts
    come from."""

    action: str
    method: str
    path: str
    note: str = ""


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
        """The status request for ``ids`` (validated here). ``region_id`` fills ``extra_query``."""
        clean = self.validate_ids(ids)
        path_values = {p.wire: clean[p.name] for p in self.ids if p.location == "path"}
        query = {p.wire: clean[p.name] for p in self.ids if p.location == "query" and p.name in clean}
        for key, template in self.extra_query.items():
            if "{region_id}" in template and not region_id:
                raise ConfigurationError("region_id", f"is required for {self.title}")
            query[key] = template.format(region_id=region_id)
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

    def build_cancel_request(self, ids: Mapping[str, object], region_id: str | None = None) -> ApiRequest:
        """The request of :attr:`cancel` for ``ids`` (validated here); the ids go where the status
        call puts them, the path is the cancel operation's."""
        if self.cancel is None:
            raise ConfigurationError("service", f"{self.label} has no operation that cancels a task")
        status = self.build_request(ids, region_id)
        clean = self.validate_ids(ids)
        path_values = {p.wire: clean[p.name] for p in self.ids if p.location == "path"}
        body = status.body if self.cancel.method in ("POST", "PUT", "PATCH") else b""
        return ApiRequest(
            method=self.cancel.method,
            path=self.cancel.path.format(**path_values),
            query=status.query,
            body=body,
            content_type=JSON_CONTENT_TYPE if body else None,
        )

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
