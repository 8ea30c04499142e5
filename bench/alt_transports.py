"""Transports the client could have used instead, for ``bench/poll.py`` to compare.

:class:`AiohttpTransport` is a lean transport on one ``aiohttp.ClientSession`` per event loop,
with the same interface as the package's own ``LeanAsyncTransport`` (``send`` for the client's
hot path, ``handle_async_request`` for httpx): the numbers show why the package does not use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from airflow_aliyun_tasks._transport.shared import (
    DEFAULT_LIMITS,
    BodyTooLargeError,
    RawResponse,
    ssl_context,
    timeout_values,
    too_big,
)

if TYPE_CHECKING:
    import aiohttp


def _aiohttp_error(exc: BaseException) -> httpx.TransportError:
    """The httpx exception an httpx transport would raise for an aiohttp (or socket) failure."""
    import aiohttp

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, asyncio.TimeoutError):  # SocketTimeoutError, ServerTimeoutError, total timeout
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientResponseError):  # malformed response (bad status line...)
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        return httpx.ReadError(message)
    return httpx.TransportError(message)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An async HTTP/1.1 transport on one ``aiohttp.ClientSession`` (created on first use, in
    the running event loop; one transport per loop).

    :meth:`send` is the lean path: method, an absolute URL (sent as given: it is already
    percent-encoded, exactly as it was signed), headers and body in; status, headers and the
    whole body out, the body capped at ``max_body`` bytes.
    """

    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._closed:
            raise httpx.TransportError("the transport is closed")
        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=limits.keepalive_expiry if limits.keepalive_expiry is not None else 30.0,
            ssl=ssl_context(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            requote_redirect_url=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # aiohttp resends an idempotent request once, unseen, when a reused connection turns
        # out closed. httpx does not: the client's retry policy decides, and counts, every
        # attempt. (No public switch; the attribute exists since aiohttp 3.9.)
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        return self._session

    def _timeout(
        self, timeout: httpx.Timeout | Mapping[str, float | None], total: float | None = None
    ) -> aiohttp.ClientTimeout:
        key = (*timeout_values(timeout), total)
        cached = self._timeouts.get(key)
        if cached is None:
            import aiohttp

            connect, read, _write, pool, _ = key
            # aiohttp's ``connect`` covers the wait for a pooled connection plus connecting.
            total_connect = None if pool is None and connect is None else (pool or 0.0) + (connect or 0.0)
            # aiohttp's ``total`` covers the whole request, getting a connection included.
            whole = None if total is None else total + (total_connect or 0.0)
            cached = self._timeouts[key] = aiohttp.ClientTimeout(
                total=whole, connect=total_connect, sock_connect=connect, sock_read=read
            )
        return cached

    @staticmethod
    def url(url: str) -> Any:
        """``url`` as :meth:`send` takes it: a ``yarl.URL`` sent exactly as given, not re-encoded
        (callers cache it: a poll sends the same URL again)."""
        import yarl

        return yarl.URL(url, encoded=True)

    async def send(
        self,
        method: str,
        url: Any,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        content: bytes | None,
        timeout: httpx.Timeout | Mapping[str, float | None],
        max_body: int | None,
        *,
        decompress: bool = True,
        total: float | None = None,
    ) -> RawResponse:
        session = self._session or self._open()
        if isinstance(url, str):
            url = self.url(url)
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=content,
                timeout=self._timeout(timeout, total),
                allow_redirects=False,
                auto_decompress=decompress,
            ) as resp:
                raw_headers = resp.raw_headers
                if max_body is not None and too_big(resp.headers.get("content-length"), max_body):
                    raise BodyTooLargeError(resp.status, httpx.Headers(list(raw_headers)))
                stream = resp.content
                chunks: list[bytes] = []
                size = 0
                while chunk := await stream.readany():
                    size += len(chunk)
                    if max_body is not None and size > max_body:
                        raise BodyTooLargeError(resp.status, httpx.Headers(list(raw_headers)))
                    chunks.append(chunk)
                status = resp.status
        except BodyTooLargeError:
            raise
        except Exception as exc:
            if _is_transport_failure(exc):
                raise _aiohttp_error(exc) from None
            raise
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return RawResponse(
            status, list(raw_headers), body
        )  # headers made when read, as the lean transports do

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        skip = (b"content-length", b"transfer-encoding")
        raw = await self.send(
            request.method,
            str(request.url),
            [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in request.headers.raw
                if k.lower() not in skip
            ],
            body or None,
            request.extensions.get("timeout", {}),
            None,
            decompress=False,  # httpx decodes the body itself
        )
        return httpx.Response(raw.status, headers=raw.headers.raw, content=raw.body, request=request)

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def __del__(self) -> None:
        # A loop closed without shutting down its async generators (where the client closes
        # its transport): there is nothing left to close sockets on; mark the session closed
        # so that aiohttp does not report it as leaked.
        session = self._session
        if session is None or session.closed:
            return
        try:
            loop = session._loop
            if loop.is_closed():
                connector = session.connector
                session.detach()
                if connector is not None:
                    connector._close()
        except Exception:
            pass


def _is_transport_failure(exc: BaseException) -> bool:
    if isinstance(exc, OSError | asyncio.TimeoutError):
        return True
    aiohttp = _aiohttp_module()
    return aiohttp is not None and isinstance(exc, aiohttp.ClientError)


def _aiohttp_module() -> Any:
    import sys

    return sys.modules.get("aiohttp")
