"""The sync lean transport: a thread-safe keep-alive pool of the standard library's
``http.client`` connections.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping

import httpx

from airflow_aliyun_tasks._transport.shared import (
    BODY_METHODS,
    DEFAULT_LIMITS,
    INCOMPLETE,
    BodyTooLargeError,
    RawResponse,
    decoded,
    split_url,
    ssl_context,
    timeout_values,
    too_big,
    wire_cap,
)

READ_CHUNK = 65536


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


class LeanSyncTransport(httpx.BaseTransport):
    """A sync HTTP/1.1 transport: a thread-safe keep-alive pool of ``http.client`` connections.

    At most ``max_keepalive_connections`` idle connections are kept (per process: the pool is
    dropped in a forked child), each for at most ``keepalive_expiry`` seconds; an idle
    connection the server has closed is detected before reuse and replaced.
    """

    def __init__(self, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        # Cache: idle keep-alive connections. Keyed on (scheme, host, port); a connection is
        # dropped when it idled past keepalive_expiry (seen at checkout and checkin), when the
        # server closed it (seen at checkout), when more than max_keepalive_connections would
        # idle, and at close().
        # The whole pool is dropped in a forked child (``_pid``): its sockets are the parent's.
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._idle_count = 0
        self._pid = os.getpid()
        # Cache: the TLS context, built for the first https connection; kept for the
        # transport's life.
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    @staticmethod
    def url(url: str) -> tuple[str, str, int, str]:
        """``url`` as :meth:`send` takes it: scheme, host, port and request target."""
        return split_url(url)

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
        """As :meth:`.async_transport.LeanAsyncTransport.send`."""
        if self._closed:
            raise httpx.TransportError("the transport is closed")
        scheme, host, port, target = self.url(url) if isinstance(url, str) else url
        key = (scheme, host, port)
        connect, read, write, _pool = timeout_values(timeout)
        entry = self._checkout(key) or self._connect(scheme, host, port, connect)
        conn = entry.conn
        reusable = False
        try:
            _write_request(conn, method, target, headers, content, write)
            status, raw_headers, body, encoded, reusable = _read_response(
                conn, _Deadline(conn.sock, read, total), max_body, decompress
            )
        finally:
            if reusable:
                self._checkin(key, entry)
            else:
                conn.close()
        response = RawResponse(status, raw_headers, body)
        if encoded:
            response.body = decoded(body, response.headers["content-encoding"], max_body)
            if max_body is not None and len(response.body) > max_body:
                raise BodyTooLargeError(status, response.headers)
        return response

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


def _write_request(
    conn: http.client.HTTPConnection,
    method: str,
    target: str,
    headers: Mapping[str, str],
    content: bytes | None,
    write: float | None,
) -> None:
    """Send the request head and body: the caller's headers as given, plus what httpx adds."""
    if conn.sock is not None:
        conn.sock.settimeout(write)
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
        elif method in BODY_METHODS:
            conn.putheader("content-length", "0")
        conn.endheaders(content or None)
    except TimeoutError as exc:
        raise httpx.WriteTimeout(str(exc) or "timed out") from None
    except OSError as exc:
        raise httpx.WriteError(str(exc) or type(exc).__name__) from None


class _Deadline:
    """The socket's timeout before each receive: the read timeout, shortened to what is left of
    ``total`` (seconds from now for the whole response)."""

    __slots__ = ("deadline", "read", "sock")

    def __init__(self, sock: socket.socket | None, read: float | None, total: float | None) -> None:
        self.sock = sock
        self.read = read
        self.deadline = None if total is None else time.monotonic() + total

    def arm(self) -> None:
        if self.sock is None:
            return
        if self.deadline is None:
            self.sock.settimeout(self.read)
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left if self.read is None else min(self.read, left))


def _read_response(
    conn: http.client.HTTPConnection, timer: _Deadline, max_body: int | None, decompress: bool
) -> tuple[int, list[tuple[str, str]], bytes, bool, bool]:
    """Status, headers, body (as sent: still encoded), whether it is encoded, and whether the
    connection may be reused; failures as httpx's exceptions."""
    try:
        timer.arm()
        resp = conn.getresponse()
        status = resp.status
        raw_headers = resp.getheaders()
        if max_body is not None and too_big(resp.getheader("content-length"), max_body):
            raise BodyTooLargeError(status, httpx.Headers(raw_headers))
        encoded = decompress and bool(resp.getheader("content-encoding"))
        cap = None if max_body is None else wire_cap(max_body, encoded)
        chunks: list[bytes] = []
        size = 0
        while True:
            timer.arm()
            chunk = resp.read1(READ_CHUNK)  # at most one receive: the deadline is checked between
            if not chunk:
                break
            size += len(chunk)
            if cap is not None and size > cap:
                raise BodyTooLargeError(status, httpx.Headers(raw_headers))
            chunks.append(chunk)
        if not resp.isclosed():  # read1 leaves a fully read response open: close it
            resp.read()
        if resp.length:  # http.client returns a short body silently; httpx does not
            raise httpx.RemoteProtocolError(INCOMPLETE)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out") from None
    except (http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__) from None
    except (http.client.HTTPException, ValueError) as exc:
        raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from None
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return status, raw_headers, body, encoded, not resp.will_close
