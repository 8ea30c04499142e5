"""Lean HTTP/1.1 transports under the package's httpx API.

httpx is the package's HTTP client API: its ``Timeout``, ``Limits``, ``Headers`` and exception
classes. What moves the bytes is chosen by ``bench/`` (see ``bench/RESULTS.md``): per status
poll, httpx's own client layer costs several times a whole poll of a lean client, and so does
an ``aiohttp`` session's, so the client's hot path calls these transports directly:

- :class:`LeanAsyncTransport` (:mod:`.async_transport`): asyncio protocols with
  ``httptools``' HTTP parser (llhttp, in C) and a keep-alive pool, one per event loop.
  ``httptools`` is imported on first use only.
- :class:`LeanSyncTransport` (:mod:`.sync_transport`): a thread-safe keep-alive pool of the
  standard library's ``http.client`` connections.
- :mod:`.shared`: what both use (limits, the response types, TLS context, the request as sent,
  response caps and decoding).
- :mod:`.senders`: the one send interface the client calls (the lean transports implement it)
  and the adapters that put an ``httpx`` client behind it (routes through a proxy or with
  private CAs).

Both are also ``httpx`` transports (``handle_async_request`` / ``handle_request``), so the
shared ``httpx`` clients built on them behave like any other. Failures are raised as the
``httpx`` exceptions httpx's own transports raise (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``PoolTimeout``, ``RemoteProtocolError``...), so error mapping does not
depend on the transport. Like the package's httpx clients, neither follows redirects or reads
proxy settings from the environment, and both ask for ``gzip, deflate`` and decode it.
"""

from __future__ import annotations

from airflow_aliyun_tasks._transport.async_transport import READ_TIMEOUT_CHECK, LeanAsyncTransport
from airflow_aliyun_tasks._transport.senders import AsyncSender, HttpxAsyncSender, HttpxSyncSender, SyncSender
from airflow_aliyun_tasks._transport.shared import (
    DEFAULT_LIMITS,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    BodyTooLargeError,
    RawResponse,
    ssl_context,
)
from airflow_aliyun_tasks._transport.sync_transport import LeanSyncTransport

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "READ_TIMEOUT_CHECK",
    "AsyncSender",
    "BodyTooLargeError",
    "HttpxAsyncSender",
    "HttpxSyncSender",
    "LeanAsyncTransport",
    "LeanSyncTransport",
    "RawResponse",
    "SyncSender",
    "ssl_context",
]
