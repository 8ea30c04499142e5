"""HTTP client: signed calls to Alibaba Cloud over httpx, with retries.

An error answer becomes the package's exception in :func:`airflow_aliyun_tasks.errors.map_error`.

- Sync calls share one ``httpx.Client`` per process; async calls share one ``httpx.AsyncClient``
  per event loop, so thousands of concurrent waits in a triggerer share one keep-alive pool.
  Both are built in :func:`_new_sync_client` / :func:`_new_async_client`, the one place that
  chooses the transport: ``httptools`` (async) and ``http.client`` (sync) lean transports
  (:mod:`airflow_aliyun_tasks._transport`), which the hot path calls directly, chosen by
  ``bench/``: per poll, httpx's client layer alone costs more than a whole lean poll. A
  client built on any other transport (a test's ``httpx.MockTransport``) goes through httpx.
  The loop's client is closed when the loop shuts down its async generators (``asyncio.run``).
- A connection with a proxy or custom CAs (:mod:`airflow_aliyun_tasks.network`) sends the
  endpoints they apply to through httpx's own transports (``CONNECT`` tunnels, proxy auth, the
  route's TLS context), one shared client per route; everything else stays on the lean path.
- Every attempt is signed afresh (new date and nonce); what does not change between polls of
  the same call (URL, canonical request around date and nonce, HMAC key) is computed once.
- Retries (tenacity, capped exponential backoff with jitter, honouring ``x-acs-retry-after``):
  transport errors and timeouts, HTTP 5xx, ``Throttling*``, ``ServiceUnavailable``,
  ``InternalError``, ``SignatureNonceUsed`` and PDS gateway ``D5xx`` errors. Expired STS
  credentials of a refreshing source are refreshed and the call retried once. Everything else
  fails fast with the server's code, message and request id.
- Response bodies are capped (:data:`MAX_BODY_BYTES`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import ssl
import sys
import threading
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx
import tenacity

from airflow_aliyun_tasks import signing
from airflow_aliyun_tasks._transport import (
    BodyTooLargeError,
    LeanAsyncTransport,
    LeanSyncTransport,
    RawResponse,
)
from airflow_aliyun_tasks.config import Endpoint, NetworkSettings
from airflow_aliyun_tasks.credentials import Credentials, CredentialSource
from airflow_aliyun_tasks.errors import (
    SKEW_CODES,
    STALE_TEMPORARY_KEY_CODES,
    AlibabaCloudError,
    ApiError,
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    ServiceError,
    ThrottledError,
    TransportError,
    first_field,
    header_request_id,
    map_error,
)
from airflow_aliyun_tasks.network import Route, Router, async_transport, sync_transport

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a status body is a few hundred bytes


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def default_user_agent() -> str:
    """``airflow-aliyun-tasks/<version> apache-airflow/<version> Python/<version>``."""
    python = ".".join(map(str, sys.version_info[:3]))
    return (
        f"airflow-aliyun-tasks/{_version('airflow-aliyun-tasks')} "
        f"apache-airflow/{_version('apache-airflow')} Python/{python}"
    )


@dataclass(frozen=True)
class Call:
    """One API call, independent of credentials: what the hook asks the client to send."""

    endpoint: Endpoint
    action: str
    version: str
    method: str = "POST"
    path: str = "/"
    query: Mapping[str, str] | None = None
    body: bytes = b""
    content_type: str | None = None
    signer: str = (
        "acs3"  # "acs3", "pds", "none" (ROA-style headers, unsigned) or "rpc" (unsigned RPC: query only)
    )

    @cached_property
    def _plan(self) -> _Plan:
        # Cache: what is computed once per call (see _Plan). Keyed on this Call object (equal
        # calls each have their own); dropped with the call, which the hook keeps while it polls.
        # Not a field: equality, hashing and repr ignore it; computed on first send.
        return _Plan(self)


class _Plan:
    """What does not change between sends of one :class:`Call`: the URL (as each transport
    takes it) and the prepared signer of the last credentials used."""

    __slots__ = ("creds", "host", "prepared", "wire", "wire_type")

    def __init__(self, call: Call) -> None:
        self.host = sys.intern(call.endpoint.netloc)
        # Cache: the URL as a transport takes it. Keyed on the transport's type; replaced when
        # a transport of another type sends the call (a client swapped in by a test or bench/).
        self.wire_type: type | None = None
        self.wire: Any = None
        # Cache: the prepared signer. Keyed on the credentials it was made with (the same
        # snapshot, or an equal one); replaced when the credentials change (rotated keys, fresh
        # STS credentials).
        self.creds: Credentials | None = None
        self.prepared: Any = None

    def wire_url(self, call: Call, transport: LeanAsyncTransport | LeanSyncTransport) -> Any:
        """The call's URL as ``transport`` takes it."""
        if self.wire_type is not type(transport):
            self.wire = transport.url(AlibabaCloudClient.url(call))
            self.wire_type = type(transport)
        return self.wire

    def signer(self, call: Call, creds: Credentials) -> Any:
        prepared: Any = self.prepared
        if prepared is not None and (self.creds is creds or self.creds == creds):
            return prepared
        request: signing.SignedRequest = {
            "method": call.method,
            "host": self.host,
            "pathname": call.path,
            "query": call.query,
            "action": call.action,
            "version": call.version,
            "content_type": call.content_type,
            "access_key_id": creds.access_key_id or "",
            "access_key_secret": creds.access_key_secret or "",
            "security_token": creds.security_token,
        }
        if call.signer == "pds":
            prepared = signing.PreparedPdsSigner(**request)
        else:
            prepared = signing.PreparedAcs3Signer(**request, body=call.body)
        self.creds, self.prepared = creds, prepared
        return prepared


