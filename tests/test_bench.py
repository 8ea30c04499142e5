"""The benchmark harness (``bench/``), and the fast path it measures.

- The harness runs end to end on a tiny size, so that ``make bench`` cannot rot. No test here
  asserts a time or a ratio: the harness's figures are for ``bench/RESULTS.md``.
- The fast path must behave exactly like the plain one: prepared signers give the headers the
  public signing functions give; the lean transports frame, cap, decode, time out and fail the
  way httpx's do; hooks of one loop share a connection lookup; a loop's client is closed when
  the loop ends.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aliyun_tasks import client as client_module
from airflow_aliyun_tasks import signing
from airflow_aliyun_tasks._transport import BodyTooLargeError, LeanAsyncTransport, LeanSyncTransport
from airflow_aliyun_tasks.client import AlibabaCloudClient, Call, aclose_shared_client, shared_async_client
from airflow_aliyun_tasks.config import parse_endpoint
from airflow_aliyun_tasks.credentials import Credentials, StaticSource
from airflow_aliyun_tasks.errors import BadResponseError, TransportError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.testing import Emulator

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = httpx.Timeout(5.0, pool=5.0)


# --------------------------------------------------------------------------- the harness


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "results": json.loads((out / "results.json").read_text(encoding="utf-8")),
        "report": (out / "RESULTS.md").read_text(encoding="utf-8"),
    }


def test_tiny_run_measures_every_variant(tiny_run: dict[str, Any]) -> None:
    poll = tiny_run["results"]["poll"]
    assert poll["errors"] == {}
    for service in ("dlf", "dataworks", "mma", "pds"):
        for kind in ("package", "sdk", "floor"):
            for c in (1, 4):
                assert poll["cpu_us"][f"{kind}/{service}/async/c{c}"]["n"] == 1
        for kind in ("package", "sdk"):
            assert poll["cpu_us"][f"{kind}/{service}/sync/c1"]["n"] == 1
    for kind in ("package-aiohttp", "package-httpx", "package-httpx-aiohttp"):
        assert f"{kind}/dataworks/async/c4" in poll["cpu_us"]
    assert "package-httpx/dataworks/sync/c1" in poll["cpu_us"]


def test_tiny_run_drives_the_trigger_at_scale(tiny_run: dict[str, Any]) -> None:
    results = tiny_run["results"]
    (steady,) = results["scale"]["steady/12"]
    (burst,) = results["scale"]["burst/12"]
    assert steady["first_polls_before_window"] == 12
    assert steady["failed_polls"] == 0
    assert steady["events"] == 0  # the server answers "running": no wait ends
    assert burst["completed_first_polls"] == 12
    assert burst["requests"] == 12
    assert burst["failed_polls"] == 0
    assert {"bare", "fake-hook", "floor", "trigger-no-portal", "trigger-profile"} <= set(results["frontier"])
    assert results["frontier"]["trigger-profile"]["profile"]["components"]
    assert results["memory"]["rss/12"]["completed_polls"] >= 24
    assert results["memory"]["heap/12"]["measure"] == "Python heap (tracemalloc)"


def test_tiny_run_checks_the_sensors_import(tiny_run: dict[str, Any]) -> None:
    imports = tiny_run["results"]["imports"]
    assert set(imports) == {"airflow.sdk", "airflow.sdk DAG + BaseSensorOperator"}
    for probe in imports.values():
        assert "airflow_aliyun_tasks.sensors" in probe["added"]
        assert not {"alibabacloud_credentials", "aiohttp", "httptools"} & set(probe["heavy"])


def test_tiny_run_writes_the_report(tiny_run: dict[str, Any]) -> None:
    report, results = tiny_run["report"], tiny_run["results"]
    for heading in (
        "## Targets",
        "## 1. Client CPU per status poll",
        "## 2. Where a poll's CPU goes",
        "## 3. The trigger at scale",
        "## 4. Memory per wait",
        "## 5. DAG-parse cost",
    ):
        assert heading in report
    assert "`--tiny` run" in report
    assert results["machine"]["cpu_count"] >= 1
    assert results["machine"]["versions"]["apache-airflow"]
    targets = results["summary"]["targets"]
    assert len(targets) >= 14
    assert all(set(t) == {"target", "measured", "met", "detail"} for t in targets)


# --------------------------------------------------------------------------- prepared signers

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_query = st.dictionaries(_text, st.one_of(st.none(), _text), max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "put"]),
    host=_text,
    path=_text,
    query=st.one_of(st.none(), _query),
    body=st.binary(max_size=40),
    content_type=st.sampled_from([None, signing.JSON_CONTENT_TYPE]),
    token=st.one_of(st.none(), _text),
    date=_text,
    nonce=_text,
)
def test_prepared_signers_give_the_public_functions_headers(
    method: str,
    host: str,
    path: str,
    query: dict[str, str | None] | None,
    body: bytes,
    content_type: str | None,
    token: str | None,
    date: str,
    nonce: str,
) -> None:
    common: dict[str, Any] = {
        "method": method,
        "host": host or "h",
        "pathname": "/" + path,
        "query": query,
        "action": "GetJobStatus",
        "version": "2024-05-18",
        "content_type": content_type,
        "access_key_id": "LTAI5tExampleKey",
        "access_key_secret": "secret " + path,
        "security_token": token,
    }
    acs3 = signing.PreparedAcs3Signer(body=body, **common)
    for _ in range(2):  # and again: nothing in the prepared signer changes between calls
        expected = signing.acs3_headers(body=body, **common, date=date, nonce=nonce)
        assert acs3.headers(date, nonce) == expected
        assert list(acs3.headers(date, nonce)) == list(expected)
    pds = signing.PreparedPdsSigner(**common)
    expected = signing.pds_headers(**common, date=date, nonce=nonce)
    assert pds.headers(date, nonce) == expected
    assert list(pds.headers(date, nonce)) == list(expected)


def test_prepared_signers_do_not_mix_keys() -> None:
    common: dict[str, Any] = {
        "method": "POST",
        "host": "bj1.api.aliyunpds.com",
        "pathname": "/v2/async_task/get",
        "query": None,
        "action": "GetAsyncTask",
        "version": "2022-03-01",
        "content_type": signing.JSON_CONTENT_TYPE,
        "access_key_id": "AK",
        "security_token": None,
    }
    date = "Thu, 26 Nov 2026 15:56:55 GMT"
    one = signing.PreparedPdsSigner(access_key_secret="one", **common)
    two = signing.PreparedPdsSigner(access_key_secret="two", **common)
    assert one.headers(date, "n") == signing.pds_headers(
        access_key_secret="one", **common, date=date, nonce="n"
    )
    assert two.headers(date, "n") == signing.pds_headers(
        access_key_secret="two", **common, date=date, nonce="n"
    )
    assert one.headers(date, "n")["authorization"] != two.headers(date, "n")["authorization"]


def test_dates_are_the_formatted_dates() -> None:
    for t in (0.0, 1.5, 1764172615.999, 1764172616.0):
        assert signing.dates(t) == (signing.format_acs_date(t), signing.format_http_date(t))


def test_client_headers_are_the_public_signers_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client signs a call it has sent before with the prepared signer: same headers."""
    call = Call(
        endpoint=parse_endpoint("x", "http://127.0.0.1:8080"),
        action="GetJobStatus",
        version="2024-05-18",
        method="GET",
        path="/",
        query={"JobId": "j 1*~"},
    )
    creds = Credentials("AK", "SK", "token")
    client = AlibabaCloudClient(StaticSource(creds))
    monkeypatch.setattr(client_module.time, "time", lambda: 1764172615.25)
    first = client._headers(call, creds)
    second = client._headers(call, creds)
    for headers in (first, second):
        expected = signing.acs3_headers(
            method="GET",
            host="127.0.0.1:8080",
            pathname="/",
            query={"JobId": "j 1*~"},
            action="GetJobStatus",
            version="2024-05-18",
            body=b"",
            content_type=None,
            access_key_id="AK",
            access_key_secret="SK",
            security_token="token",
            date=signing.format_acs_date(1764172615.25),
            nonce=headers["x-acs-signature-nonce"],
        )
        expected.update({"accept": "application/json", "user-agent": client_module.USER_AGENT})
        assert headers == expected
    assert first["x-acs-signature-nonce"] != second["x-acs-signature-nonce"]


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


