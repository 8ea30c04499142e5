"""``map_error``: a service's error answer mapped onto the exception hierarchy (pure, offline)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from airflow_aliyun_tasks.errors import (
    MAX_RETRY_AFTER,
    ApiError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ThrottledError,
    map_error,
)


def _map(
    status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, text: str = ""
):
    return map_error(status, httpx.Headers(headers or {}), body, text, now=time.time())


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "retryable"),
    [
        (403, {"Code": "Forbidden.RAM", "Message": "denied"}, {}, PermissionDeniedError, False),
        (403, {"Code": "NoPermission"}, {}, PermissionDeniedError, False),
        (429, {"Code": "TooManyRequests"}, {}, ThrottledError, True),
        (400, {"Code": "Rejected.Throttling"}, {}, ThrottledError, True),
        (400, {"Code": "Throttling.Api"}, {}, ThrottledError, True),
        (400, {"Code": "UnknownError"}, {}, ServiceError, True),
        (401, {}, {}, AuthenticationError, False),
        (400, {"Code": "IncompleteSignature"}, {}, AuthenticationError, False),
        (400, {"code": "InvalidParameter", "message": "bad", "requestId": "r1"}, {}, ApiError, False),
        (404, {"Code": "InvalidApi.NotFound"}, {}, NotFoundError, False),
        (400, {"Code": "InvalidVersion"}, {}, ApiError, False),
        (504, None, {"x-ca-error-code": "D504TO", "x-ca-request-id": "rid"}, ServiceError, True),
        (400, None, {"x-ca-error-code": "D400XX"}, ApiError, False),
    ],
)
def test_map_error_classes(
    status: int, body: dict[str, Any] | None, headers: dict[str, str], cls: type, retryable: bool
) -> None:
    err = _map(status, body, headers)
    assert type(err) is cls
    assert err.retryable is retryable
    assert isinstance(err, ApiError)
    assert err.http_status == status


def test_map_error_fields_and_fallbacks() -> None:
    err = _map(400, {"code": "X.Y", "message": "m", "requestId": "rid-1"})
    assert isinstance(err, ApiError)
    assert (err.code, err.message, err.request_id) == ("X.Y", "m", "rid-1")
    err = _map(500, None, {"x-acs-request-id": "rid-2", "content-type": "text/plain"}, text="oops\n  broken")
    assert isinstance(err, ServiceError)
    assert err.request_id == "rid-2"
    assert "non-JSON error body (text/plain): oops broken" in str(err)
    err = _map(500, None, {"x-ca-error-code": "D500", "x-ca-error-message": "gateway"})
    assert isinstance(err, ApiError)
    assert (err.code, err.message) == ("D500", "gateway")


@pytest.mark.parametrize(
    ("raw", "expected"), [("200", 0.2), ("0", None), ("-5", None), ("abc", None), ("999999", MAX_RETRY_AFTER)]
)
def test_map_error_retry_after(raw: str, expected: float | None) -> None:
    err = _map(400, {"Code": "Throttling.User"}, {"x-acs-retry-after": raw})
    assert isinstance(err, ApiError)
    if expected is None:
        assert not err.retry_after
    else:
        assert err.retry_after == pytest.approx(expected)


def test_map_error_skew_without_date_header() -> None:
    err = _map(400, {"Code": "InvalidTimeStamp.Expired", "Message": "expired"})
    assert isinstance(err, AuthenticationError)
    assert err.clock_offset is None  # type: ignore[attr-defined]
    assert "15 minutes" in str(err)