@dataclass(frozen=True)
class Response:
    status: int
    headers: httpx.Headers
    body: dict[str, Any]
    request_id: str | None = None


@dataclass
class _CallState:
    refreshed_credentials: bool = False
    corrected_clock: bool = False

    @property
    def corrective_retries(self) -> int:
        """Retries granted on top of ``max_retries``: each correction is retried once."""
        return int(self.refreshed_credentials) + int(self.corrected_clock)


def _from_source(exc: AlibabaCloudError) -> AlibabaCloudError:
    """Mark ``exc`` as raised while fetching credentials (an AssumeRole refused, say), not by the
    call itself: fetching them again would only repeat it."""
    exc.from_credential_source = True  # type: ignore[attr-defined]
    return exc


def _loads(raw: bytes) -> Any:
    """``json.loads`` of the body decoded as UTF-8 with replacement; None if it is not JSON."""
    # Fast path: a body that starts with "{" and whose second byte is not NUL is read as
    # UTF-8 by json.loads(bytes) too; if it is not valid UTF-8, the replacing decode decides.
    if raw[:1] == b"{" and len(raw) > 1 and raw[1]:
        try:
            return json.loads(raw)
        except UnicodeDecodeError:
            pass
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a status
            return None
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None


def _xml_error(raw: bytes) -> dict[str, str] | None:
    """The fields of an XML error body (``<Error><Code>..</Code><Message>..</Message>...``), as
    the official SDK reads one; None if it is not one. No DTDs (no entity expansion)."""
    text = raw.lstrip()
    if not text.startswith(b"<") or b"<!DOCTYPE" in text[:4096].upper() or b"<!ENTITY" in text.upper():
        return None
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTD or entity (refused above), at most 1 MiB
    except (ET.ParseError, ValueError):
        return None
    node = root if root.tag == "Error" else root.find("Error")
    if node is None:
        node = root
    fields = {child.tag: (child.text or "").strip() for child in node if len(child) == 0}
    return fields if any(k in fields for k in ("Code", "Message", "RequestId")) else None


def _decode(status: int, headers: httpx.Headers, raw: bytes, *, now: float) -> Response:
    parsed = _loads(raw)
    obj = parsed if isinstance(parsed, dict) else None
    if obj is None and status >= 400 and "xml" in headers.get("content-type", "").lower():
        obj = _xml_error(raw)
    if status >= 400:
        text = "" if obj is not None else raw.decode("utf-8", errors="replace")
        raise map_error(status, headers, obj, text, now=now)
    if obj is None:
        what = "is not a JSON object" if raw.strip() else "is empty"
        raise BadResponseError(
            f"response body {what} (content type {headers.get('content-type', 'none')})",
            http_status=status,
            request_id=header_request_id(headers),
        )
    if obj.get("Success") is False or obj.get("success") is False:
        # DLF reports some errors inside an HTTP 200 body.
        raise map_error(status, headers, obj, now=now)
    request_id = first_field(obj, "RequestId", "requestId") or header_request_id(headers)
    return Response(status=status, headers=headers, body=obj, request_id=request_id)


