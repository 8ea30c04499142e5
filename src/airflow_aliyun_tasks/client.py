"""HTTP client: signed calls to Alibaba Cloud over httpx, with retries and error mapping.

- Sync calls share one ``httpx.Client`` per process; async calls share one ``httpx.AsyncClient``
  per event loop, so thousands of concurrent waits in a triggerer share one keep-alive pool.
  Both are built in :func:`_new_sync_client` / :func:`_new_async_client`, the one place that
  chooses the transport.
- Every attempt is signed afresh (new date and nonce).
- Retries (tenacity, capped exponential backoff with jitter, honouring ``x-acs-retry-after``):
  transport errors and timeouts, HTTP 5xx, ``Throttling*``, ``ServiceUnavailable``,
  ``InternalError``, ``SignatureNonceUsed`` and PDS gateway ``D5xx`` errors. Expired STS
  credentials of a refreshing source are refreshed and the call retried once. Everything else
  fails fast with the server's code, message and request id.
- Response bodies are capped (:data:`MAX_BODY_BYTES`).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from airflow_aliyun_tasks import signing
from airflow_aliyun_tasks.config import Endpoint
from airflow_aliyun_tasks.credentials import Credentials, CredentialSource
from airflow_aliyun_tasks.errors import (
    AlibabaCloudError,
    ApiError,
    AuthenticationError,
    BadResponseError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    TransportError,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a status body is a few hundred bytes
MAX_RETRY_AFTER = 30.0
USER_AGENT = "airflow-aliyun-tasks"

_AUTH_CODES = (
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId",
    "InvalidSecurityToken",
    "MissingSecurityToken",
    "InvalidTimeStamp",
    "IllegalTimestamp",
    "MissingAuthorization",
    "InvalidAuthorization",
    "RequestTimeTooSkewed",
    "InvalidTime",
    "AccessTokenInvalid",
    "AccessTokenExpired",
)
_SKEW_CODES = ("InvalidTimeStamp", "IllegalTimestamp", "RequestTimeTooSkewed", "InvalidTime")
_SERVICE_CODES = ("ServiceUnavailable", "InternalError", "InternalFailure", "UnknownError")


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
    signer: str = "acs3"  # "acs3", "pds" or "none"


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


def _header_request_id(headers: httpx.Headers) -> str | None:
    value: str | None = headers.get("x-acs-request-id") or headers.get("x-ca-request-id")
    return value


def _first(body: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _server_clock_offset(headers: httpx.Headers, now: float) -> float | None:
    """Seconds the server's clock is ahead of ours, from the response's ``Date`` header."""
    date = headers.get("date")
    if not date:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return server - now


def map_error(
    status: int, headers: httpx.Headers, body: Mapping[str, Any] | None, text: str = "", *, now: float
) -> AlibabaCloudError:
    """Turn an error response into the package's exception, keeping code, message and request id."""
    body = body or {}
    code = _first(body, "Code", "code", "ErrorCode", "errorCode") or headers.get("x-ca-error-code")
    message = _first(body, "Message", "message", "ErrorMessage", "errorMessage", "errorMsg") or headers.get(
        "x-ca-error-message"
    )
    request_id = _first(body, "RequestId", "requestId", "requestid") or _header_request_id(headers)
    if not code and not message and text:
        snippet = " ".join(text.split())[:200]
        message = f"non-JSON error body ({headers.get('content-type', 'no content type')}): {snippet}"
    retry_after = None
    raw_retry_after = headers.get("x-acs-retry-after")
    if raw_retry_after:
        try:
            # milliseconds, as the official SDK reads it
            retry_after = min(max(float(raw_retry_after) / 1000.0, 0.0), MAX_RETRY_AFTER)
        except ValueError:
            retry_after = None
    string_to_sign = None
    hint = None
    kwargs: dict[str, Any] = {
        "http_status": status,
        "code": code,
        "message": message,
        "request_id": request_id,
    }
    c = code or ""
    if c == "SignatureDoesNotMatch" and message and "string to sign is:" in message:
        string_to_sign = message.split("string to sign is:", 1)[1].strip()
        hint = "Check the AccessKey Secret; the server's string to sign is on the exception"
    if c.startswith(_SKEW_CODES):
        offset = _server_clock_offset(headers, now)
        if offset is not None:
            hint = (
                f"This machine's clock is off: the server's clock is {offset:+.0f} s from it. "
                "Fix the clock (NTP), or set the connection extra correct_clock_skew to true"
            )
        else:
            hint = "This machine's clock is probably off by more than 15 minutes; fix it (NTP)"

    cls: type[ApiError]
    retryable = False
    if c.startswith("Throttling") or c == "Rejected.Throttling" or status == 429:
        cls = ThrottledError
    elif c in _SERVICE_CODES or status >= 500 or (c.startswith("D5") and "x-ca-error-code" in headers):
        cls = ServiceError
    elif c.startswith(_AUTH_CODES) or status == 401:
        cls = AuthenticationError
    elif c.startswith(("Forbidden", "NoPermission")) or status == 403:
        cls = PermissionDeniedError
    elif status == 404 or c.endswith("NotFound") or ".NotFound" in c:
        cls = NotFoundError
    else:
        cls = ApiError
        retryable = c == "SignatureNonceUsed"
    err = cls(**kwargs, string_to_sign=string_to_sign, retry_after=retry_after, hint=hint)
    if retryable:
        err.retryable = True
    err.clock_offset = _server_clock_offset(headers, now) if c.startswith(_SKEW_CODES) else None  # type: ignore[attr-defined]
    return err