# --------------------------------------------------------------------------- the client and hook


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


def test_loop_client_is_closed_when_the_loop_ends() -> None:
    seen: list[Any] = []

    async def go() -> None:
        client = shared_async_client()
        seen.append(client_module._lean[client])
        assert not client.is_closed

    asyncio.run(go())
    (transport,) = seen
    assert transport._closed


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = AlibabaCloudTasksHook.aget_connection

    async def aget_connection(cls: type, conn_id: str) -> Any:
        calls.append(conn_id)
        await asyncio.sleep(0.01)  # a lookup takes a while: others arrive meanwhile
        return await original(conn_id)

    monkeypatch.setattr(AlibabaCloudTasksHook, "aget_connection", classmethod(aget_connection))
    return calls


def test_hooks_of_one_loop_share_a_connection_lookup(
    emulator: Emulator, make_conn: Any, lookups: list[str]
) -> None:
    conn = make_conn("aliyun_shared")
    emulator.add_dataworks_job("shared", ["Running"])

    async def go() -> list[Any]:
        try:
            hooks = [AlibabaCloudTasksHook(conn) for _ in range(20)]
            return await asyncio.gather(*(h.aget_dataworks_job_status("shared") for h in hooks))
        finally:
            await aclose_shared_client()

    statuses = asyncio.run(go())
    assert [s.raw_status for s in statuses] == ["Running"] * 20
    assert lookups == ["aliyun_shared"]
    asyncio.run(go())  # another loop: its own lookup
    assert lookups == ["aliyun_shared"] * 2