def _certificate_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed certificate verification."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


# --------------------------------------------------------------------------- shared HTTP clients

_POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0)
#: Cache: the process's sync client, built on first use. Not keyed: one per process. Dropped
#: when it is closed (the next use builds a new one); its transport drops its pooled
#: connections in a forked child.
_sync_client: httpx.Client | None = None
_sync_lock = threading.Lock()
#: Cache: each event loop's client, and the async generator that closes it when the loop shuts
#: down. Keyed on the loop, weakly (but a client that has sent a request refers to its loop: its
#: transport keeps the loop's read watch); the entry is dropped when the loop shuts down its
#: async generators (``asyncio.run`` does) or by :func:`aclose_shared_client`. A client closed
#: otherwise (a caller closed it) is replaced on the loop's next use.
_loop_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]
] = weakref.WeakKeyDictionary()
#: Cache: the lean transport under a shared client built here, which the hot path calls
#: directly. Keyed on the client (weakly: the entry goes with the client); a client built on any
#: other transport has no entry.
_lean: weakref.WeakKeyDictionary[httpx.Client | httpx.AsyncClient, Any] = weakref.WeakKeyDictionary()


def _new_sync_client() -> httpx.Client:
    transport = LeanSyncTransport(_POOL_LIMITS)
    client = httpx.Client(transport=transport, limits=_POOL_LIMITS, trust_env=False, follow_redirects=False)
    _lean[client] = transport
    return client


def _new_async_client() -> httpx.AsyncClient:
    transport = LeanAsyncTransport(_POOL_LIMITS)
    client = httpx.AsyncClient(
        transport=transport, limits=_POOL_LIMITS, trust_env=False, follow_redirects=False
    )
    _lean[client] = transport
    return client


#: Cache: the process's sync httpx client of each route (a proxy, private CAs). Keyed on the
#: route; kept for the process (a handful of routes), closed with the shared clients.
_route_sync_clients: dict[Route, httpx.Client] = {}
#: Cache: each event loop's httpx clients of each route. Keyed on the loop (weakly) and the
#: route; each is closed when its loop shuts down its async generators, and its entry dropped.
_route_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Route, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def route_sync_client(route: Route) -> httpx.Client:
    """The process-wide sync client of ``route``."""
    client = _route_sync_clients.get(route)
    if client is None or client.is_closed:
        with _sync_lock:
            client = _route_sync_clients.get(route)
            if client is None or client.is_closed:
                client = _route_sync_clients[route] = httpx.Client(
                    transport=sync_transport(route, _POOL_LIMITS), trust_env=False, follow_redirects=False
                )
    return client


def route_async_client(route: Route) -> httpx.AsyncClient:
    """The running loop's client of ``route``."""
    loop = asyncio.get_running_loop()
    clients = _route_async_clients.get(loop)
    if clients is None:
        clients = _route_async_clients[loop] = {}
    client = clients.get(route)
    if client is None or client.is_closed:
        client = clients[route] = httpx.AsyncClient(
            transport=async_transport(route, _POOL_LIMITS), trust_env=False, follow_redirects=False
        )
        _close_at_loop_shutdown(loop, client, None)
    return client


def shared_sync_client() -> httpx.Client:
    """The process-wide sync client (httpx.Client is thread-safe)."""
    global _sync_client
    if _sync_client is None or _sync_client.is_closed:
        with _sync_lock:
            if _sync_client is None or _sync_client.is_closed:
                _sync_client = _new_sync_client()
    return _sync_client


def shared_async_client() -> httpx.AsyncClient:
    """The client of the running event loop: one keep-alive pool per loop."""
    loop = asyncio.get_running_loop()
    entry = _loop_clients.get(loop)
    if entry is not None:
        client = entry[0]
        if not client.is_closed:
            return client
    client = _new_async_client()
    _loop_clients[loop] = (client, _close_at_loop_shutdown(loop, client, None if entry is None else entry[1]))
    return client