def _decode(status: int, headers: httpx.Headers, raw: bytes, *, now: float) -> Response:
    text = raw.decode("utf-8", errors="replace")
    parsed: Any = None
    if raw.strip():
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    obj = parsed if isinstance(parsed, dict) else None
    if status >= 400:
        raise map_error(status, headers, obj, "" if obj is not None else text, now=now)
    if obj is None:
        what = "is not a JSON object" if raw.strip() else "is empty"
        raise BadResponseError(
            f"response body {what} (content type {headers.get('content-type', 'none')})",
            http_status=status,
            request_id=_header_request_id(headers),
        )
    if obj.get("Success") is False or obj.get("success") is False:
        # DLF reports some errors inside an HTTP 200 body.
        raise map_error(status, headers, obj, now=now)
    request_id = _first(obj, "RequestId", "requestId") or _header_request_id(headers)
    return Response(status=status, headers=headers, body=obj, request_id=request_id)


# --------------------------------------------------------------------------- shared HTTP clients

_POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0)
_sync_client: httpx.Client | None = None
_sync_lock = threading.Lock()
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _new_sync_client() -> httpx.Client:
    return httpx.Client(limits=_POOL_LIMITS, trust_env=False, follow_redirects=False)


def _new_async_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(limits=_POOL_LIMITS, trust_env=False, follow_redirects=False)


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
    client = _async_clients.get(loop)
    if client is None or client.is_closed:
        client = _async_clients[loop] = _new_async_client()
    return client


