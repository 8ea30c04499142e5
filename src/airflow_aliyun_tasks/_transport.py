"""Lean HTTP/1.1 transports under the package's httpx API.

httpx is the package's HTTP client API: its ``Timeout``, ``Limits``, ``Headers`` and exception
classes. What moves the bytes is chosen by ``bench/`` (see ``bench/RESULTS.md``): per status
poll, httpx's own client layer costs several times a whole poll of a lean client, and so does
an ``aiohttp`` session's, so the client's hot path calls these transports directly:

- :class:`H1Transport` (async): asyncio protocols with ``httptools``' HTTP parser (llhttp, in
  C) and a keep-alive pool, one per event loop. ``httptools`` is imported on first use only.
- :class:`HttpClientTransport` (sync): a thread-safe keep-alive pool of the standard library's
  ``http.client`` connections.

Both are also ``httpx`` transports (``handle_async_request`` / ``handle_request``), so the
shared ``httpx`` clients built on them behave like any other. Failures are raised as the
``httpx`` exceptions httpx's own transports raise (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``PoolTimeout``, ``RemoteProtocolError``...), so error mapping does not
depend on the transport. Like the package's httpx clients, neither follows redirects or reads
proxy settings from the environment, and both ask for ``gzip, deflate`` and decode it.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import os
import select
import ssl
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

DEFAULT_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0)
_READ_CHUNK = 65536
#: The most bytes and lines of response head (status line and headers) either transport reads
#: (http.client's own limits are 100 headers and 64 KiB per line): a server that floods headers
#: gets a ``RemoteProtocolError``, as one that sends too big a body gets ``BodyTooLargeError``.
MAX_HEADER_BYTES = 65536
MAX_HEADERS = 100


class RawResponse(NamedTuple):
    status: int
    headers: httpx.Headers
    body: bytes


class BodyTooLargeError(Exception):
    """The response body is larger than the caller's cap (status and headers are known)."""

    def __init__(self, status: int, headers: httpx.Headers) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers


def ssl_context() -> ssl.SSLContext:
    """The TLS context httpx builds for ``trust_env=False`` (certifi's CA bundle), HTTP/1.1 ALPN."""
    ctx = httpx.create_ssl_context(trust_env=False)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _timeout_values(timeout: httpx.Timeout | Mapping[str, float | None]) -> tuple[Any, Any, Any, Any]:
    if isinstance(timeout, httpx.Timeout):
        return timeout.connect, timeout.read, timeout.write, timeout.pool
    return timeout.get("connect"), timeout.get("read"), timeout.get("write"), timeout.get("pool")


def _wire_cap(max_body: int, encoded: bool) -> int:
    """The most body bytes read off the wire: ``max_body``, or for a compressed body (capped
    again once decoded) twice that, which no compressed form of an acceptable body exceeds."""
    return 2 * max_body + 1024 if encoded else max_body


def _too_big(declared: str | None, max_body: int | None) -> bool:
    return bool(max_body is not None and declared and declared.isdigit() and int(declared) > max_body)


# --------------------------------------------------------------------------- async: httptools


_DISCONNECTED = "Server disconnected without sending a response."
_INCOMPLETE = "peer closed connection without sending complete message body"


class _Target(NamedTuple):
    scheme: str
    host: str
    port: int
    target: str  # path and query, sent as given (already percent-encoded, as signed)


#: How often in-flight requests are checked against their read timeout: a read timeout fires
#: between ``timeout`` and ``timeout + READ_TIMEOUT_CHECK`` seconds without a byte received.
READ_TIMEOUT_CHECK = 0.1


