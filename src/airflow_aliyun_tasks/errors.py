"""One exception hierarchy for everything the package raises, and :func:`map_error`, which
turns a service's error answer into it.

Every error carries what a user needs to act on it (HTTP status, the service's error code and
message, the request id) and never a secret: messages are built from server responses and
field names only.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_RETRY_AFTER",
    "SKEW_CODES",
    "STALE_TEMPORARY_KEY_CODES",
    "AlibabaCloudError",
    "ApiError",
    "AuthenticationError",
    "BadResponseError",
    "ConfigurationError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServiceError",
    "ThrottledError",
    "TransportError",
    "first_field",
    "header_request_id",
    "is_transient",
    "map_error",
]


class AlibabaCloudError(Exception):
    """Base class of every error this package raises."""

    #: whether retrying the same request later may succeed
    retryable: bool = False


class ConfigurationError(AlibabaCloudError, ValueError):
    """A connection field or argument is missing or invalid; raised before any request.

    :param field: the name of the offending field (a connection extra, ``login``, an id...).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class TransportError(AlibabaCloudError):
    """The request did not get an HTTP response (connection refused or dropped, timeout)."""

    retryable = True


class BadResponseError(AlibabaCloudError):
    """The server answered, but not with what the API documents (not JSON, wrong shape, too big)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.request_id = request_id
        text = message
        if http_status is not None:
            text += f" (HTTP {http_status})"
        if request_id:
            text += f" [RequestId: {request_id}]"
        super().__init__(text)


class ApiError(AlibabaCloudError):
    """The service answered with an error.

    :param http_status: the HTTP status code.
    :param code: the service's error code (``Throttling.User``, ``SignatureDoesNotMatch`` ...).
    :param message: the service's error message.
    :param request_id: the request id, for Alibaba Cloud support.
    :param string_to_sign: for ``SignatureDoesNotMatch``, the server's string to sign.
    :param retry_after: seconds the server asked to wait (``x-acs-retry-after``), if any.
    """

    def __init__(
        self,
        *,
        http_status: int,
        code: str | None,
        message: str | None,
        request_id: str | None = None,
        string_to_sign: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.string_to_sign = string_to_sign
        self.retry_after = retry_after
        self.hint = hint
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"HTTP {self.http_status}"
        if self.code:
            text += f" {self.code}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" [RequestId: {self.request_id}]"
        if self.hint:
            text += f". {self.hint}"
        return text


class AuthenticationError(ApiError):
    """The credentials were rejected (unknown or disabled key, bad signature, expired token, clock)."""


class PermissionDeniedError(ApiError):
    """The credentials are valid but RAM denies the action."""


class NotFoundError(ApiError):
    """The task, resource or API was not found."""


class ThrottledError(ApiError):
    """The service throttled the request."""

    retryable = True


class ServiceError(ApiError):
    """The service failed on its side (5xx, ServiceUnavailable, InternalError)."""

    retryable = True


def is_transient(exc: BaseException) -> bool:
    """True for errors that a later poll may not see again."""
    return isinstance(exc, AlibabaCloudError) and exc.retryable


# --------------------------------------------------------------------------- from an HTTP answer

#: The longest wait an ``x-acs-retry-after`` header is honoured for, in seconds.
MAX_RETRY_AFTER = 30.0

#: Codes (and prefixes) of rejected credentials or signatures.
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
#: What a gateway answers for STS credentials it no longer accepts (expired, or a temporary
#: AccessKey ID it has forgotten): a refreshing source fetches new ones and the call is retried once.
STALE_TEMPORARY_KEY_CODES = ("InvalidSecurityToken", "MissingSecurityToken", "InvalidAccessKeyId.NotFound")
#: What a gateway answers for a request whose date is too far from its clock.
SKEW_CODES = ("InvalidTimeStamp", "IllegalTimestamp", "RequestTimeTooSkewed", "InvalidTime")
#: Codes of a failure on the service's side (retried, as HTTP 5xx are).
_SERVICE_CODES = ("ServiceUnavailable", "InternalError", "InternalFailure", "UnknownError")


def header_request_id(headers: httpx.Headers) -> str | None:
    """The request id a gateway put in the response headers, if any (Function Compute's is
    ``x-fc-request-id``)."""
    value: str | None = (
        headers.get("x-acs-request-id") or headers.get("x-ca-request-id") or headers.get("x-fc-request-id")
    )
    return value


def first_field(body: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` whose value in ``body`` is a non-empty string or a number, as a string."""
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


_TOKEN_IN_TEXT = re.compile(r"(x-acs-security-token\s*:\s*)[^\s]+", re.IGNORECASE)