async def aclose_shared_client() -> None:
    """Close the running loop's shared client (for tests and orderly shutdowns)."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


# --------------------------------------------------------------------------- the client


class AlibabaCloudClient:
    """Sends signed :class:`Call` s with retries; returns :class:`Response` or raises.

    :param credentials: where to take credentials from, once per attempt.
    :param timeout: seconds for connect, read and write of one attempt.
    :param max_retries: retries after the first attempt, for retryable failures.
    :param correct_clock_skew: on a clock-skew rejection, sign with the server's clock from
        then on (the offset is read from the response's ``Date`` header) and retry once.
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
    ) -> None:
        self.credentials = credentials
        self.timeout = httpx.Timeout(timeout, pool=max(timeout, 60.0))
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
        host = call.endpoint.netloc
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
                headers = signing.pds_headers(
                    method=call.method,
                    host=host,
                    pathname=call.path,
                    query=call.query,
                    action=call.action,
                    version=call.version,
                    content_type=call.content_type,
                    access_key_id=creds.access_key_id or "",
                    access_key_secret=creds.access_key_secret or "",
                    security_token=creds.security_token,
                    date=signing.format_http_date(now),
                    nonce=nonce,
                )
        elif call.signer == "none":
            headers = {
                "host": host,
                "accept": "application/json",
                "x-acs-action": call.action,
                "x-acs-version": call.version,
                "x-acs-date": signing.format_acs_date(now),
                "x-acs-signature-nonce": nonce,
            }
            if call.content_type:
                headers["content-type"] = call.content_type
        else:
            self._require_keys(creds, call)
            headers = signing.acs3_headers(
                method=call.method,
                host=host,
                pathname=call.path,
                query=call.query,
                action=call.action,
                version=call.version,
                body=call.body,
                content_type=call.content_type,
                access_key_id=creds.access_key_id or "",
                access_key_secret=creds.access_key_secret or "",
                security_token=creds.security_token,
                date=signing.format_acs_date(now),
                nonce=nonce,
            )
            headers["accept"] = "application/json"
        headers["user-agent"] = USER_AGENT
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
                code.startswith(("InvalidSecurityToken", "MissingSecurityToken"))
                and self.credentials.refreshable
                and not state.refreshed_credentials
            ):
                state.refreshed_credentials = True
                self.credentials.invalidate()
                return True
            offset = getattr(exc, "clock_offset", None)
            if (
                code.startswith(_SKEW_CODES)
                and self.correct_clock_skew
                and offset is not None
                and not state.corrected_clock
            ):
                state.corrected_clock = True
                self.clock_offset += offset
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
        return float(
            tenacity.wait_exponential_jitter(initial=self.backoff_initial, max=self.backoff_max)(retry_state)
        )

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
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "wait": self._wait,
            "retry": tenacity.retry_if_exception(lambda e: self._should_retry(e, state)),
            "reraise": True,
            "before_sleep": before_sleep,
        }

    # ---- sync

    def send(self, call: Call) -> Response:
        """Send ``call`` and return the decoded response, retrying what may succeed later."""
        state = _CallState()
        for attempt in tenacity.Retrying(**self._retry_kwargs(call, state)):
            with attempt:
                return self._send_once(call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, call: Call) -> Response:
        headers = self._headers(call, self.credentials.get())
        client = shared_sync_client()
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
            raise TransportError(
                f"{call.action} to {call.endpoint.netloc}: {type(exc).__name__}: {exc}"
            ) from None
        return _decode(resp.status_code, resp.headers, b"".join(chunks), now=time.time())

    # ---- async

    async def asend(self, call: Call) -> Response:
        """Async :meth:`send`, on the event loop's shared connection pool; never blocks the loop."""
        state = _CallState()
        async for attempt in tenacity.AsyncRetrying(**self._retry_kwargs(call, state)):
            with attempt:
                return await self._asend_once(call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _asend_once(self, call: Call) -> Response:
        headers = self._headers(call, await self.credentials.aget())
        client = shared_async_client()
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
            raise TransportError(
                f"{call.action} to {call.endpoint.netloc}: {type(exc).__name__}: {exc}"
            ) from None
        return _decode(resp.status_code, resp.headers, b"".join(chunks), now=time.time())

    def _check_size(self, declared: str | None, resp: httpx.Response) -> None:
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            self._too_big(resp)

    def _too_big(self, resp: httpx.Response) -> None:
        raise BadResponseError(
            f"response body larger than {self.max_body_bytes} bytes",
            http_status=resp.status_code,
            request_id=_header_request_id(resp.headers),
        )
