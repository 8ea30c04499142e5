"""The Airflow hook: resolves the ``aliyun`` connection and exposes the status call of every
service of the registry.

Airflow glue only. Connections are resolved lazily (never in ``__init__``), with
``aget_connection`` on the async path so nothing blocks the event loop; endpoints come from the
connection (region, VPC, per-service overrides); every request (status, start, cancel, the Test
button) goes through the connection's one
:class:`~airflow_aliyun_tasks.client.AlibabaCloudClient`, built by
:func:`~airflow_aliyun_tasks.client.build_client`, retries and timeout chosen per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseHook

from airflow_aliyun_tasks._compat import aextra_dejson
from airflow_aliyun_tasks.client import AlibabaCloudClient, Call, Response, Signer, build_client
from airflow_aliyun_tasks.config import (
    ConnectionSettings,
    Endpoint,
    parse_connection,
    parse_endpoint,
    sts_host,
)
from airflow_aliyun_tasks.credential_sources import STS_VERSION, build_credential_source
from airflow_aliyun_tasks.errors import AlibabaCloudError, ApiError, ConfigurationError, NotFoundError
from airflow_aliyun_tasks.network import environment_key
from airflow_aliyun_tasks.services import (
    SERVICES,
    ApiRequest,
    BodyEncoding,
    ResponseBody,
    ServiceSpec,
    check_header_name,
    check_header_value,
    encode_body,
    get_service,
    validate_id,
)
from airflow_aliyun_tasks.status import TaskStatus

__all__ = [
    "CONNECTION_SHARE_SECONDS",
    "AlibabaCloudTasksHook",
    "client_for",
    "service_endpoint",
    "sts_endpoint",
]

# Cache: one client (and so one credential source) per connection per process. Keyed on the
# connection id, ConnectionSettings.fingerprint() (every extra the client depends on), the
# proxy/CA environment variables that count and the STS endpoint (which two environment
# variables can move): a changed connection or environment gets a new entry. Never dropped: a process uses few connections,
# and the STS-backed sources keep their temporary credentials in it.
_clients: dict[tuple[Any, ...], AlibabaCloudClient] = {}
_clients_lock = threading.Lock()

#: Seconds during which hooks of one event loop share one lookup of the same connection (see
#: :meth:`AlibabaCloudTasksHook.asettings`). Airflow's own ``[secrets] use_cache`` does the same
#: for longer (15 min by default) when enabled.
CONNECTION_SHARE_SECONDS = 10.0
# Cache: connection lookups in flight or just done, per event loop (weakly: dropped with the
# loop), keyed on the connection id; an entry serves for CONNECTION_SHARE_SECONDS, a failed one
# is removed at once.
_lookups: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[float, asyncio.Future[ConnectionSettings]]]
] = weakref.WeakKeyDictionary()


class _LookupAbandonedError(Exception):
    """The hook that was looking the connection up for others failed or was cancelled."""


#: What an API name and an API version look like (ASCII only: they are sent in headers).
_ACTION = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def client_for(conn_id: str, settings: ConnectionSettings) -> AlibabaCloudClient:
    """The process-wide client of a connection (:func:`~airflow_aliyun_tasks.client.build_client`):
    its credential source is built once and reused (temporary credentials are cached and
    refreshed near expiry). A changed connection gets a new client."""
    sts = sts_endpoint(settings)  # follows ALIBABA_CLOUD_STS_REGION and ..._VPC_ENDPOINT_ENABLED
    key = (conn_id, settings.fingerprint(), environment_key(settings.network), sts)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                source = build_credential_source(settings, sts)
                client = _clients[key] = build_client(settings, source)
    return client


def sts_endpoint(settings: ConnectionSettings) -> Endpoint:
    override = settings.endpoints.get("sts_endpoint")
    if override:
        return override
    return Endpoint("https", sts_host(settings.region_id, vpc=settings.use_vpc_endpoints))


def service_endpoint(
    spec: ServiceSpec, settings: ConnectionSettings, ids: Mapping[str, str] | None = None
) -> Endpoint:
    """The endpoint of ``spec``: the connection's override, else the service's public or VPC host
    for the connection's region and the call's ``ids`` (host ids such as PDS's ``domain_id``
    default to the connection's extras)."""
    override = settings.endpoints.get(spec.endpoint_extra)
    if override:
        return override
    host = spec.host_for(
        settings.region_id,
        spec.with_defaults(ids or {}, settings.id_defaults),
        vpc=settings.use_vpc_endpoints,
    )
    return parse_endpoint(spec.endpoint_extra, host)


def _spec_call(
    spec: ServiceSpec,
    settings: ConnectionSettings,
    ids: Mapping[str, str],
    action: str,
    req: ApiRequest,
    *,
    empty_ok: bool = False,
) -> Call:
    """The signed call of one of ``spec``'s operations, built by the spec as ``req``
    (``empty_ok``: the operation answers with an empty body)."""
    return Call(
        endpoint=service_endpoint(spec, settings, ids),
        action=action,
        version=spec.version,
        method=req.method,
        path=req.path,
        query=req.query,
        body=req.body,
        content_type=req.content_type,
        signer=spec.signer,
        headers=dict(req.headers) or None,
        empty_ok=empty_ok,
    )


def _check_api_name(action: Any, version: Any) -> None:
    if not isinstance(action, str) or not _ACTION.fullmatch(action):
        raise ConfigurationError(
            "action", f"must be an API name such as ImportWorkflowDefinition, got {action!r}"
        )
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ConfigurationError("version", f"must be an API version such as 2024-05-18, got {version!r}")


def _checked_method_and_path(method: str, path: str) -> str:
    """The method upper-cased, once it and the path are ones ``call_api`` sends."""
    method = method.upper()
    if method not in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        raise ConfigurationError("method", f"unsupported HTTP method {method!r}")
    if not path.startswith("/") or ".." in path.split("/"):
        raise ConfigurationError("path", f"must be an absolute API path, got {path!r}")
    return method


class AlibabaCloudTasksHook(BaseHook):
    """Read the status of Alibaba Cloud async tasks (every service of
    :data:`~airflow_aliyun_tasks.services.SERVICES`: DLF, DataWorks, MaxCompute MMA, PDS, EMR
    Serverless Spark).

    :param aliyun_conn_id: the ``aliyun`` connection to use.
    :param region_id: the region to call, instead of the connection's ``region_id`` (one
        connection can then serve several regions).

    Every status call has a sync form (``get_...``) and an async form (``aget_...``) and returns
    a :class:`~airflow_aliyun_tasks.status.TaskStatus`. :meth:`call_api` makes any other signed
    call, for example to start the operation whose task you then wait for.
    """

    conn_name_attr = "aliyun_conn_id"
    default_conn_name = "aliyun_default"
    conn_type = "aliyun"
    hook_name = "Alibaba Cloud async tasks"

    # The connection form of Airflow 3.1; 3.2 and later read the provider info's declarative
    # form instead (both are built from the one table of extras).
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields, as Airflow 3.1's UI reads them."""
        from airflow_aliyun_tasks._legacy_form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The standard fields' labels, placeholders and hidden fields, as Airflow 3.1 reads them."""
        from airflow_aliyun_tasks._legacy_form import ui_field_behaviour

        return ui_field_behaviour()

    def __init__(
        self, aliyun_conn_id: str = default_conn_name, region_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.aliyun_conn_id = aliyun_conn_id
        self.region_id = region_id or None
        # Cache: the validated connection, fetched once per hook (a hook lives as long as one
        # trigger or one task run; a changed connection is seen by the next hook).
        self._settings: ConnectionSettings | None = None
        # Cache, the hot path of a trigger polling one task: the client of self._settings, and
        # the last status call built (keyed on the settings object and the service and ids;
        # replaced when either changes). Made once per hook, not per poll.
        self._client: AlibabaCloudClient | None = None
        self._last_settings: ConnectionSettings | None = None
        self._last_key: tuple[Any, ...] = ()  # (service, id name, id value, ...)
        self._last_call: tuple[ServiceSpec, Call, dict[str, str]] | None = None

    def __repr__(self) -> str:
        region = f", region_id={self.region_id!r}" if self.region_id else ""
        return f"{type(self).__name__}(aliyun_conn_id={self.aliyun_conn_id!r}{region})"

    # ---- connection

    @property
    def settings(self) -> ConnectionSettings:
        """The validated connection (fetched once per hook, synchronously), in the hook's region."""
        if self._settings is None:
            conn = self.get_connection(self.aliyun_conn_id)
            parsed = self._parse(conn.login, conn.password, conn.extra_dejson)
            self._settings = parsed.with_region(self.region_id)
        return self._settings

    async def asettings(self) -> ConnectionSettings:
        """The validated connection, fetched with ``aget_connection`` (never blocks the loop).

        Hooks of one event loop that need the same connection within
        :data:`CONNECTION_SHARE_SECONDS` of each other share one lookup: a triggerer that starts
        thousands of waits at once (a restart) looks the connection up once, not once per wait.
        A failed lookup is not shared.
        """
        if self._settings is None:
            self._settings = (await self._shared_settings()).with_region(self.region_id)
        return self._settings

    async def _shared_settings(self) -> ConnectionSettings:
        loop = asyncio.get_running_loop()
        lookups = _lookups.get(loop)
        if lookups is None:
            lookups = _lookups[loop] = {}
        conn_id = self.aliyun_conn_id
        entry = lookups.get(conn_id)
        if entry is not None and loop.time() < entry[0]:
            future = entry[1]
            try:
                return await asyncio.shield(future) if not future.done() else future.result()
            except Exception:  # the shared lookup failed or was abandoned: look it up ourselves
                return await self._fetch_settings()
        future = loop.create_future()
        lookups[conn_id] = (loop.time() + CONNECTION_SHARE_SECONDS, future)
        try:
            settings = await self._fetch_settings()
        except BaseException:
            if lookups.get(conn_id, (0.0, None))[1] is future:
                del lookups[conn_id]
            future.set_exception(_LookupAbandonedError())
            future.exception()  # retrieved: waiters, if any, look up themselves
            raise
        future.set_result(settings)
        return settings

    async def _fetch_settings(self) -> ConnectionSettings:
        conn = await self.aget_connection(self.aliyun_conn_id)
        return self._parse(conn.login, conn.password, await aextra_dejson(conn))

    def _parse(self, login: str | None, password: str | None, extra: Any) -> ConnectionSettings:
        if not isinstance(extra, Mapping):
            raise ConfigurationError("extra", "must be a JSON object")
        settings = parse_connection(login=login, password=password, extra=extra)
        _mask_proxy_passwords(settings)
        return settings

    @property
    def client(self) -> AlibabaCloudClient:
        return self._client_of(self.settings)

    async def aclient(self) -> AlibabaCloudClient:
        return self._client_of(await self.asettings())

    def _client_of(self, settings: ConnectionSettings) -> AlibabaCloudClient:
        client = self._client
        if client is None or settings is not self._settings:
            client = client_for(self.aliyun_conn_id, settings)
            if settings is self._settings:
                self._client = client
        return client

    # ---- status calls

    def _status_call(
        self, settings: ConnectionSettings, service: str, ids: Mapping[str, Any]
    ) -> tuple[ServiceSpec, Call, dict[str, str]]:
        """The spec, call and validated ids of one status call; a hook polling one task builds
        them once (the last call is kept: a trigger's hook makes only one)."""
        key = (service, *itertools.chain.from_iterable(ids.items()))
        last = self._last_call
        try:
            if last is not None and self._last_settings is settings and self._last_key == key:
                return last
        except Exception:  # noqa: S110 - an id that cannot be compared: validation rejects it
            pass
        built = self._build_status_call(settings, service, ids)
        self._last_settings, self._last_key, self._last_call = settings, key, built
        return built

    def _build_status_call(
        self, settings: ConnectionSettings, service: str, ids: Mapping[str, Any]
    ) -> tuple[ServiceSpec, Call, dict[str, str]]:
        spec = get_service(service)
        clean = spec.validate_ids(ids)
        req = spec.build_request(clean, settings.region_id)
        return spec, _spec_call(spec, settings, clean, spec.action, req), clean

    @staticmethod
    def _parse_status(spec: ServiceSpec, response: Response, ids: dict[str, str]) -> TaskStatus:
        return spec.parse(response.body, ids, response.request_id)

    def get_task_status(self, service: str, **ids: Any) -> TaskStatus:
        """Status of one task of ``service`` (a name of
        :data:`~airflow_aliyun_tasks.services.SERVICES`), ids as keywords named as the service's
        sensor names them: ``get_task_status("emr_serverless_spark", workspace_id=..., job_run_id=...)``."""
        settings = self.settings
        spec, call, clean = self._status_call(settings, service, ids)
        return self._parse_status(spec, self._client_of(settings).send(call), dict(clean))

    async def aget_task_status(self, service: str, **ids: Any) -> TaskStatus:
        """Async :meth:`get_task_status`."""
        settings = self._settings or await self.asettings()
        spec, call, clean = self._status_call(settings, service, ids)
        response = await self._client_of(settings).asend(call)
        return self._parse_status(spec, response, dict(clean))

    def _cancel_call(self, settings: ConnectionSettings, service: str, ids: Mapping[str, Any]) -> Call:
        spec = get_service(service)
        if spec.cancel is None:
            raise ConfigurationError("service", f"{spec.label} has no operation that cancels a task")
        clean = spec.validate_ids(ids)
        req = spec.build_cancel_request(clean, settings.region_id)
        return _spec_call(
            spec, settings, clean, spec.cancel.action, req, empty_ok=spec.cancel.response_body == "none"
        )

    @staticmethod
    def _cancelled(service: str, response: Response, ids: Mapping[str, Any]) -> dict[str, Any]:
        """The cancel's answer, or the error its per-task results report (``CancelOperation.check``)."""
        spec = get_service(service)
        reason = spec.check_cancel(response.body, spec.validate_ids(ids))
        if reason is not None:
            raise ApiError(
                http_status=response.status,
                code=None,
                message=f"{spec.label} {spec.cancel.action if spec.cancel else ''}: {reason}",
                request_id=response.request_id,
            )
        return response.body

    def cancel_task(self, service: str, **ids: Any) -> dict[str, Any]:
        """Cancel one task of ``service`` with the service's cancel operation (its spec's
        ``cancel``: EMR Serverless Spark ``CancelJobRun``, PAI DLC ``StopJob``, ...; the table of
        ``docs/operators.md`` lists them); returns the response body. A service without one raises
        :class:`~airflow_aliyun_tasks.errors.ConfigurationError` (see ``ServiceSpec.cancel``).
        An answer whose per-task result says the cancel failed (DataWorks
        ``SuccessInfo``) raises :class:`~airflow_aliyun_tasks.errors.ApiError` with the reason."""
        settings = self.settings
        response = self._client_of(settings).send(self._cancel_call(settings, service, ids))
        return self._cancelled(service, response, ids)

    async def acancel_task(self, service: str, **ids: Any) -> dict[str, Any]:
        """Async :meth:`cancel_task`."""
        settings = await self.asettings()
        response = await self._client_of(settings).asend(self._cancel_call(settings, service, ids))
        return self._cancelled(service, response, ids)

    def get_dlf_async_task_status(self, async_task_id: str, catalog_id: str | None = None) -> TaskStatus:
        """DLF ``GetAsyncTaskStatus`` (RAM action ``dlf:GetAsyncTaskStatus``)."""
        return self.get_task_status("dlf", async_task_id=async_task_id, catalog_id=catalog_id)

    async def aget_dlf_async_task_status(
        self, async_task_id: str, catalog_id: str | None = None
    ) -> TaskStatus:
        return await self.aget_task_status("dlf", async_task_id=async_task_id, catalog_id=catalog_id)

    def get_dataworks_job_status(self, job_id: str) -> TaskStatus:
        """DataWorks ``GetJobStatus`` (RAM action ``dataworks:GetJobStatus``)."""
        return self.get_task_status("dataworks", job_id=job_id)

    async def aget_dataworks_job_status(self, job_id: str) -> TaskStatus:
        return await self.aget_task_status("dataworks", job_id=job_id)

    def get_mma_async_task(self, source_id: int | str, async_task_id: int | str) -> TaskStatus:
        """MaxCompute ``GetMmsAsyncTask`` (RAM action ``odps:GetMmsAsyncTask``)."""
        return self.get_task_status("mma", source_id=source_id, async_task_id=async_task_id)

    async def aget_mma_async_task(self, source_id: int | str, async_task_id: int | str) -> TaskStatus:
        return await self.aget_task_status("mma", source_id=source_id, async_task_id=async_task_id)

    def get_pds_async_task(self, async_task_id: str, domain_id: str | None = None) -> TaskStatus:
        """PDS ``GetAsyncTask``; ``domain_id`` defaults to the connection's ``pds_domain_id``."""
        return self.get_task_status("pds", async_task_id=async_task_id, domain_id=domain_id)

    async def aget_pds_async_task(self, async_task_id: str, domain_id: str | None = None) -> TaskStatus:
        return await self.aget_task_status("pds", async_task_id=async_task_id, domain_id=domain_id)

    # ---- the generic call

    def _generic_call(
        self,
        settings: ConnectionSettings,
        *,
        action: str,
        version: str,
        service: str | None,
        endpoint: str | None,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        domain_id: str | None,
        headers: Mapping[str, Any] | None = None,
        body_encoding: BodyEncoding | None = None,
        response_body: ResponseBody = "json",
    ) -> Call:
        _check_api_name(action, version)
        if (service is None) == (endpoint is None):
            raise ConfigurationError(
                "service", f"pass exactly one of service ({', '.join([*SERVICES, 'sts'])}) or endpoint"
            )
        signer: Signer = "acs3"
        encoding: BodyEncoding = "json"
        if endpoint is not None:
            ep = parse_endpoint("endpoint", endpoint)
        elif service == "sts":
            ep = sts_endpoint(settings)
        else:
            spec = get_service(str(service))
            host_ids = {} if domain_id is None else {"domain_id": validate_id("domain_id", domain_id)}
            ep = service_endpoint(spec, settings, host_ids)
            signer = spec.signer
            encoding = spec.body_encoding
        method = _checked_method_and_path(method, path)
        str_query = {str(k): _query_value(k, v) for k, v in (query or {}).items() if v is not None}
        raw_body, content_type = encode_body(body, body_encoding or encoding)
        if response_body not in ("json", "none"):
            raise ConfigurationError("response_body", f"must be json or none, got {response_body!r}")
        return Call(
            endpoint=ep,
            action=action,
            version=version,
            method=method,
            path=path,
            query=str_query,
            body=raw_body,
            content_type=content_type,
            signer=signer,
            headers=_headers(headers) or None,
            empty_ok=response_body == "none",
        )

    def call_api(
        self,
        action: str,
        version: str,
        *,
        service: str | None = None,
        endpoint: str | None = None,
        method: str = "POST",
        path: str = "/",
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        domain_id: str | None = None,
        retries: bool = True,
        headers: Mapping[str, Any] | None = None,
        body_encoding: BodyEncoding | None = None,
        response_body: ResponseBody = "json",
    ) -> dict[str, Any]:
        """Make any signed call and return the JSON response body.

        RPC-style APIs take their parameters in ``query`` (path ``/``); ROA-style APIs take a
        ``path`` and usually a JSON ``body``. Give either ``service`` (a name of
        :data:`~airflow_aliyun_tasks.services.SERVICES`, or ``sts``: the connection's endpoint for
        it, and the service's own signature scheme) or an explicit ``endpoint`` host or URL.
        ``domain_id`` is the domain of a service whose host names one (PDS).

        Non-string query values are sent as JSON (lists, dicts) or their string form.

        ``body`` is encoded as ``body_encoding`` says (see
        :func:`~airflow_aliyun_tasks.services.encode_body`): ``"json"``, ``"form"`` (the
        ``formData`` bodies of RPC APIs; lists and objects in a field as JSON text) or
        ``"raw"`` (an opaque payload); by default as ``service``'s requests are
        (:attr:`~airflow_aliyun_tasks.services.ServiceSpec.body_encoding`), else JSON. The
        signature covers exactly the bytes sent. ``headers`` are request headers of the
        operation (not ``x-acs-*``: the client's), sent unsigned. ``response_body="none"``
        accepts an empty 2xx answer (returned as ``{}``), for an operation that answers without
        a body.

        ``retries=False`` sends the call once, without the client's retries (throttling, 5xx,
        a dropped connection): for a call that must not be repeated, such as starting a task
        without a client token (a lost answer cannot be told from a request never received).
        """
        settings = self.settings
        call = self._generic_call(
            settings,
            action=action,
            version=version,
            service=service,
            endpoint=endpoint,
            method=method,
            path=path,
            query=query,
            body=body,
            domain_id=domain_id,
            headers=headers,
            body_encoding=body_encoding,
            response_body=response_body,
        )
        return self._client_of(settings).send(call, retries=retries).body

    async def acall_api(
        self,
        action: str,
        version: str,
        *,
        service: str | None = None,
        endpoint: str | None = None,
        method: str = "POST",
        path: str = "/",
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        domain_id: str | None = None,
        retries: bool = True,
        headers: Mapping[str, Any] | None = None,
        body_encoding: BodyEncoding | None = None,
        response_body: ResponseBody = "json",
    ) -> dict[str, Any]:
        """Async :meth:`call_api`."""
        settings = await self.asettings()
        call = self._generic_call(
            settings,
            action=action,
            version=version,
            service=service,
            endpoint=endpoint,
            method=method,
            path=path,
            query=query,
            body=body,
            domain_id=domain_id,
            headers=headers,
            body_encoding=body_encoding,
            response_body=response_body,
        )
        return (await self._client_of(settings).asend(call, retries=retries)).body

    # ---- connection test

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection with STS ``GetCallerIdentity`` (any valid key may call it).

        For a ``bearer`` connection (PDS only) a PDS ``GetAsyncTask`` for a task id that does
        not exist is sent: "not found" proves the token was accepted.
        """
        try:
            settings = self.settings
            client = self._client_of(settings)
            # One quick attempt: the Test button runs synchronously in the API server.
            # Corrective retries (fresh STS credentials, the server's clock) still happen once.
            timeout = min(settings.timeout, 10.0)
            if settings.auth_type == "bearer":
                # Bearer tokens are accepted by the services of PDS's signing scheme: ask one of
                # them for a task that does not exist.
                spec = next(s for s in SERVICES.values() if s.signer == "pds")
                probe = {p.name: "connection-test" for p in spec.ids if p.required}
                _, call, _ = self._status_call(settings, spec.name, probe)
                with contextlib.suppress(NotFoundError):
                    client.send(call, retries=False, timeout=timeout)
                return True, f"PDS accepted the bearer token ({spec.title} at {call.endpoint.netloc})"
            body = client.send(
                Call(endpoint=sts_endpoint(settings), action="GetCallerIdentity", version=STS_VERSION),
                retries=False,
                timeout=timeout,
            ).body
        except AlibabaCloudError as exc:
            return False, str(exc)
        except Exception as exc:  # the Test button must always answer
            return False, f"{type(exc).__name__}: {exc}"
        arn = body.get("Arn", "?")
        account = body.get("AccountId", "?")
        kind = body.get("IdentityType", "")
        return True, f"Authenticated as {arn} (account {account}{', ' + kind if kind else ''})"


def _mask_proxy_passwords(settings: ConnectionSettings) -> None:
    """Register the passwords of the connection's proxy URLs (and the URLs) with Airflow's secrets
    masker: Airflow masks the extras it deems sensitive by name, and a proxy URL is not one."""
    from airflow.sdk.log import mask_secret

    for proxy in (settings.network.https_proxy, settings.network.http_proxy):
        if proxy is not None and proxy.password:
            mask_secret(proxy.password)
            mask_secret(proxy.url)


def _headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Request headers of an operation, names checked (lower-cased) and values as text."""
    out: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if value is None:
            continue
        key = check_header_name(name)
        out[key] = check_header_value(key, value)
    return out


def _query_value(name: Any, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    raise ConfigurationError(
        str(name), f"query values must be strings, numbers, lists or dicts, got {type(value).__name__}"
    )