def _redact_token(text: str) -> str:
    """``text`` with the value of any ``x-acs-security-token`` header in it masked."""
    return _TOKEN_IN_TEXT.sub(r"\1***", text) if "token" in text.lower() else text


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait before retrying, from ``x-acs-retry-after`` (milliseconds, as the official
    SDK reads it), at most :data:`MAX_RETRY_AFTER`; None if absent or not a finite number."""
    raw = headers.get("x-acs-retry-after")
    if not raw:
        return None
    try:
        millis = float(raw)
    except ValueError:
        return None
    # A value that is not a finite number (nan, inf) is ignored: the usual backoff applies.
    return min(max(millis / 1000.0, 0.0), MAX_RETRY_AFTER) if math.isfinite(millis) else None


def _hint(
    code: str, message: str | None, headers: httpx.Headers, now: float
) -> tuple[str | None, str | None]:
    """The server's string to sign (of a signature mismatch) and what to do about the error."""
    string_to_sign = hint = None
    if code == "SignatureDoesNotMatch" and message and "string to sign is:" in message:
        string_to_sign = message.split("string to sign is:", 1)[1].strip()
        hint = (
            "Check that the AccessKey Secret belongs to the AccessKey ID; the server's string to "
            "sign is in the exception's string_to_sign attribute"
        )
    if code.startswith(SKEW_CODES):
        offset = _server_clock_offset(headers, now)
        if offset is not None:
            hint = (
                f"This machine's clock is off: the server's clock is {offset:+.0f} s from it. "
                "Fix the clock (NTP), or set the connection extra correct_clock_skew to true"
            )
        else:
            hint = "This machine's clock is probably off by more than 15 minutes; fix it (NTP)"
    return string_to_sign, hint


#: Fields of an HTTP 200 error body that state the HTTP status the error stands for (DLF's
#: ``HttpStatusCode``; Flink's ``httpCode``, documented as always 200).
_STATED_STATUS_FIELDS = ("HttpStatusCode", "httpStatusCode", "httpCode")
#: Fields of an error body that explain a RAM refusal (Flink's ``accessDeniedDetail``, the POP
#: gateway's ``AccessDeniedDetail``).
_ACCESS_DENIED_FIELDS = ("AccessDeniedDetail", "accessDeniedDetail")


def _error_class(code: str, status: int, headers: httpx.Headers, body: Mapping[str, Any]) -> type[ApiError]:
    """The exception class of an error answer, by its code and HTTP status."""
    if status < 400:
        # An error inside an HTTP 200 body (DLF's Success: false, Flink's success: false): judged
        # by its code, by the HTTP status the body states, if any, and by a RAM refusal's detail.
        stated = next((body.get(k) for k in _STATED_STATUS_FIELDS if body.get(k) is not None), None)
        if isinstance(stated, int) and not isinstance(stated, bool) and 400 <= stated <= 599:
            status = stated
        if any(body.get(k) for k in _ACCESS_DENIED_FIELDS) and not code.startswith("Throttling"):
            return PermissionDeniedError
    if code.startswith("Throttling") or code == "Rejected.Throttling" or status == 429:
        return ThrottledError
    if code in _SERVICE_CODES or status >= 500 or (code.startswith("D5") and "x-ca-error-code" in headers):
        return ServiceError
    if code.startswith(_AUTH_CODES) or status == 401:
        return AuthenticationError
    if code.startswith(("Forbidden", "NoPermission")) or status == 403:
        return PermissionDeniedError
    if status == 404 or code.endswith("NotFound") or ".NotFound" in code or code.startswith("NoSuch"):
        return NotFoundError
    return ApiError


def map_error(
    status: int, headers: httpx.Headers, body: Mapping[str, Any] | None, text: str = "", *, now: float
) -> AlibabaCloudError:
    """Turn an error response into the package's exception, keeping code, message and request id."""
    body = body or {}
    code = first_field(body, "Code", "code", "ErrorCode", "errorCode") or headers.get("x-ca-error-code")
    message = first_field(
        body, "Message", "message", "ErrorMessage", "errorMessage", "errorMsg"
    ) or headers.get("x-ca-error-message")
    request_id = first_field(body, "RequestId", "requestId", "requestid") or header_request_id(headers)
    if not code and not message and text:
        snippet = " ".join(text.split())[:200]
        message = f"non-JSON error body ({headers.get('content-type', 'no content type')}): {snippet}"
    if message:
        # PDS echoes the x-acs-security-token header (an STS token) in its string to sign.
        message = _redact_token(message)
    c = code or ""
    string_to_sign, hint = _hint(c, message, headers, now)
    cls = _error_class(c, status, headers, body)
    err = cls(
        http_status=status,
        code=code,
        message=message,
        request_id=request_id,
        string_to_sign=string_to_sign,
        retry_after=_retry_after(headers),
        hint=hint,
    )
    if cls is ApiError and c == "SignatureNonceUsed":
        err.retryable = True
    err.clock_offset = _server_clock_offset(headers, now) if c.startswith(SKEW_CODES) else None  # type: ignore[attr-defined]
    return err
