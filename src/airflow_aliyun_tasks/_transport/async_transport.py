"""The async lean transport: asyncio protocols, ``httptools``' HTTP parser (llhttp, in C) and a
keep-alive pool, one per event loop. ``httptools`` is imported on first use only.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import httpx

from airflow_aliyun_tasks._transport.shared import (
    DEFAULT_LIMITS,
    INCOMPLETE,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    BodyTooLargeError,
    RawResponse,
    decoded,
    request_bytes,
    split_url,
    ssl_context,
    timeout_values,
    too_big,
    wire_cap,
)

_DISCONNECTED = "Server disconnected without sending a response."


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


def _parser_error() -> type[Exception]:
    """httptools' parse error (imported on first use, as the parser is)."""
    import httptools

    return httptools.HttpParserError


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
            self._fail(httpx.RemoteProtocolError(INCOMPLETE if self.status else _DISCONNECTED))

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        self.last_data = self.loop.time() if self.read_timeout is not None else 0.0
        try:
            self.parser.feed_data(data)
        except _parser_error() as exc:
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
            size = len(name)  # only names of these lengths are lowered and compared
            if size == 14 and name.lower() == b"content-length":
                declared = value
                self.framed = True
            elif size == 17 and name.lower() == b"transfer-encoding":
                self.framed = True
            elif size == 16 and self.decoding and name.lower() == b"content-encoding":
                self.encoded = True
        if status in (204, 304):
            self.framed = True
        if declared is not None and too_big(declared.decode("latin-1"), self.max_body):
            self._fail(BodyTooLargeError(status, httpx.Headers(self.headers)))
        elif self.head_only:
            self._finish(False)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        cap = self.max_body
        if cap is not None and self.size > (wire_cap(cap, True) if self.encoded else cap):
            self._fail(BodyTooLargeError(self.status, httpx.Headers(self.headers)))
            return
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # an interim response: the real one follows
            self._reset()
            return
        self._finish(self.parser.should_keep_alive())


class LeanAsyncTransport(httpx.AsyncBaseTransport):
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
        # Cache: idle keep-alive connections. Keyed on (scheme, host, port); a connection is
        # dropped when the server closed it or it idled past keepalive_expiry (seen at checkout
        # and checkin), when more than max_keepalive_connections would idle, when the pool is
        # full and another host needs a connection, and at aclose().
        self._idle: dict[tuple[str, str, int], list[_H1Connection]] = {}
        self._idle_count = 0
        self._live = 0  # connections open, being opened, or in use
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # Cache: the TLS context, built for the first https connection; kept for the
        # transport's life.
        self._ssl: ssl.SSLContext | None = None
        self._closed = False
        # Cache: the read watch of the event loop connections are opened in. Keyed on that loop;
        # replaced when a connection is opened in another loop, never dropped otherwise.
        self._watch: _ReadWatch | None = None

    @staticmethod
    def url(url: str) -> _Target:
        """``url`` as :meth:`send` takes it (callers cache it: a poll sends the same URL again)."""
        return _Target(*split_url(url))

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
        connect, read, _write, pool = timeout_values(timeout)
        data = request_bytes(method, target.target, headers, content)
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
        response = RawResponse(status, raw_headers, body)
        if conn.encoded:
            response.body = decoded(body, response.headers["content-encoding"], max_body)
            if max_body is not None and len(response.body) > max_body:
                raise BodyTooLargeError(status, response.headers)
        return response

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