def test_a_failed_shared_lookup_is_not_shared(emulator: Emulator, lookups: list[str]) -> None:
    async def go() -> list[Any]:
        hooks = [AlibabaCloudTasksHook("aliyun_missing_everywhere") for _ in range(3)]
        return await asyncio.gather(*(h.asettings() for h in hooks), return_exceptions=True)

    results = asyncio.run(go())
    assert all(isinstance(r, Exception) for r in results)
    assert lookups == ["aliyun_missing_everywhere"] * 3


def test_hook_builds_a_status_call_once(emulator: Emulator, make_conn: Any) -> None:
    hook = AlibabaCloudTasksHook(make_conn("aliyun_calls"))
    emulator.add_dlf_task("t-1", ["Running"])
    first = hook._status_call(hook.settings, "dlf", {"async_task_id": "t-1", "catalog_id": None})
    again = hook._status_call(hook.settings, "dlf", {"async_task_id": "t-1", "catalog_id": None})
    other = hook._status_call(hook.settings, "dlf", {"async_task_id": "t-2", "catalog_id": None})
    assert again is first
    assert other[1].query == {"TaskId": "t-2"}
    for _ in range(2):
        status = hook.get_dlf_async_task_status("t-1")
        assert status.ids == {"async_task_id": "t-1"}
        status.ids["mutated"] = "by a caller"  # each status has its own ids
    assert hook.get_dlf_async_task_status("t-1").ids == {"async_task_id": "t-1"}


@pytest.fixture(autouse=True)
def _no_leaked_sync_pool() -> Iterator[None]:
    yield
    shared = client_module._sync_client
    if shared is not None:
        shared.close()
        client_module._sync_client = None
