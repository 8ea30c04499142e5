"""The one interface the client sends through, and httpx clients behind it.

A *sender* takes one request and returns its whole response, body capped::

    sender.url(url) -> wire URL          # once per call: the client caches it
    sender.send(method, wire_url, headers, body, timeout, max_body, total=...) -> RawResponse

raising :class:`~.shared.BodyTooLargeError` past ``max_body`` bytes and httpx's exceptions on a
failure. The lean transports are senders themselves; :class:`HttpxSyncSender` and
:class:`HttpxAsyncSender` put an ``httpx`` client (a route's: a proxy, private CAs; or one a
benchmark swaps in) behind the same interface, so the client has a single send path whichever
transport moves the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from airflow_aliyun_tasks._transport.shared import BodyTooLargeError, RawResponse, too_big

__all__ = ["AsyncSender", "HttpxAsyncSender", "HttpxSyncSender", "SyncSender"]


class SyncSender(Protocol):
    def url(self, url: str, /) -> Any: ...

    def send(
        self,
        method: str,
        url: Any,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: httpx.Timeout,
        max_body: int | None,
        *,
        total: float | None = None,
    ) -> RawResponse: ...


class AsyncSender(Protocol):
    def url(self, url: str, /) -> Any: ...

    async def send(
        self,
        method: str,
        url: Any,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: httpx.Timeout,  # noqa: ASYNC109 - per phase, as httpx's
        max_body: int | None,
        *,
        total: float | None = None,
    ) -> RawResponse: ...


class _Body:
    """The body of one streamed httpx response, refused past ``max_body`` bytes (as declared by
    ``content-length`` or as read, decoded)."""

    __slots__ = ("chunks", "max_body", "response", "size")

    def __init__(self, response: httpx.Response, max_body: int | None) -> None:
        if max_body is not None and too_big(response.headers.get("content-length"), max_body):
            raise BodyTooLargeError(response.status_code, response.headers)
        self.response = response
        self.max_body = max_body
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_body is not None and self.size > self.max_body:
            raise BodyTooLargeError(self.response.status_code, self.response.headers)
        self.chunks.append(chunk)

    def raw(self) -> RawResponse:
        return RawResponse(self.response.status_code, self.response.headers, b"".join(self.chunks))


class HttpxSyncSender:
    """An ``httpx.Client`` as a sender. ``total`` is not applied: httpx bounds each phase (its
    read timeout between received bytes), not a whole response."""

    __slots__ = ("client",)

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @staticmethod
    def url(url: str, /) -> str:
        return url

    def send(
        self,
        method: str,
        url: Any,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: httpx.Timeout,
        max_body: int | None,
        *,
        total: float | None = None,
    ) -> RawResponse:
        with self.client.stream(method, url, headers=headers, content=content, timeout=timeout) as resp:
            body = _Body(resp, max_body)
            for chunk in resp.iter_bytes():
                body.add(chunk)
        return body.raw()


class HttpxAsyncSender:
    """An ``httpx.AsyncClient`` as a sender (``total`` as in :class:`HttpxSyncSender`)."""

    __slots__ = ("client",)

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def url(url: str, /) -> str:
        return url

    async def send(
        self,
        method: str,
        url: Any,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: httpx.Timeout,  # noqa: ASYNC109 - per phase, as httpx's
        max_body: int | None,
        *,
        total: float | None = None,
    ) -> RawResponse:
        async with self.client.stream(method, url, headers=headers, content=content, timeout=timeout) as resp:
            body = _Body(resp, max_body)
            async for chunk in resp.aiter_bytes():
                body.add(chunk)
        return body.raw()
