"""The lean transports (``airflow_aliyun_tasks._transport``) against a scripted loopback server.

They must behave like httpx's own transports: frame, cap, decode, time out and fail the way
httpx's do, keep connections alive and verify TLS as httpx does; the client maps their failures
as it maps httpx's.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import socketserver
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_aliyun_tasks import client as client_module
from airflow_aliyun_tasks._decode import decode
from airflow_aliyun_tasks._transport import (
    BodyTooLargeError,
    LeanAsyncTransport,
    LeanSyncTransport,
    RawResponse,
)
from airflow_aliyun_tasks._transport.shared import HeaderLayout, request_bytes
from airflow_aliyun_tasks.client import AlibabaCloudClient, Call, aclose_shared_client, shared_async_client
from airflow_aliyun_tasks.config import parse_endpoint
from airflow_aliyun_tasks.credentials import Credentials, StaticSource
from airflow_aliyun_tasks.errors import BadResponseError, TransportError

pytestmark = pytest.mark.usefixtures("close_shared_sync_client")

TIMEOUT = httpx.Timeout(5.0, pool=5.0)


# --------------------------------------------------------------------------- a scripted server

Reply = bytes | Callable[[socket.socket], None]


class Scripted:
    """A loopback HTTP/1.1 server that answers each request with the next scripted reply
    (bytes to send, or a function of the socket), keeping connections alive in between."""

    def __init__(self, replies: list[Reply], tls: ssl.SSLContext | None = None) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with outer.lock:
                    outer.connections += 1
                sock: socket.socket = self.request
                if tls is not None:
                    try:
                        sock = tls.wrap_socket(sock, server_side=True)
                    except (ssl.SSLError, OSError):
                        return  # the client refused the certificate
                buf = b""
                while True:
                    while b"\r\n\r\n" not in buf:
                        chunk = sock.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(buf) < length:
                        buf += sock.recv(65536)
                    body, buf = buf[:length], buf[length:]
                    with outer.lock:
                        outer.requests.append(head + b"\r\n\r\n" + body)
                        reply = outer.replies.pop(0) if outer.replies else b""
                    if callable(reply):
                        reply(sock)
                        return
                    if not reply:
                        return
                    sock.sendall(reply)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Scripted:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def close_after(data: bytes) -> Callable[[socket.socket], None]:
    def reply(sock: socket.socket) -> None:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    return reply


def hang(seconds: float) -> Callable[[socket.socket], None]:
    def reply(sock: socket.socket) -> None:
        threading.Event().wait(seconds)

    return reply


def send_async(
    url: str,
    *,
    method: str = "GET",
    content: bytes | None = None,
    max_body: int | None = 1000,
    timeout: httpx.Timeout = TIMEOUT,
) -> Any:
    async def go() -> Any:
        transport = LeanAsyncTransport()
        try:
            return await transport.send(method, url, {"host": "h"}, content, timeout, max_body)
        finally:
            await transport.aclose()

    return asyncio.run(go())


def send_sync(
    url: str,
    *,
    method: str = "GET",
    content: bytes | None = None,
    max_body: int | None = 1000,
    timeout: httpx.Timeout = TIMEOUT,
) -> Any:
    transport = LeanSyncTransport()
    try:
        return transport.send(method, url, {"host": "h"}, content, timeout, max_body)
    finally:
        transport.close()


SENDERS = {"async": send_async, "sync": send_sync}


# --------------------------------------------------------------------------- the lean transports


@pytest.mark.parametrize("mode", SENDERS)
@pytest.mark.parametrize(
    ("reply", "body"),
    [
        (response(b'{"a":1}', "Content-Type: application/json"), b'{"a":1}'),
        (response(chunked(b'{"a"', b":1}"), "Transfer-Encoding: chunked"), b'{"a":1}'),
        (close_after(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b'{"a":1}'), b'{"a":1}'),
        (response(gzip.compress(b'{"a":1}'), "Content-Encoding: gzip"), b'{"a":1}'),
        (response(zlib.compress(b'{"a":1}'), "Content-Encoding: deflate"), b'{"a":1}'),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"{}"), b"{}"),
        (response(b"", status="204 No Content"), b""),
    ],
    ids=["length", "chunked", "until-close", "gzip", "deflate", "interim-100", "no-content"],
)
def test_transport_reads_every_framing(mode: str, reply: Reply, body: bytes) -> None:
    with Scripted([reply]) as server:
        raw = SENDERS[mode](server.url + "/p?q=1")
    assert raw.body == body
    assert raw.status in (200, 204)


@pytest.mark.parametrize("mode", SENDERS)
def test_transport_sends_the_request_as_given(mode: str) -> None:
    with Scripted([response(b"{}")] * 2) as server:
        SENDERS[mode](server.url + "/a%2Fb?X=%7E%2A", method="POST", content=b'{"k":"v"}')
        SENDERS[mode](server.url + "/", method="POST")
    first, second = server.requests
    assert first.startswith(b"POST /a%2Fb?X=%7E%2A HTTP/1.1\r\n")  # not re-encoded: it was signed so
    assert b"\r\nhost: h\r\n" in first.lower()
    assert b"\r\ncontent-length: 9\r\n" in first.lower()
    assert first.endswith(b'\r\n\r\n{"k":"v"}')
    assert b"\r\ncontent-length: 0\r\n" in second.lower()  # a POST without a body, as httpx sends it
    assert b"gzip" in first.lower()  # accept-encoding, as httpx sends it


@pytest.mark.parametrize(
    "headers",
    [{"x-a\r\nx-b": "1"}, {"x-a": "1\r\nx-b: 2"}, {"x-a": "1\n"}, {"x-a": "\r"}, {"x:a": "1"}],
    ids=["crlf-in-name", "crlf-in-value", "lf-in-value", "cr-in-value", "colon-in-name"],
)
def test_async_transport_refuses_an_illegal_header(headers: dict[str, str]) -> None:
    async def go() -> None:
        transport = LeanAsyncTransport()
        try:
            await transport.send("GET", "http://127.0.0.1:9/", {"host": "h", **headers}, None, TIMEOUT, None)
        finally:
            await transport.aclose()

    with pytest.raises(httpx.LocalProtocolError, match="illegal header"):
        asyncio.run(go())  # refused before any connection is opened (port 9 is not listening)


def test_request_bytes_adds_what_httpx_adds_unless_given() -> None:
    assert request_bytes("GET", "/?a=b", {"host": "h", "Accept-Encoding": "identity"}, None) == (
        b"GET /?a=b HTTP/1.1\r\nhost: h\r\nAccept-Encoding: identity\r\n\r\n"
    )
    assert request_bytes("POST", "/", [("host", "h"), ("x-accept-encoding", "1")], b"ab") == (
        b"POST / HTTP/1.1\r\nhost: h\r\nx-accept-encoding: 1\r\naccept-encoding: gzip, deflate\r\n"
        b"content-length: 2\r\n\r\nab"
    )
    with pytest.raises(httpx.LocalProtocolError, match="illegal request line"):
        request_bytes("GET", "/\r\nx: y", {"host": "h"}, None)


MARKS = ("\x00d\x00", "\x00n\x00", "\x00a\x00")


def test_header_layout_fills_its_placeholders_in_place() -> None:
    marked = {"host": "h", "authorization": MARKS[2], "x-date": MARKS[0], "x-nonce": MARKS[1], "ua": "u"}
    headers = HeaderLayout(marked, MARKS).fill("D", "N", "A")
    assert dict(headers) == {"host": "h", "authorization": "A", "x-date": "D", "x-nonce": "N", "ua": "u"}
    assert headers["x-nonce"] == "N"
    assert len(headers) == 5
    assert request_bytes("GET", "/", headers, None) == request_bytes("GET", "/", dict(headers), None)
    with pytest.raises(httpx.LocalProtocolError, match="illegal header 'x-nonce'"):
        request_bytes("GET", "/", HeaderLayout(marked, MARKS).fill("D", "N\r\nx: y", "A"), None)
    with pytest.raises(httpx.LocalProtocolError, match="illegal header"):
        HeaderLayout({**marked, "ua": "u\r\n"}, MARKS)
    with pytest.raises(ValueError, match="placeholder"):
        HeaderLayout({"host": "h", "x-date": MARKS[0]}, MARKS)
    two = HeaderLayout({"x-nonce": MARKS[1], "host": "h", "x-date": MARKS[0]}, MARKS[:2]).fill("D", "N")
    assert request_bytes("GET", "/", two, None) == request_bytes("GET", "/", dict(two), None)
    assert list(two.items()) == [("x-nonce", "N"), ("host", "h"), ("x-date", "D")]


def test_response_headers_are_made_when_first_read() -> None:
    pairs = [(b"Content-Type", b"application/json"), (b"x-acs-request-id", b"R-HEAD")]
    raw = RawResponse(200, list(pairs), b'{"RequestId": "R-BODY"}')
    response = decode(raw, now=0.0)
    assert response.request_id == "R-BODY"
    assert raw._headers is None  # a poll that succeeds reads no header
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.headers, httpx.Headers)
    # without a request id in the body, the header's is read
    assert decode(RawResponse(200, list(pairs), b"{}"), now=0.0).request_id == "R-HEAD"
    with pytest.raises(BadResponseError) as info:
        decode(RawResponse(200, list(pairs), b"[]"), now=0.0)
    assert info.value.request_id == "R-HEAD"


@pytest.mark.parametrize("mode", SENDERS)
def test_transport_reuses_the_connection(mode: str) -> None:
    replies: list[Reply] = [response(b"{}")] * 3

    with Scripted(replies) as server:
        if mode == "async":

            async def go() -> None:
                transport = LeanAsyncTransport()
                for _ in range(3):
                    await transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
                await transport.aclose()

            asyncio.run(go())
        else:
            transport = LeanSyncTransport()
            for _ in range(3):
                transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
            transport.close()
    assert len(server.requests) == 3
    assert server.connections == 1


@pytest.mark.parametrize("mode", SENDERS)
def test_transport_replaces_a_connection_the_server_closed(mode: str) -> None:
    """An idle keep-alive connection the server closed is not reused (and nothing is retried)."""
    replies: list[Reply] = [close_after(response(b"{}")), response(b"{}")]
    with Scripted(replies) as server:
        if mode == "async":

            async def go() -> None:
                transport = LeanAsyncTransport()
                await transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
                await asyncio.sleep(0.2)  # the server's FIN arrives
                await transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
                await transport.aclose()

            asyncio.run(go())
        else:
            transport = LeanSyncTransport()
            transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
            threading.Event().wait(0.2)
            transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
            transport.close()
    assert len(server.requests) == 2
    assert server.connections == 2


@pytest.mark.parametrize("mode", SENDERS)
@pytest.mark.parametrize(
    "reply",
    [response(b"x" * 1001), response(chunked(b"x" * 600, b"y" * 600), "Transfer-Encoding: chunked")],
    ids=["declared", "streamed"],
)
def test_transport_caps_the_body(mode: str, reply: bytes) -> None:
    with Scripted([reply]) as server, pytest.raises(BodyTooLargeError) as info:
        SENDERS[mode](server.url + "/", max_body=1000)
    assert info.value.status == 200


@pytest.mark.parametrize("mode", SENDERS)
def test_transport_caps_the_decoded_body(mode: str) -> None:
    bomb = gzip.compress(b"0" * 100_000)
    with Scripted([response(bomb, "Content-Encoding: gzip")]) as server, pytest.raises(BodyTooLargeError):
        SENDERS[mode](server.url + "/", max_body=1000)


@pytest.mark.parametrize("mode", SENDERS)
@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"", httpx.RemoteProtocolError),  # closed without a response
        (close_after(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), httpx.RemoteProtocolError),
        (b"NOT HTTP AT ALL\r\n\r\n", httpx.RemoteProtocolError),
    ],
    ids=["disconnect", "truncated", "garbage"],
)
def test_transport_failures_are_httpx_errors(mode: str, reply: Reply, error: type[Exception]) -> None:
    with Scripted([reply]) as server, pytest.raises(error):
        SENDERS[mode](server.url + "/")


@pytest.mark.parametrize("mode", SENDERS)
def test_transport_read_timeout(mode: str) -> None:
    with Scripted([hang(3.0)]) as server, pytest.raises(httpx.ReadTimeout):
        SENDERS[mode](server.url + "/", timeout=httpx.Timeout(0.3, pool=5.0))


def late(seconds: float, data: bytes) -> Callable[[socket.socket], None]:
    def reply(sock: socket.socket) -> None:
        threading.Event().wait(seconds)
        sock.sendall(data)

    return reply


def test_async_transport_takes_an_answer_that_came_while_the_loop_was_blocked() -> None:
    """An answer already in the socket when a blocked event loop wakes is taken, although the
    read timeout passed meanwhile: the loop runs I/O callbacks before due timers. So whether a
    server that answers after the timeout fails an attempt depends on the loop's lag, which a
    test with a loaded loop (the fault soak's ``slow`` fault) must not count on."""

    async def go(server: Scripted) -> Any:
        transport = LeanAsyncTransport()
        try:
            sent = asyncio.create_task(
                transport.send(
                    "GET", server.url + "/", {"host": "h"}, None, httpx.Timeout(0.3, pool=5.0), None
                )
            )
            while not server.requests:
                await asyncio.sleep(0.01)
            time.sleep(1.0)  # the loop blocked: the answer comes at 0.5 s, the timeout at 0.3-0.4 s
            return await sent
        finally:
            await transport.aclose()

    with Scripted([late(0.5, response(b"{}"))]) as server:
        result = asyncio.run(go(server))
    assert (result.status, result.body) == (200, b"{}")


@pytest.mark.parametrize("mode", SENDERS)
def test_transport_connect_error(mode: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        SENDERS[mode](f"http://127.0.0.1:{port}/")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (cryptography: an Airflow dependency)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize("mode", SENDERS)
def test_transport_https_verifies_and_keeps_alive(mode: str, tls_files: tuple[Path, Path]) -> None:
    cert_file, key_file = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    trusted = ssl.create_default_context(cafile=str(cert_file))
    with Scripted([response(b"{}")] * 3, tls=server_context) as server:
        url = f"https://localhost:{server.port}/"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            SENDERS[mode](url)  # certifi's CAs, as httpx: a self-signed certificate is refused
        if mode == "async":

            async def go() -> list[Any]:
                transport = LeanAsyncTransport()
                transport._ssl = trusted
                try:
                    return [
                        await transport.send("GET", url, {"host": "h"}, None, TIMEOUT, None) for _ in range(2)
                    ]
                finally:
                    await transport.aclose()

            results = asyncio.run(go())
        else:
            transport = LeanSyncTransport()
            transport._ssl = trusted
            results = [transport.send("GET", url, {"host": "h"}, None, TIMEOUT, None) for _ in range(2)]
            transport.close()
    assert [r.body for r in results] == [b"{}", b"{}"]
    assert server.connections == 2  # the refused one, then one kept alive for both requests


def test_async_transport_pool_is_bounded_and_times_out() -> None:
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=30.0)

    async def go(server: Scripted) -> list[Any]:
        transport = LeanAsyncTransport(limits)
        try:
            results = await asyncio.gather(
                *(
                    transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
                    for _ in range(10)
                )
            )
            assert transport.connections <= 2
            # both connections busy for long: a third request waits for the pool, then gives up
            slow = [
                asyncio.create_task(
                    transport.send("GET", server.url + "/", {"host": "h"}, None, TIMEOUT, None)
                )
                for _ in range(2)
            ]
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await transport.send(
                    "GET", server.url + "/", {"host": "h"}, None, httpx.Timeout(5.0, pool=0.2), None
                )
            for task in slow:
                task.cancel()
            await asyncio.gather(*slow, return_exceptions=True)
            return results
        finally:
            await transport.aclose()

    with Scripted([response(b"{}")] * 10 + [hang(3.0), hang(3.0)]) as server:
        results = asyncio.run(go(server))
    assert [r.status for r in results] == [200] * 10
    assert server.connections <= 4


def test_httpx_clients_on_the_lean_transports() -> None:
    """Anything else using the shared clients gets a plain httpx client over the transports."""
    with Scripted([response(gzip.compress(b'{"a":1}'), "Content-Encoding: gzip")] * 2) as server:

        async def go() -> Any:
            try:
                return (await shared_async_client().get(server.url + "/x")).json()
            finally:
                await aclose_shared_client()

        assert asyncio.run(go()) == {"a": 1}
        assert client_module.shared_sync_client().get(server.url + "/x").json() == {"a": 1}


# --------------------------------------------------------------------------- the client over them


def test_client_maps_transport_failures() -> None:
    with Scripted([b"", response(b"x" * 50)]) as server:
        call = Call(
            endpoint=parse_endpoint("x", server.url),
            action="GetJobStatus",
            version="2024-05-18",
            method="GET",
        )
        client = AlibabaCloudClient(StaticSource(Credentials("AK", "SK")), max_retries=0, max_body_bytes=10)

        async def go() -> None:
            try:
                with pytest.raises(
                    TransportError, match=r"GetJobStatus to 127\.0\.0\.1:\d+: RemoteProtocolError"
                ):
                    await client.asend(call)
                with pytest.raises(BadResponseError, match="larger than 10 bytes"):
                    await client.asend(call)
            finally:
                await aclose_shared_client()

        asyncio.run(go())
