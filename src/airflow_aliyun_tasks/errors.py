"""One exception hierarchy for everything the package raises.

Every error carries what a user needs to act on it (HTTP status, the service's error code and
message, the request id) and never a secret: messages are built from server responses and
field names only.
"""

from __future__ import annotations


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