class _ReadWatch:
    """Read timeouts of one transport's in-flight requests, checked by one timer while any is
    in flight (a timer per request would cost a TimerHandle, and a cancelled one lingers in the
    loop's heap until its due time)."""

    __slots__ = ("busy", "handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.busy: set[_H1Connection] = set()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, conn: _H1Connection) -> None:
        self.busy.add(conn)
        if self.handle is None:
            self.handle = self.loop.call_later(READ_TIMEOUT_CHECK, self.check)

    def check(self) -> None:
        self.handle = None
        now = self.loop.time()
        expired = [
            c
            for c in self.busy
            if (c.read_timeout is not None and now - c.last_data >= c.read_timeout)
            or (c.deadline is not None and now >= c.deadline)
        ]
        for conn in expired:
            conn._fail(httpx.ReadTimeout("timed out"))
        if self.busy:
            self.handle = self.loop.call_later(READ_TIMEOUT_CHECK, self.check)


class _H1Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; one request at a time; llhttp (httptools) parses."""

    def __init__(self, key: tuple[str, str, int], loop: asyncio.AbstractEventLoop, watch: _ReadWatch) -> None:
        import httptools

        self.key = key
        self.loop = loop
        self.watch = watch
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes, bool]] | None = None
        self.read_timeout: float | None = None
        self.deadline: float | None = None  # loop time by which the whole response must be in
        self.last_data = 0.0
        self.max_body: int | None = None
        self.head_only = False
        self.decoding = True
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers_done = False
        self.head_size = 0
        self.encoded = False
        self.framed = False

    # ---- the request

    def request(
        self,
        data: bytes,
        read_timeout: float | None,
        max_body: int | None,
        *,
        head_only: bool,
        decoding: bool,
        total: float | None = None,
    ) -> asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes, bool]]:
        self._reset()
        self.max_body, self.head_only, self.decoding = max_body, head_only, decoding
        waiter = self.waiter = self.loop.create_future()
        assert self.transport is not None
        self.transport.write(data)
        self.read_timeout = read_timeout
        now = self.loop.time()
        self.deadline = None if total is None else now + total
        if read_timeout is not None or total is not None:
            self.last_data = now
            self.watch.add(self)
        return waiter

    def _finish(self, keep: bool) -> None:
        waiter = self.waiter
        self.watch.busy.discard(self)
        if waiter is not None and not waiter.done():
            chunks = self.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            waiter.set_result((self.status, self.headers, body, keep))
        if not keep:
            self.close()

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        self.watch.busy.discard(self)
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and not self.framed:
            self._finish(False)  # a body delimited by the end of the connection
        elif isinstance(exc, OSError):
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
        else:
            self._fail(httpx.RemoteProtocolError(_INCOMPLETE if self.status else _DISCONNECTED))

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        self.last_data = self.loop.time() if self.read_timeout is not None else 0.0
        import httptools

        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))
            return
        if not self.headers_done:  # the parser buffers an unfinished header line itself
            self.head_size += len(data)
            if self.head_size > MAX_HEADER_BYTES:
                self._fail(httpx.RemoteProtocolError(f"response head larger than {MAX_HEADER_BYTES} bytes"))

    # ---- httptools callbacks (they must not raise: a failure fails the waiter)

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.headers
        if len(headers) >= MAX_HEADERS:
            self._fail(httpx.RemoteProtocolError(f"more than {MAX_HEADERS} response headers"))
            return
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = status = self.parser.get_status_code()
        if 100 <= status < 200:
            return
        self.headers_done = True
        declared = None
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length":
                declared = value
                self.framed = True
            elif lower == b"transfer-encoding":
                self.framed = True
            elif lower == b"content-encoding" and self.decoding:
                self.encoded = True
        if status in (204, 304):
            self.framed = True
        if declared is not None and _too_big(declared.decode("latin-1"), self.max_body):
            self._fail(BodyTooLargeError(status, httpx.Headers(self.headers)))
        elif self.head_only:
            self._finish(False)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.max_body is not None and self.size > _wire_cap(self.max_body, self.encoded):
            self._fail(BodyTooLargeError(self.status, httpx.Headers(self.headers)))
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim response: the real one follows
            self._reset()
            return
        self._finish(self.parser.should_keep_alive())


class H1Transport(httpx.AsyncBaseTransport):
    """An async HTTP/1.1 transport: asyncio protocols, httptools' parser (llhttp, in C), and a
    keep-alive pool of at most ``max_connections`` connections (all hosts together); requests
    beyond it wait for a connection, up to the pool timeout.

    Timeouts as httpx applies them: connect (TCP and TLS), read (between received bytes) and
    pool (waiting for a connection). Writes are not timed: a request is a few hundred bytes.
    """

    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._limit = limits.max_connections
        self._keep = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._idle: dict[tuple[str, str, int], list[_H1Connection]] = {}
        self._idle_count = 0
        self._live = 0  # connections open, being opened, or in use
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False
        self._watch: _ReadWatch | None = None

    @staticmethod
    def url(url: str) -> _Target:
        """``url`` as :meth:`send` takes it (callers cache it: a poll sends the same URL again)."""
        return _Target(*_split(url))

    @property
    def connections(self) -> int:
        """Connections open, being opened, or in use."""
        return self._live

    @property
    def max_connections(self) -> int | None:
        return self._limit

    # ---- the pool

    def _checkout(self, key: tuple[str, str, int]) -> _H1Connection | None:
        idle = self._idle.get(key)
        expiry = self._expiry
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if conn.closed or (expiry is not None and conn.loop.time() - conn.idle_since > expiry):
                self._drop(conn)
                continue
            return conn
        return None

    def _checkin(self, conn: _H1Connection) -> None:
        if self._closed or conn.closed or (self._keep is not None and self._idle_count >= self._keep):
            self._drop(conn)
            return
        now = conn.idle_since = conn.loop.time()
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        # Connections are reused last in, first out; close those left idle past the expiry at
        # the other end (as httpcore does on every pool operation), so that a burst's extra
        # connections do not stay open.
        expiry = self._expiry
        while idle and expiry is not None and (now - idle[0].idle_since > expiry or idle[0].closed):
            self._idle_count -= 1
            self._drop(idle.pop(0))
        idle.append(conn)
        self._idle_count += 1
        self._wake()

    def _drop(self, conn: _H1Connection) -> None:
        conn.close()
        self._live -= 1
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection (of any host) to make room; False if none is idle."""
        oldest: list[_H1Connection] | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest[0].idle_since):
                oldest = conns
        if oldest is None:
            return False
        conn = oldest.pop(0)
        self._idle_count -= 1
        self._drop(conn)
        return True

    async def _acquire(self, target: _Target, connect: float | None, pool: float | None) -> _H1Connection:
        loop = asyncio.get_running_loop()
        key = (target.scheme, target.host, target.port)
        deadline = None if pool is None else loop.time() + pool
        while True:
            if self._closed:
                raise httpx.TransportError("the transport is closed")
            conn = self._checkout(key)
            if conn is not None:
                return conn
            if self._limit is None or self._live < self._limit:
                self._live += 1
                try:
                    return await self._connect(loop, target, key, connect)
                except BaseException:
                    self._live -= 1
                    self._wake()
                    raise
            if self._evict_idle():
                continue
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise httpx.PoolTimeout("timed out waiting for a connection from the pool")
                async with asyncio.timeout(remaining):
                    await waiter
            except TimeoutError:
                raise httpx.PoolTimeout("timed out waiting for a connection from the pool") from None
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # we were handed the turn but leave: pass it on
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, target: _Target, key: tuple[str, str, int], limit: float | None
    ) -> _H1Connection:
        watch = self._watch
        if watch is None or watch.loop is not loop:
            watch = self._watch = _ReadWatch(loop)
        context = None
        if target.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl_context()
            context = self._ssl
        try:
            async with asyncio.timeout(limit):
                _, conn = await loop.create_connection(
                    lambda: _H1Connection(key, loop, watch),
                    target.host,
                    target.port,
                    ssl=context,
                    server_hostname=target.host if context is not None else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {target.host}:{target.port}") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return conn

    # ---- requests

    async def send(
        self,
        method: str,
        url: _Target | str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        content: bytes | None,
        timeout: httpx.Timeout | Mapping[str, float | None],  # noqa: ASYNC109 - per phase, as httpx's
        max_body: int | None,
        *,
        decompress: bool = True,
        total: float | None = None,
    ) -> RawResponse:
        """Send one request; return status, headers and the whole body (at most ``max_body``
        bytes, decoded from gzip/deflate when ``decompress``). ``total``, if given, bounds the
        time from sending the request to the end of the response (a server that trickles bytes
        never resets it, as it resets the read timeout)."""
        target = self.url(url) if isinstance(url, str) else url
        connect, read, _write, pool = _timeout_values(timeout)
        data = _request_bytes(method, target.target, headers, content)
        conn = self._checkout((target.scheme, target.host, target.port)) or await self._acquire(
            target, connect, pool
        )
        keep = False
        try:
            status, raw_headers, body, keep = await conn.request(
                data, read, max_body, head_only=method == "HEAD", decoding=decompress, total=total
            )
        finally:
            if keep:
                self._checkin(conn)
            else:
                self._drop(conn)
        hdrs = httpx.Headers(raw_headers)
        if conn.encoded:
            body = _decoded(body, hdrs["content-encoding"], max_body)
            if max_body is not None and len(body) > max_body:
                raise BodyTooLargeError(status, hdrs)
        return RawResponse(status, hdrs, body)

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
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for conns in idle.values():
            for conn in conns:
                self._live -= 1
                conn.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # wakes into "the transport is closed"


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _request_bytes(
    method: str, target: str, headers: Mapping[str, str] | Iterable[tuple[str, str]], content: bytes | None
) -> bytes:
    """The request head (and body) as sent: the caller's headers as given, plus ``content-length``
    and, unless given, ``accept-encoding: gzip, deflate`` (what httpx sends)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    lines = [f"{method} {target} HTTP/1.1"]
    encoding = False
    for name, value in items:
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise httpx.LocalProtocolError(f"illegal header {name!r}")
        if not encoding and len(name) == 15 and name.lower() == "accept-encoding":
            encoding = True
        lines.append(f"{name}: {value}")
    if not encoding:
        lines.append("accept-encoding: gzip, deflate")
    if content:
        lines.append(f"content-length: {len(content)}")
    elif method in _BODY_METHODS:
        lines.append("content-length: 0")
    lines.append("\r\n")
    data = "\r\n".join(lines).encode("ascii")
    return data + content if content else data


# --------------------------------------------------------------------------- sync: http.client


def _split(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
    host = sys.intern(parts.hostname or "")
    port = parts.port or (443 if scheme == "https" else 80)
    scheme = sys.intern(scheme)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, host, port, target


def _decoded(body: bytes, encoding: str, max_body: int | None) -> bytes:
    """The body decoded as httpx decodes ``gzip`` / ``deflate`` content encodings, never more
    than ``max_body + 1`` bytes of it (a decompression bomb stops at the cap)."""
    limit = 0 if max_body is None else max_body + 1
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        if coding == "identity":
            continue
        if coding not in ("gzip", "deflate"):
            return body  # unknown coding: left as is, as httpx does
        try:
            if coding == "gzip":
                body = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(body, limit)
            else:
                try:
                    body = zlib.decompressobj().decompress(body, limit)
                except zlib.error:
                    body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, limit)
        except zlib.error as exc:
            raise httpx.DecodingError(f"{coding} content could not be decoded: {exc}") from None
    return body


class _Conn:
    __slots__ = ("conn", "idle_since")

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.idle_since = 0.0


def _dead(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection the server has closed (readable: EOF or stray bytes)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class HttpClientTransport(httpx.BaseTransport):
    """A sync HTTP/1.1 transport: a thread-safe keep-alive pool of ``http.client`` connections.

    At most ``max_keepalive_connections`` idle connections are kept (per process: the pool is
    dropped in a forked child), each for at most ``keepalive_expiry`` seconds; an idle
    connection the server has closed is detected before reuse and replaced.
    """

    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._idle_count = 0
        self._pid = os.getpid()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    @staticmethod
    def url(url: str) -> tuple[str, str, int, str]:
        """``url`` as :meth:`send` takes it: scheme, host, port and request target."""
        return _split(url)

    def _checkout(self, key: tuple[str, str, int]) -> _Conn | None:
        expiry = self._limits.keepalive_expiry
        with self._lock:
            if self._pid != os.getpid():  # forked: the sockets belong to the parent
                self._idle, self._idle_count, self._pid = {}, 0, os.getpid()
            idle = self._idle.get(key)
            while idle:
                entry = idle.pop()
                self._idle_count -= 1
                if (expiry is not None and time.monotonic() - entry.idle_since > expiry) or _dead(entry.conn):
                    entry.conn.close()
                    continue
                return entry
        return None

    def _checkin(self, key: tuple[str, str, int], entry: _Conn) -> None:
        limit = self._limits.max_keepalive_connections
        with self._lock:
            if self._closed or self._pid != os.getpid() or (limit is not None and self._idle_count >= limit):
                entry.conn.close()
                return
            now = entry.idle_since = time.monotonic()
            idle = self._idle.setdefault(key, [])
            expiry = self._limits.keepalive_expiry
            while idle and expiry is not None and now - idle[0].idle_since > expiry:
                idle.pop(0).conn.close()
                self._idle_count -= 1
            idle.append(entry)
            self._idle_count += 1

    def _connect(self, scheme: str, host: str, port: int, connect: float | None) -> _Conn:
        conn: http.client.HTTPConnection
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl_context()
            conn = http.client.HTTPSConnection(host, port, timeout=connect, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect)
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS
            conn.close()
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return _Conn(conn)

    def send(
        self,
        method: str,
        url: str | tuple[str, str, int, str],
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: httpx.Timeout | Mapping[str, float | None],
        max_body: int | None,
        *,
        decompress: bool = True,
        total: float | None = None,
    ) -> RawResponse:
        """As :meth:`H1Transport.send`."""
        if self._closed:
            raise httpx.TransportError("the transport is closed")
        scheme, host, port, target = self.url(url) if isinstance(url, str) else url
        key = (scheme, host, port)
        connect, read, write, _pool = _timeout_values(timeout)
        entry = self._checkout(key) or self._connect(scheme, host, port, connect)
        conn = entry.conn
        reusable = False
        try:
            sock = conn.sock
            if sock is not None:
                sock.settimeout(write)
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                encoding = False
                for name, value in headers.items():
                    conn.putheader(name, value)
                    encoding = encoding or name.lower() == "accept-encoding"
                if not encoding:
                    conn.putheader("accept-encoding", "gzip, deflate")  # what httpx sends
                if content:
                    conn.putheader("content-length", str(len(content)))
                elif method in ("POST", "PUT", "PATCH"):
                    conn.putheader("content-length", "0")
                conn.endheaders(content or None)
            except TimeoutError as exc:
                raise httpx.WriteTimeout(str(exc) or "timed out") from None
            except OSError as exc:
                raise httpx.WriteError(str(exc) or type(exc).__name__) from None
            deadline = None if total is None else time.monotonic() + total

            def arm() -> None:  # the read timeout, shortened to what is left of ``total``
                if sock is None:
                    return
                if deadline is None:
                    sock.settimeout(read)
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out")
                sock.settimeout(left if read is None else min(read, left))

            try:
                arm()
                resp = conn.getresponse()
                status = resp.status
                raw_headers = resp.getheaders()
                if max_body is not None and _too_big(resp.getheader("content-length"), max_body):
                    raise BodyTooLargeError(status, httpx.Headers(raw_headers))
                encoded = decompress and bool(resp.getheader("content-encoding"))
                chunks: list[bytes] = []
                size = 0
                cap = None if max_body is None else _wire_cap(max_body, encoded)
                while True:
                    arm()
                    # read1: at most one receive, so the deadline is checked between receives
                    chunk = resp.read1(_READ_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if cap is not None and size > cap:
                        raise BodyTooLargeError(status, httpx.Headers(raw_headers))
                    chunks.append(chunk)
                if not resp.isclosed():  # read1 leaves a fully read response open: close it
                    resp.read()
                if resp.length:  # http.client returns a short body silently; httpx does not
                    raise httpx.RemoteProtocolError(_INCOMPLETE)
                reusable = not resp.will_close
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc) or "timed out") from None
            except (http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
                raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from None
            except (http.client.HTTPException, ValueError) as exc:
                raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from None
            except OSError as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__) from None
        finally:
            if reusable:
                self._checkin(key, entry)
            else:
                conn.close()
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        hdrs = httpx.Headers(raw_headers)
        if encoded:
            body = _decoded(body, hdrs["content-encoding"], max_body)
            if max_body is not None and len(body) > max_body:
                raise BodyTooLargeError(status, hdrs)
        return RawResponse(status, hdrs, body)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        skip = (b"content-length", b"transfer-encoding")
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw if k.lower() not in skip
        }
        raw = self.send(
            request.method,
            str(request.url),
            headers,
            body or None,
            request.extensions.get("timeout", {}),
            None,
            decompress=False,  # httpx decodes the body itself
        )
        return httpx.Response(raw.status, headers=raw.headers.raw, content=raw.body, request=request)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle, self._idle_count = self._idle, {}, 0
        for entries in idle.values():
            for entry in entries:
                entry.conn.close()
