"""HTTP client: signed calls to Alibaba Cloud, with retries.

- :func:`build_client` is the one place clients are built: from a connection's settings (its
  network route, CAs, timeouts, User-Agent, retry and clock settings) and a credential source.
  The hook's per-connection client and the STS credential sources' clients are built there, so
  every request the package sends honours the connection's network settings.
- Retries are chosen per call (``send(call, retries=False)``: one attempt, for a start that
  must not be repeated), as is the timeout (the Test button's short one).
- Requests go out on the shared clients of :mod:`airflow_aliyun_tasks._loop_clients` (one per
  process, one per event loop, one per route), through one send interface
  (:mod:`airflow_aliyun_tasks._transport.senders`): the lean transports for direct
  connections, chosen by ``bench/`` (per poll, httpx's client layer alone costs more than a
  whole lean poll), httpx's own transports where a proxy or private CAs apply
  (:mod:`airflow_aliyun_tasks.network`).
- Every attempt is signed afresh (new date and nonce); what does not change between polls of
  the same call (URL, canonical request around date and nonce, HMAC key) is computed once.
- Retries (tenacity, capped exponential backoff with jitter, honouring ``x-acs-retry-after``):
  transport errors and timeouts, HTTP 5xx, ``Throttling*``, ``ServiceUnavailable``,
  ``InternalError``, ``SignatureNonceUsed`` and PDS gateway ``D5xx`` errors. Corrective retries
  come on top, once each, with or without retries: expired STS credentials of a refreshing
  source are refreshed, and (``correct_clock_skew``) a clock-skew answer sets the clock offset.
  Everything else fails fast with the server's code, message and request id.
- Response bodies are capped (:data:`MAX_BODY_BYTES`) and decoded by
  :mod:`airflow_aliyun_tasks._decode`.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import tenacity

from airflow_aliyun_tasks._call import Call, Signer, call_url
from airflow_aliyun_tasks._decode import Response, decode
from airflow_aliyun_tasks._loop_clients import (
    aclose_shared_client,
    async_sender,
    route_async_client,
    route_sync_client,
    shared_async_client,
    shared_sync_client,
    sync_sender,
)
from airflow_aliyun_tasks._transport import BodyTooLargeError
from airflow_aliyun_tasks.config import NetworkSettings
from airflow_aliyun_tasks.credentials import Credentials, CredentialSource
from airflow_aliyun_tasks.errors import (
    SKEW_CODES,
    STALE_TEMPORARY_KEY_CODES,
    AlibabaCloudError,
    ApiError,
    AuthenticationError,
    BadResponseError,
    ServiceError,
    ThrottledError,
    TransportError,
    header_request_id,
)
from airflow_aliyun_tasks.network import Route, Router

if TYPE_CHECKING:
    from airflow_aliyun_tasks.config import ConnectionSettings

__all__ = [
    "MAX_BODY_BYTES",
    "AlibabaCloudClient",
    "Call",
    "Response",
    "Signer",
    "aclose_shared_client",
    "build_client",
    "default_user_agent",
    "route_async_client",
    "route_sync_client",
    "shared_async_client",
    "shared_sync_client",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a status body is a few hundred bytes


def signature_nonce() -> str:
    """A fresh ``x-acs-signature-nonce``: 128 random bits as 32 hex digits (what ``uuid4().hex``
    gave, without building a UUID object per request)."""
    return os.urandom(16).hex()


@functools.cache
def default_user_agent() -> str:
    """``airflow-aliyun-tasks/<version> apache-airflow/<version> Python/<version>``.

    The versions are the modules' ``__version__`` (this package's is the one its distribution is
    built with), not ``importlib.metadata``: that scans every installed distribution, and the
    memory its parsing leaves behind would be paid by every triggerer that starts a wait."""
    from airflow import __version__ as airflow_version

    from airflow_aliyun_tasks import __version__

    python = ".".join(map(str, sys.version_info[:3]))
    return f"airflow-aliyun-tasks/{__version__} apache-airflow/{airflow_version} Python/{python}"


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


def build_client(settings: ConnectionSettings, credentials: CredentialSource) -> AlibabaCloudClient:
    """The client of a connection's ``settings`` signing with ``credentials``: the one place the
    package builds clients (the hook's, per connection, and the STS credential sources')."""
    return AlibabaCloudClient(
        credentials,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        max_retries=settings.max_retries,
        correct_clock_skew=settings.correct_clock_skew,
        user_agent=settings.user_agent,
        network=settings.network,
    )


class AlibabaCloudClient:
    """Sends signed :class:`Call` s with retries; returns :class:`Response` or raises. The
    package builds its clients with :func:`build_client`, from a connection's settings.

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
        self.connect_timeout = connect_timeout
        self.timeout = self._timeouts(timeout)
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

    def _timeouts(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=self.connect_timeout or seconds, pool=max(seconds, 60.0))

    # ---- signing

    def _headers(self, call: Call, creds: Credentials) -> Mapping[str, str]:
        """The signed headers of one attempt of ``call`` (a new date and nonce)."""
        now = time.time() + self.clock_offset
        return call._plan.headers(call, creds, now, signature_nonce(), self.user_agent)

    @staticmethod
    def url(call: Call) -> str:
        return call_url(call)

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

    def _retry_kwargs(self, call: Call, state: _CallState, retries: bool) -> dict[str, Any]:
        def before_sleep(rs: tenacity.RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome else None
            log.warning(
                "%s attempt %d failed, retrying in %.2f s: %s",
                call.action,
                rs.attempt_number,
                rs.upcoming_sleep,
                exc,
            )

        max_retries = self.max_retries if retries else 0
        return {
            # Corrective retries (fresh credentials, the server's clock) come on top of max_retries.
            "stop": lambda rs: rs.attempt_number >= max_retries + 1 + state.corrective_retries,
            "wait": self._wait,
            "retry": tenacity.retry_if_exception(lambda e: self._should_retry(e, state)),
            "reraise": True,
            "before_sleep": before_sleep,
        }

    # ---- sending

    def send(self, call: Call, *, retries: bool = True, timeout: float | None = None) -> Response:
        """Send ``call`` and return the decoded response, retrying what may succeed later.

        ``retries=False`` makes one attempt (the corrective retries aside: fresh credentials,
        the server's clock), for a call that must not be repeated. ``timeout``: seconds per
        attempt for this call, instead of the client's ``timeout``.
        """
        limits = self.timeout if timeout is None else self._timeouts(timeout)
        try:
            return self._send_once(call, limits)  # the first attempt, without the retry machinery
        except Exception as exc:
            first: BaseException | None = exc
        state = _CallState()
        for attempt in tenacity.Retrying(**self._retry_kwargs(call, state, retries)):
            with attempt:
                if first is not None:  # attempt 1 is the one above: tenacity decides as before
                    failed, first = first, None
                    raise failed
                return self._send_once(call, limits)
        raise AssertionError("unreachable")  # pragma: no cover

    async def asend(
        self,
        call: Call,
        *,
        retries: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 - per attempt, as send's
    ) -> Response:
        """Async :meth:`send`, on the event loop's shared connection pool; never blocks the loop."""
        limits = self.timeout if timeout is None else self._timeouts(timeout)
        try:
            return await self._asend_once(call, limits)  # the first attempt, without the retry machinery
        except Exception as exc:
            first: BaseException | None = exc
        state = _CallState()
        async for attempt in tenacity.AsyncRetrying(**self._retry_kwargs(call, state, retries)):
            with attempt:
                if first is not None:  # attempt 1 is the one above: tenacity decides as before
                    failed, first = first, None
                    raise failed
                return await self._asend_once(call, limits)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, call: Call, timeout: httpx.Timeout) -> Response:
        try:
            creds = self.credentials.get()
        except AlibabaCloudError as exc:
            raise _from_source(exc) from None
        headers = self._headers(call, creds)
        route = None if self._router is None else self._router.route(call.endpoint)
        sender = sync_sender(route)
        try:
            raw = sender.send(
                call.method,
                call._plan.wire_url(call, sender),
                headers,
                call.body or None,
                timeout,
                self.max_body_bytes,
                total=timeout.read,  # the connection's `timeout` bounds each attempt as a whole
            )
        except (BodyTooLargeError, httpx.HTTPError) as exc:
            raise self._failure(call, exc, route) from None
        return decode(raw, now=time.time(), empty_ok=call.empty_ok)

    async def _asend_once(self, call: Call, timeout: httpx.Timeout) -> Response:  # noqa: ASYNC109
        try:
            creds = await self.credentials.aget()
        except AlibabaCloudError as exc:
            raise _from_source(exc) from None
        headers = self._headers(call, creds)
        route = None if self._router is None else self._router.route(call.endpoint)
        sender = async_sender(route)
        try:
            raw = await sender.send(
                call.method,
                call._plan.wire_url(call, sender),
                headers,
                call.body or None,
                timeout,
                self.max_body_bytes,
                total=timeout.read,  # the connection's `timeout` bounds each attempt as a whole
            )
        except (BodyTooLargeError, httpx.HTTPError) as exc:
            raise self._failure(call, exc, route) from None
        return decode(raw, now=time.time(), empty_ok=call.empty_ok)

    def _failure(
        self, call: Call, exc: BodyTooLargeError | httpx.HTTPError, route: Route | None
    ) -> AlibabaCloudError:
        if isinstance(exc, BodyTooLargeError):
            return BadResponseError(
                f"response body larger than {self.max_body_bytes} bytes",
                http_status=exc.status,
                request_id=header_request_id(exc.headers),
            )
        return self._transport_error(call, exc, route)

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
