"""What both lean transports share: limits, the response types, TLS, the request as sent,
response caps and content decoding.

:mod:`.async_transport` (asyncio + ``httptools``) and :mod:`.sync_transport` (``http.client``)
build on these, so that both frame, cap and decode a response the same way.
"""

from __future__ import annotations

import ssl
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
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


class HeaderLayout:
    """Request headers laid out once as :func:`request_bytes` sends them (``name: value`` lines),
    with placeholders where each request puts values of its own (a date, a nonce, a signature):
    what :class:`PreparedHeaders` fills per request, so that a call sent again and again lays out
    and checks its constant headers once. Immutable; equal layouts may be shared.

    :param marked: the headers, each placeholder the whole value of one header.
    :param marks: the placeholders, in the order :meth:`fill` takes their values; each must be
        the value of exactly one header. Raises ``httpx.LocalProtocolError`` for a header
        :func:`request_bytes` refuses, ``ValueError`` for a placeholder not found once.
    """

    __slots__ = ("accepts_encoding", "marked", "marks", "order", "parts")

    def __init__(self, marked: Mapping[str, str], marks: tuple[str, ...]) -> None:
        for name, value in marked.items():
            _check_header(name, value)
        self.marked = dict(marked)
        self.marks = marks
        names = [name for name, value in marked.items() if value in marks]
        if sorted(marked[name] for name in names) != sorted(marks):
            raise ValueError("each placeholder must be the whole value of exactly one header")
        block = "".join(f"{name}: {value}\r\n" for name, value in marked.items())
        cuts = sorted((block.index(f": {marked[name]}\r\n") + 2, marked[name]) for name in names)
        parts, start = [], 0
        for at, mark in cuts:
            parts.append(sys.intern(block[start:at]))
            start = at + len(mark)
        parts.append(sys.intern(block[start:]))
        self.parts: tuple[str, ...] = tuple(parts)
        #: the index in fill()'s values of each placeholder, in the order they are laid out
        self.order = tuple(marks.index(mark) for _, mark in cuts)
        self.accepts_encoding = any(name.lower() == "accept-encoding" for name in marked)

    def fill(self, *values: str) -> PreparedHeaders:
        """The headers of one request: ``values`` in place of the placeholders (in ``marks``
        order)."""
        return PreparedHeaders(self, values)


class PreparedHeaders(Mapping[str, str]):
    """One request's headers: a :class:`HeaderLayout` and the values of its placeholders. A
    mapping like any headers (made into a dict on first use: an httpx sender, ``http.client``);
    :func:`request_bytes` takes the layout's lines as they are."""

    __slots__ = ("_dict", "filled", "layout")

    def __init__(self, layout: HeaderLayout, values: tuple[str, ...]) -> None:
        self.layout = layout
        self.filled = values
        self._dict: dict[str, str] | None = None

    def block(self) -> str:
        """The header lines as sent; refuses a value with CR or LF (``httpx.LocalProtocolError``)."""
        values = self.filled
        joined = "".join(values)
        if "\r" in joined or "\n" in joined:
            self._refuse()
        parts = self.layout.parts
        if len(parts) == 4:  # a signed call: date, nonce, signature
            a, b, c = self.layout.order
            return f"{parts[0]}{values[a]}{parts[1]}{values[b]}{parts[2]}{values[c]}{parts[3]}"
        out = [parts[0]]
        for i, index in enumerate(self.layout.order):
            out += (values[index], parts[i + 1])
        return "".join(out)

    def _refuse(self) -> NoReturn:
        for name, value in self._as_dict().items():
            _check_header(name, value)
        raise AssertionError("unreachable")  # pragma: no cover

    def _as_dict(self) -> dict[str, str]:
        found = self._dict
        if found is None:
            by_mark = dict(zip(self.layout.marks, self.filled, strict=True))
            found = self._dict = {
                name: by_mark.get(value, value) for name, value in self.layout.marked.items()
            }
        return found

    def __getitem__(self, name: str) -> str:
        return self._as_dict()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self.layout.marked)

    def __repr__(self) -> str:
        return f"PreparedHeaders({self._as_dict()!r})"


def _check_header(name: str, value: str) -> None:
    if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
        raise httpx.LocalProtocolError(f"illegal header {name!r}")


def request_bytes(
    method: str, target: str, headers: Mapping[str, str] | Iterable[tuple[str, str]], content: bytes | None
) -> bytes:
    """The request head (and body) as sent: the caller's headers as given, plus ``content-length``
    and, unless given, ``accept-encoding: gzip, deflate`` (what httpx sends). A header whose name
    or value holds CR or LF, or whose name holds ``:``, is refused (``httpx.LocalProtocolError``).
    :class:`PreparedHeaders` are taken as laid out (checked when their layout was made)."""
    if type(headers) is PreparedHeaders:
        block = headers.block()
        encoding = headers.layout.accepts_encoding
    else:
        block, encoding = _header_block(headers)
    if not encoding:
        block += "accept-encoding: gzip, deflate\r\n"
    if content:
        block += f"content-length: {len(content)}\r\n"
    elif method in BODY_METHODS:
        block += "content-length: 0\r\n"
    if "\r" in target or "\n" in target or "\r" in method or "\n" in method:
        raise httpx.LocalProtocolError(f"illegal request line {method!r} {target!r}")
    data = f"{method} {target} HTTP/1.1\r\n{block}\r\n".encode("ascii")
    return data + content if content else data


def _header_block(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[str, bool]:
    """The lines of ``headers`` as sent, checked, and whether they ask for an encoding."""
    # a dict (what the client sends) without the Mapping ABC check
    if type(headers) is dict or isinstance(headers, Mapping):
        items: Iterable[tuple[str, str]] = headers.items()
        count = len(headers)
        names = "\n".join(headers)
    else:
        items = pairs = list(headers)
        count = len(pairs)
        names = "\n".join([name for name, _ in pairs])
    block = "".join([f"{name}: {value}\r\n" for name, value in items])
    # one scan for CR and LF over the whole block: only its line ends may be there
    if ":" in names or block.count("\n") != count or block.count("\r") != count:
        for name, value in items:
            _check_header(name, value)
    # with no LF in a name (checked above), this test is exact
    return block, "\naccept-encoding\n" in f"\n{names.lower()}\n"


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