async def _closer(
    loop_ref: weakref.ref[asyncio.AbstractEventLoop], client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        try:
            if not client.is_closed:
                await client.aclose()
        finally:
            _forget(loop_ref(), client)


def _forget(loop: asyncio.AbstractEventLoop | None, client: httpx.AsyncClient) -> None:
    """Drop ``client``'s entries of ``loop``: a closed client (its loop shut down) is not kept."""
    if loop is None:
        return
    entry = _loop_clients.get(loop)
    if entry is not None and entry[0] is client:
        del _loop_clients[loop]
    routes = _route_async_clients.get(loop)
    if routes is not None:
        for route, routed in list(routes.items()):
            if routed is client:
                del routes[route]
        if not routes:
            _route_async_clients.pop(loop, None)


def _close_at_loop_shutdown(
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    previous: AsyncGenerator[None, None] | None,
) -> AsyncGenerator[None, None]:
    """Close ``client`` when ``loop`` shuts down its async generators (``asyncio.run`` and
    ``asyncio.Runner`` do, the triggerer runs in ``asyncio.run``): an async generator of the
    loop, suspended until then, whose ``finally`` closes the client in the loop. Returns it;
    ``previous``, the generator of the client it replaces, is finished in the loop."""
    loop_ref = weakref.ref(loop)
    agen = _closer(loop_ref, client)

    def finalizer(gen: AsyncGenerator[None, None]) -> None:
        # The loop's own finalizer schedules aclose() in the loop; a closed loop cannot.
        owner = loop_ref()
        if owner is not None and not owner.is_closed():
            owner.call_soon_threadsafe(owner.create_task, gen.aclose())

    firstiter, old_finalizer = sys.get_asyncgen_hooks()
    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    try:
        agen.__anext__().send(None)  # runs to the ``yield``; firstiter registers it with the loop
    except StopIteration:
        pass
    finally:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=old_finalizer)
    if previous is not None:
        loop.create_task(previous.aclose())
    return agen


async def aclose_shared_client() -> None:
    """Close the running loop's shared client (for tests and orderly shutdowns)."""
    loop = asyncio.get_running_loop()
    entry = _loop_clients.pop(loop, None)
    if entry is not None:
        client, closer = entry
        await client.aclose()
        await closer.aclose()
    for routed in list(_route_async_clients.pop(loop, {}).values()):
        await routed.aclose()


# --------------------------------------------------------------------------- the client


