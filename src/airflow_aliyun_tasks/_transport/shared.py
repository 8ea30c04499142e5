"""What both lean transports share: limits, the response types, TLS, the request as sent,
response caps and content decoding.

:mod:`.async_transport` (asyncio + ``httptools``) and :mod:`.sync_transport` (``http.client``)
build on these, so that both frame, cap and decode a response the same way.
"""

from __future__ import annotations

import ssl
import sys
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

DEFAULT_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30.0)
#: The most bytes and lines of response head (status line and headers) either transport reads
#: (http.client's own limits are 100 headers and 64 KiB per line): a server that floods headers
#: gets a ``RemoteProtocolError``, as one that sends too big a body gets ``BodyTooLargeError``.
MAX_HEADER_BYTES = 65536
MAX_HEADERS = 100
#: What a connection closed in the middle of a response is reported as (httpx's wording).
INCOMPLETE = "peer closed connection without sending complete message body"


#: Response headers as the lean transports read them: (name, value) pairs, in order (bytes from
#: the async transport's parser, text from ``http.client``).
HeaderPairs = list[tuple[bytes, bytes]] | list[tuple[str, str]]


class RawResponse:
    """Status, headers and whole body of one response.

    The lean transports hand the headers as parsed (:data:`HeaderPairs`) and :attr:`headers`
    makes the ``httpx.Headers`` on first read: a status poll that succeeds reads no header (its
    request id is in the body), and building them was a good part of a poll's response path."""

    __slots__ = ("_headers", "_pairs", "body", "status")

    def __init__(self, status: int, headers: httpx.Headers | HeaderPairs, body: bytes) -> None:
        self.status = status
        self.body = body
        if type(headers) is list:
            self._pairs: HeaderPairs | None = headers
            self._headers: httpx.Headers | None = None
        else:
            self._pairs = None
            self._headers = headers  # type: ignore[assignment]

    @property
    def headers(self) -> httpx.Headers:
        headers = self._headers
        if headers is None:
            headers = self._headers = httpx.Headers(self._pairs)
            self._pairs = None
        return headers

    def __repr__(self) -> str:
        return f"RawResponse(status={self.status!r}, headers={self.headers!r}, body={self.body!r})"


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


def timeout_values(timeout: httpx.Timeout | Mapping[str, float | None]) -> tuple[Any, Any, Any, Any]:
    """Connect, read, write and pool timeouts of an ``httpx.Timeout`` or of the ``timeout``
    extension of an ``httpx.Request``."""
    if isinstance(timeout, httpx.Timeout):
        return timeout.connect, timeout.read, timeout.write, timeout.pool
    return timeout.get("connect"), timeout.get("read"), timeout.get("write"), timeout.get("pool")


# --------------------------------------------------------------------------- the request


def split_url(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and request target (path and query, as given) of ``url``; scheme and
    host interned, as they key the connection pools."""
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


#: Methods sent with ``content-length: 0`` when they have no body, as httpx sends them.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def request_bytes(
    method: str, target: str, headers: Mapping[str, str] | Iterable[tuple[str, str]], content: bytes | None
) -> bytes:
    """The request head (and body) as sent: the caller's headers as given, plus ``content-length``
    and, unless given, ``accept-encoding: gzip, deflate`` (what httpx sends). A header whose name
    or value holds CR or LF, or whose name holds ``:``, is refused (``httpx.LocalProtocolError``)."""
    # a dict (what the client sends) without the Mapping ABC check
    if type(headers) is dict or isinstance(headers, Mapping):
        items: Iterable[tuple[str, str]] = headers.items()
        names = "\n".join(headers)
    else:
        items = list(headers)
        names = "\n".join([name for name, _ in items])
    lines = [f"{name}: {value}" for name, value in items]
    # CR/LF checked once on the whole head below: with none in a name, this test is exact
    if "\naccept-encoding\n" not in f"\n{names.lower()}\n":
        lines.append("accept-encoding: gzip, deflate")
    if content:
        lines.append(f"content-length: {len(content)}")
    elif method in BODY_METHODS:
        lines.append("content-length: 0")
    head = f"{method} {target} HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    breaks = len(lines) + 2  # the line ends above, and no CR or LF anywhere else
    if ":" in names or head.count("\n") != breaks or head.count("\r") != breaks:
        _refuse(method, target, items)
    data = head.encode("ascii")
    return data + content if content else data


def _refuse(method: str, target: str, items: Iterable[tuple[str, str]]) -> NoReturn:
    for name, value in items:
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise httpx.LocalProtocolError(f"illegal header {name!r}")
    raise httpx.LocalProtocolError(f"illegal request line {method!r} {target!r}")


# --------------------------------------------------------------------------- the response


def wire_cap(max_body: int, encoded: bool) -> int:
    """The most body bytes read off the wire: ``max_body``, or for a compressed body (capped
    again once decoded) twice that, which no compressed form of an acceptable body exceeds."""
    return 2 * max_body + 1024 if encoded else max_body


def too_big(declared: str | None, max_body: int | None) -> bool:
    return bool(max_body is not None and declared and declared.isdigit() and int(declared) > max_body)


def decoded(body: bytes, encoding: str, max_body: int | None) -> bytes:
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