class AlibabaCloudClient:
    """Sends signed :class:`Call` s with retries; returns :class:`Response` or raises.

    :param credentials: where to take credentials from, once per attempt.
    :param timeout: seconds for connect, read and write of one attempt.
    :param max_retries: retries after the first attempt, for retryable failures.
    :param correct_clock_skew: on a clock-skew rejection, sign with the server's clock from
        then on (the offset is read from the response's ``Date`` header) and retry once.
    :param connect_timeout: seconds to set up a connection (TCP, proxy tunnel, TLS); ``timeout``
        if not given.
    :param user_agent: appended to the package's ``User-Agent``.
    :param network: proxies and CAs (:mod:`airflow_aliyun_tasks.network`); ``None``: direct, with
        the default CAs and no proxy whatever the environment says.
    """

    def __init__(
        self,
        credentials: CredentialSource,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        correct_clock_skew: bool = False,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        connect_timeout: float | None = None,
        user_agent: str | None = None,
        network: NetworkSettings | None = None,
    ) -> None:
        self.credentials = credentials
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout or timeout, pool=max(timeout, 60.0))
        self.user_agent = default_user_agent() + (f" {user_agent}" if user_agent else "")
        self.network = network
        router = Router(network) if network is not None else None
        #: None when every endpoint goes direct with the default CAs: the lean transports.
        self._router = None if router is None or router.direct else router
        self.max_retries = max_retries
        self.correct_clock_skew = correct_clock_skew
        self.clock_offset = 0.0
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        return f"AlibabaCloudClient(credentials={self.credentials!r}, max_retries={self.max_retries})"

    # ---- signing

    def _headers(self, call: Call, creds: Credentials) -> dict[str, str]:
        now = time.time() + self.clock_offset
        nonce = uuid.uuid4().hex
        plan = call._plan
        host = plan.host
        headers: dict[str, str]
        if call.signer == "pds":
            if creds.bearer_token:
                headers = {
                    "host": host,
                    "accept": "application/json",
                    "x-acs-action": call.action,
                    "x-acs-version": call.version,
                    **signing.bearer_headers(creds.bearer_token),
                }
                if call.content_type:
                    headers["content-type"] = call.content_type
            else:
                self._require_keys(creds, call)
                # == signing.pds_headers(...) for this call, precomputed (see PreparedPdsSigner)
                headers = plan.signer(call, creds).headers(signing.dates(now)[1], nonce)
        elif call.signer == "rpc":
            # An unsigned RPC-style call (STS AssumeRoleWithOIDC): everything is in the query.
            headers = {"host": host, "accept": "application/json"}
        elif call.signer == "none":
            headers = {
                "host": host,
                "accept": "application/json",
                "x-acs-action": call.action,
                "x-acs-version": call.version,
                "x-acs-date": signing.dates(now)[0],
                "x-acs-signature-nonce": nonce,
            }
            if call.content_type:
                headers["content-type"] = call.content_type
        else:
            self._require_keys(creds, call)
            # == signing.acs3_headers(...) for this call, precomputed (see PreparedAcs3Signer)
            headers = plan.signer(call, creds).headers(signing.dates(now)[0], nonce)
            headers["accept"] = "application/json"
        headers["user-agent"] = self.user_agent
        return headers

    @staticmethod
    def _require_keys(creds: Credentials, call: Call) -> None:
        if not creds.access_key_id or not creds.access_key_secret:
            raise ConfigurationError(
                "auth_type",
                f"{call.action} needs an AccessKey pair (or STS credentials); "
                "a bearer token only works for PDS",
            )

    @staticmethod
    def url(call: Call) -> str:
        url = call.endpoint.url + signing.encode_path(call.path)
        query = signing.canonical_query(call.query)
        return f"{url}?{query}" if query else url

    # ---- retry policy

    def _should_retry(self, exc: BaseException, state: _CallState) -> bool:
        if isinstance(exc, TransportError | ThrottledError | ServiceError):
            return True
        if isinstance(exc, AuthenticationError):
            code = exc.code or ""
            if (
                code.startswith(STALE_TEMPORARY_KEY_CODES)
                and not getattr(exc, "from_credential_source", False)  # the source's own call failed
                and self.credentials.refreshable
                and not state.refreshed_credentials
            ):
                state.refreshed_credentials = True
                self.credentials.invalidate()
                return True
            offset = getattr(exc, "clock_offset", None)
            if (
                code.startswith(SKEW_CODES)
                and self.correct_clock_skew
                and offset is not None
                and not state.corrected_clock
            ):
                state.corrected_clock = True
                # The offset is measured against the raw local clock, so it replaces the old one.
                self.clock_offset = offset
                log.warning(
                    "Server says this machine's clock is off by %+.0f s; signing with the server's time",
                    offset,
                )
                return True
            return False
        return isinstance(exc, ApiError) and exc.retryable

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            return float(retry_after)
        if isinstance(exc, AuthenticationError):
            return 0.0
        # Capped exponential backoff with up to 1 s of jitter (tenacity's wait_exponential_jitter).
        exponent = min(retry_state.attempt_number - 1, 62)
        return min(self.backoff_max, self.backoff_initial * 2.0**exponent + random.uniform(0.0, 1.0))

    def _retry_kwargs(self, call: Call, state: _CallState) -> dict[str, Any]:
        def before_sleep(rs: tenacity.RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            log.warning(
                "%s attempt %d failed, retrying in %.2f s: %s",
                call.action,
                rs.attempt_number,
                rs.upcoming_sleep,
                exc,
            )

        return {
            # Corrective retries (fresh credentials, the server's clock) come on top of max_retries.
            "stop": lambda rs: rs.attempt_number >= self.max_retries + 1 + state.corrective_retries,
            "wait": self._wait,
            "retry": tenacity.retry_if_exception(lambda e: self._should_retry(e, state)),
            "reraise": True,
            "before_sleep": before_sleep,
        }

    # ---- sync

    def send(self, call: Call) -> Response:
        """Send ``call`` and return the decoded response, retrying what may succeed later."""
        try:
            return self._send_once(call)  # the first attempt, without the retry machinery
        except Exception as exc:
            first: BaseException | None = exc
        state = _CallState()
        for attempt in tenacity.Retrying(**self._retry_kwargs(call, state)):
            with attempt:
                if first is not None:  # attempt 1 is the one above: tenacity decides as before
                    failed, first = first, None
                    raise failed
                return self._send_once(call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, call: Call) -> Response:
        try:
            creds = self.credentials.get()
        except AlibabaCloudError as exc:
            raise _from_source(exc) from None
        headers = self._headers(call, creds)
        if self._router is not None and (route := self._router.route(call.endpoint)) is not None:
            return self._send_httpx(route_sync_client(route), call, headers, route)
        client = shared_sync_client()
        lean = _lean.get(client)
        if lean is None:
            return self._send_httpx(client, call, headers)
        try:
            raw: RawResponse = lean.send(
                call.method,
                call._plan.wire_url(call, lean),
                headers,
                call.body or None,
                self.timeout,
                self.max_body_bytes,
                total=self.timeout.read,  # the connection's `timeout` bounds each attempt as a whole
            )
        except BodyTooLargeError as exc:
            raise self._body_too_large(exc.status, exc.headers) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(call, exc) from None
        return _decode(raw.status, raw.headers, raw.body, now=time.time())

    def _send_httpx(
        self, client: httpx.Client, call: Call, headers: dict[str, str], route: Route | None = None
    ) -> Response:
        try:
            with client.stream(
                call.method, self.url(call), headers=headers, content=call.body or None, timeout=self.timeout
            ) as resp:
                declared = resp.headers.get("content-length")
                self._check_size(declared, resp)
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        self._too_big(resp)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise self._transport_error(call, exc, route) from None
        return _decode(resp.status_code, resp.headers, b"".join(chunks), now=time.time())

    # ---- async

    async def asend(self, call: Call) -> Response:
        """Async :meth:`send`, on the event loop's shared connection pool; never blocks the loop."""
        try:
            return await self._asend_once(call)  # the first attempt, without the retry machinery
        except Exception as exc:
            first: BaseException | None = exc
        state = _CallState()
        async for attempt in tenacity.AsyncRetrying(**self._retry_kwargs(call, state)):
            with attempt:
                if first is not None:  # attempt 1 is the one above: tenacity decides as before
                    failed, first = first, None
                    raise failed
                return await self._asend_once(call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _asend_once(self, call: Call) -> Response:
        try:
            creds = await self.credentials.aget()
        except AlibabaCloudError as exc:
            raise _from_source(exc) from None
        headers = self._headers(call, creds)
        if self._router is not None and (route := self._router.route(call.endpoint)) is not None:
            return await self._asend_httpx(route_async_client(route), call, headers, route)
        client = shared_async_client()
        lean = _lean.get(client)
        if lean is None:
            return await self._asend_httpx(client, call, headers)
        try:
            raw: RawResponse = await lean.send(
                call.method,
                call._plan.wire_url(call, lean),
                headers,
                call.body or None,
                self.timeout,
                self.max_body_bytes,
                total=self.timeout.read,  # the connection's `timeout` bounds each attempt as a whole
            )
        except BodyTooLargeError as exc:
            raise self._body_too_large(exc.status, exc.headers) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(call, exc) from None
        return _decode(raw.status, raw.headers, raw.body, now=time.time())

    async def _asend_httpx(
        self, client: httpx.AsyncClient, call: Call, headers: dict[str, str], route: Route | None = None
    ) -> Response:
        try:
            async with client.stream(
                call.method, self.url(call), headers=headers, content=call.body or None, timeout=self.timeout
            ) as resp:
                self._check_size(resp.headers.get("content-length"), resp)
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        self._too_big(resp)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise self._transport_error(call, exc, route) from None
        return _decode(resp.status_code, resp.headers, b"".join(chunks), now=time.time())

    @staticmethod
    def _transport_error(call: Call, exc: httpx.HTTPError, route: Route | None = None) -> TransportError:
        via = route.via if route is not None else ""
        text = f"{call.action} to {call.endpoint.netloc}{via}: {type(exc).__name__}: {exc}"
        if _certificate_failure(exc):
            text += (
                " (the server's certificate was not trusted: if a proxy or gateway re-signs TLS "
                "or the endpoint uses a private CA, set the connection's ca_bundle extra to the "
                "path of its CA certificate, PEM)"
            )
        elif isinstance(exc, httpx.ProxyError) and route is not None and route.proxy is not None:
            text += " (the proxy refused the request: check the proxy URL and its user and password)"
        return TransportError(text)

    def _body_too_large(self, status: int, headers: httpx.Headers) -> BadResponseError:
        return BadResponseError(
            f"response body larger than {self.max_body_bytes} bytes",
            http_status=status,
            request_id=header_request_id(headers),
        )

    def _check_size(self, declared: str | None, resp: httpx.Response) -> None:
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            self._too_big(resp)

    def _too_big(self, resp: httpx.Response) -> None:
        raise self._body_too_large(resp.status_code, resp.headers)
