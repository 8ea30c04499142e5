"""Proxies, private CAs, timeouts and the User-Agent: the connection extras, their resolution
with the environment (:mod:`airflow_aliyun_tasks.network`) and the client over real HTTPS to the
emulator (a test CA), directly and through a small CONNECT proxy on the loopback interface.

The real proxies (Squid, mitmproxy) are in tests/test_proxies.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.metadata
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_aliyun_tasks import _loop_clients as loop_clients
from airflow_aliyun_tasks import client as client_module
from airflow_aliyun_tasks.client import AlibabaCloudClient, Call, default_user_agent
from airflow_aliyun_tasks.config import (
    ENDPOINT_EXTRAS,
    EXTRA_FIELDS,
    Endpoint,
    NetworkSettings,
    ProxyURL,
    parse_connection,
    parse_proxy,
)
from airflow_aliyun_tasks.credentials import Credentials, StaticSource
from airflow_aliyun_tasks.errors import AlibabaCloudError, ConfigurationError, TransportError
from airflow_aliyun_tasks.network import Route, Router, environment_key
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator

trustme = pytest.importorskip("trustme")

PASSWORD = "pr0xy-s3cret"


def parse(extra: dict[str, Any]) -> Any:
    return parse_connection(login="LTAI", password="secret", extra={"region_id": "cn-hangzhou", **extra})


# --------------------------------------------------------------------------- config


def test_network_extras_are_known() -> None:
    assert {
        "https_proxy",
        "http_proxy",
        "no_proxy",
        "trust_env",
        "ca_bundle",
        "connect_timeout",
        "user_agent",
    } <= EXTRA_FIELDS


def test_defaults_trust_the_environment() -> None:
    s = parse({})
    assert s.network == NetworkSettings()
    assert s.network.trust_env is True
    assert s.connect_timeout is None
    assert s.user_agent is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://proxy.corp:3128", ProxyURL("http", "proxy.corp", 3128)),
        ("proxy.corp:8080", ProxyURL("http", "proxy.corp", 8080)),
        ("http://proxy.corp", ProxyURL("http", "proxy.corp", 80)),
        ("https://proxy.corp", ProxyURL("https", "proxy.corp", 443)),
        ("http://u%40x:p%3Aw@10.0.0.1:3128/", ProxyURL("http", "10.0.0.1", 3128, "u@x", "p:w")),
        ("http://[::1]:3128", ProxyURL("http", "::1", 3128)),
    ],
)
def test_proxy_urls(value: str, expected: ProxyURL) -> None:
    assert parse_proxy("https_proxy", value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "socks5://proxy:1080",
        "ftp://proxy:21",
        "http://",
        f"http://user:{PASSWORD}@proxy:3128/path",
        f"http://user:{PASSWORD}@proxy:notaport",
        "http://prox y:3128",
    ],
)
def test_bad_proxy_urls_are_refused_without_echoing_a_password(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse({"https_proxy": value})
    assert info.value.field == "https_proxy"
    assert PASSWORD not in str(info.value)


def test_proxy_password_never_in_repr_or_display() -> None:
    s = parse({"https_proxy": f"http://alice:{PASSWORD}@proxy.corp:3128", "http_proxy": "proxy.corp:3128"})
    proxy = s.network.https_proxy
    assert proxy is not None
    assert proxy.password == PASSWORD
    assert proxy.url == f"http://alice:{PASSWORD}@proxy.corp:3128"
    for text in (repr(s), str(s), repr(proxy), str(proxy), proxy.display, repr(Route(proxy))):
        assert PASSWORD not in text
    assert proxy.display == "http://proxy.corp:3128"


def test_no_proxy_and_trust_env() -> None:
    s = parse({"no_proxy": " .internal , 10.0.0.1,localhost ", "trust_env": "false"})
    assert s.network.no_proxy == ".internal,10.0.0.1,localhost"
    assert s.network.trust_env is False


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_ca_bundle_checked_at_parse_time(ca_file: str, tmp_path: Path) -> None:
    assert parse({"ca_bundle": ca_file}).network.ca_bundle == ca_file
    with pytest.raises(ConfigurationError, match="is not a file") as info:
        parse({"ca_bundle": str(tmp_path / "missing.pem")})
    assert info.value.field == "ca_bundle"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match="no PEM certificate"):
        parse({"ca_bundle": str(junk)})
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError, match="not a valid PEM CA bundle"):
        parse({"ca_bundle": str(broken)})


def test_connect_timeout_and_user_agent() -> None:
    s = parse({"connect_timeout": "2.5", "user_agent": "team-etl/1.0"})
    assert s.connect_timeout == 2.5
    assert s.user_agent == "team-etl/1.0"
    with pytest.raises(ConfigurationError, match="connect_timeout"):
        parse({"connect_timeout": 0})
    with pytest.raises(ConfigurationError, match="user_agent"):
        parse({"user_agent": "bad\nheader"})


def test_fingerprint_covers_the_network_settings() -> None:
    base = parse({}).fingerprint()
    for extra in (
        {"https_proxy": "http://proxy:1"},
        {"https_proxy": "http://u:a@proxy:1"},
        {"no_proxy": "x"},
        {"trust_env": False},
        {"connect_timeout": 1},
        {"user_agent": "x"},
    ):
        assert parse(extra).fingerprint() != base, extra
    assert (
        parse({"https_proxy": "http://u:a@proxy:1"}).fingerprint()
        != parse({"https_proxy": "http://u:b@proxy:1"}).fingerprint()
    )


# --------------------------------------------------------------------------- resolution

HTTPS_EP = Endpoint("https", "dlf.cn-hangzhou.aliyuncs.com")
HTTP_EP = Endpoint("http", "127.0.0.1", 8080)


def router(env: dict[str, str], **extra: Any) -> Router:
    return Router(parse(extra).network, env)


def test_environment_proxies_honoured_lower_case_first() -> None:
    r = router({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:1", "HTTP_PROXY": "http://h:2"})
    route = r.route(HTTPS_EP)
    assert route is not None
    assert route.proxy == ProxyURL("http", "lower", 1)
    route = r.route(HTTP_EP)
    assert route is not None
    assert route.proxy == ProxyURL("http", "h", 2)


def test_all_proxy_is_the_fallback() -> None:
    r = router({"ALL_PROXY": "http://all:3"})
    assert r.route(HTTPS_EP) == Route(ProxyURL("http", "all", 3))
    assert r.route(HTTP_EP) == Route(ProxyURL("http", "all", 3))
    r = router({"ALL_PROXY": "http://all:3", "HTTPS_PROXY": "http://s:4"})
    assert r.route(HTTPS_EP) == Route(ProxyURL("http", "s", 4))


def test_extras_win_over_the_environment() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    r = router(env, https_proxy="http://extra:2", no_proxy="example.org")
    assert r.route(HTTPS_EP) == Route(ProxyURL("http", "extra", 2))
    assert router(env).route(HTTPS_EP) is None  # NO_PROXY=* from the environment


@pytest.mark.parametrize(
    "no_proxy", ["aliyuncs.com", ".aliyuncs.com", "dlf.cn-hangzhou.aliyuncs.com", "*", "x, aliyuncs.com"]
)
def test_no_proxy_bypasses(no_proxy: str) -> None:
    assert router({"HTTPS_PROXY": "http://p:1", "NO_PROXY": no_proxy}).route(HTTPS_EP) is None
    assert router({}, https_proxy="http://p:1", no_proxy=no_proxy).route(HTTPS_EP) is None


def test_no_proxy_with_port_and_address() -> None:
    env = {"HTTP_PROXY": "http://p:1"}
    assert router({**env, "no_proxy": "127.0.0.1"}).route(HTTP_EP) is None
    assert router({**env, "no_proxy": "127.0.0.1:8080"}).route(HTTP_EP) is None
    assert router({**env, "no_proxy": "127.0.0.2"}).route(HTTP_EP) is not None


def test_trust_env_false_ignores_the_environment(ca_file: str) -> None:
    env = {"HTTPS_PROXY": "http://env:1", "SSL_CERT_FILE": ca_file}
    r = router(env, trust_env=False)
    assert r.direct
    assert r.route(HTTPS_EP) is None
    assert environment_key(parse({"trust_env": False}).network, env) == ()
    assert environment_key(parse({}).network, env) != environment_key(parse({}).network, {})


def test_ca_bundle_and_ssl_cert_file(ca_file: str) -> None:
    assert router({}, ca_bundle=ca_file).route(HTTPS_EP) == Route(None, ca_file)
    assert router({"SSL_CERT_FILE": ca_file}).route(HTTPS_EP) == Route(None, ca_file)
    assert router({"SSL_CERT_DIR": "/etc/ssl/certs"}).route(HTTPS_EP) == Route(None, None, "/etc/ssl/certs")
    # a plain-http endpoint has no TLS to verify: direct
    assert router({}, ca_bundle=ca_file).route(HTTP_EP) is None


def test_nothing_configured_is_direct() -> None:
    assert router({}).direct
    client = AlibabaCloudClient(StaticSource(Credentials("a", "b")), network=parse({}).network)
    assert client._router is None  # the lean transports, unchanged


# --------------------------------------------------------------------------- User-Agent and timeouts


def test_user_agent() -> None:
    import airflow

    ua = default_user_agent()
    parts = ua.split(" ")
    assert parts[0].startswith("airflow-aliyun-tasks/")
    assert parts[1] == f"apache-airflow/{airflow.__version__}"
    assert parts[2] == "Python/{}.{}.{}".format(*sys.version_info[:3])
    assert parts[0] == f"airflow-aliyun-tasks/{importlib.metadata.version('airflow-aliyun-tasks')}"
    client = AlibabaCloudClient(StaticSource(Credentials("a", "b")), user_agent="team-etl/1.0")
    assert client.user_agent == f"{ua} team-etl/1.0"
    call = Call(endpoint=HTTPS_EP, action="GetCallerIdentity", version="2015-04-01")
    assert client._headers(call, Credentials("a", "b"))["user-agent"] == f"{ua} team-etl/1.0"


def test_user_agent_reads_no_distribution_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first client of a process (a triggerer's first wait) builds the User-Agent without
    ``importlib.metadata``, whose scan of every installed distribution left about half a megabyte
    of freed but unreturned heap in each triggerer."""
    expected = default_user_agent()

    def scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the User-Agent scanned the installed distributions")

    monkeypatch.setattr(importlib.metadata, "version", scan)
    monkeypatch.setattr(importlib.metadata, "distribution", scan)
    monkeypatch.setattr(importlib.metadata.Distribution, "from_name", scan)
    default_user_agent.cache_clear()
    try:
        assert default_user_agent() == expected
    finally:
        default_user_agent.cache_clear()


def test_connect_timeout_beside_timeout() -> None:
    client = AlibabaCloudClient(StaticSource(Credentials("a", "b")), timeout=7, connect_timeout=2)
    assert (client.timeout.connect, client.timeout.read) == (2, 7)
    client = AlibabaCloudClient(StaticSource(Credentials("a", "b")), timeout=7)
    assert client.timeout.connect == 7


# --------------------------------------------------------------------------- over real HTTPS


@pytest.fixture(scope="module")
def tls_emulator(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    directory = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = directory / "chain.pem", directory / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    emu = Emulator()
    emu.start(ssl_certfile=str(chain), ssl_keyfile=str(key))
    try:
        yield emu
    finally:
        emu.stop()


class ConnectProxy:
    """A minimal CONNECT-only forward proxy with basic auth, on 127.0.0.1 (for the client's
    proxied path; Squid proves the same in tests/test_proxies.py)."""

    def __init__(self, user: str = "alice", password: str = PASSWORD) -> None:
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.connects: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, password: str = PASSWORD) -> str:
        return f"http://alice:{password}@127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                return
            if headers.get("proxy-authorization") != self.expected:
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'proxy-authenticate: Basic realm="test"\r\ncontent-length: 0\r\n\r\n'
                )
                return
            host, _, port = target.rpartition(":")
            if host != "127.0.0.1":
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                return
            self.connects.append(target)
            upstream = socket.create_connection((host, int(port)))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._pipe(conn, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=copy, args=(b, a), daemon=True)
        t.start()
        copy(a, b)
        t.join(5)
        b.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()


@pytest.fixture
def connect_proxy() -> Iterator[ConnectProxy]:
    proxy = ConnectProxy()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(autouse=True)
def _close_route_clients() -> Iterator[None]:
    yield
    loop_clients.close_sync_clients()


def _client(**extra: Any) -> AlibabaCloudClient:
    settings = parse_connection(
        login=DEFAULT_ACCESS_KEY_ID,
        password=DEFAULT_ACCESS_KEY_SECRET,
        extra={"region_id": "cn-hangzhou", "trust_env": False, **extra},
    )
    return AlibabaCloudClient(
        StaticSource(Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)),
        max_retries=0,
        network=settings.network,
    )


def _identity(emu: Emulator) -> Call:
    return Call(
        endpoint=Endpoint("https", "127.0.0.1", emu.port), action="GetCallerIdentity", version="2015-04-01"
    )


def test_untrusted_certificate_says_set_ca_bundle(tls_emulator: Emulator) -> None:
    with pytest.raises(TransportError) as info:
        _client().send(_identity(tls_emulator))
    assert "ca_bundle" in str(info.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


async def test_untrusted_certificate_says_set_ca_bundle_async(
    tls_emulator: Emulator, aclose_pool: None
) -> None:
    with pytest.raises(TransportError, match="ca_bundle"):
        await _client().asend(_identity(tls_emulator))


def test_ca_bundle_trusts_the_private_ca(tls_emulator: Emulator, ca_file: str) -> None:
    body = _client(ca_bundle=ca_file).send(_identity(tls_emulator)).body
    assert body["AccountId"]


async def test_ca_bundle_trusts_the_private_ca_async(
    tls_emulator: Emulator, ca_file: str, aclose_pool: None
) -> None:
    body = (await _client(ca_bundle=ca_file).asend(_identity(tls_emulator))).body
    assert body["AccountId"]


def test_through_a_connect_proxy(tls_emulator: Emulator, ca_file: str, connect_proxy: ConnectProxy) -> None:
    client = _client(ca_bundle=ca_file, https_proxy=connect_proxy.url())
    assert client.send(_identity(tls_emulator)).body["AccountId"]
    assert connect_proxy.connects == [f"127.0.0.1:{tls_emulator.port}"]


async def test_through_a_connect_proxy_async(
    tls_emulator: Emulator, ca_file: str, connect_proxy: ConnectProxy, aclose_pool: None
) -> None:
    client = _client(ca_bundle=ca_file, https_proxy=connect_proxy.url())
    assert (await client.asend(_identity(tls_emulator))).body["AccountId"]
    assert connect_proxy.connects == [f"127.0.0.1:{tls_emulator.port}"]


def test_no_proxy_goes_direct(tls_emulator: Emulator, ca_file: str, connect_proxy: ConnectProxy) -> None:
    client = _client(ca_bundle=ca_file, https_proxy=connect_proxy.url(), no_proxy="127.0.0.1")
    assert client.send(_identity(tls_emulator)).body["AccountId"]
    assert connect_proxy.connects == []


def test_environment_proxy(
    tls_emulator: Emulator, ca_file: str, connect_proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url())
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    settings = parse_connection(login="a", password="b", extra={"region_id": "cn-hangzhou"})
    client = AlibabaCloudClient(
        StaticSource(Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)), network=settings.network
    )
    assert client.send(_identity(tls_emulator)).body["AccountId"]
    assert len(connect_proxy.connects) == 1


def test_wrong_proxy_password_names_the_proxy_not_the_password(
    tls_emulator: Emulator, ca_file: str, connect_proxy: ConnectProxy
) -> None:
    client = _client(ca_bundle=ca_file, https_proxy=connect_proxy.url("wrong-" + PASSWORD))
    with pytest.raises(TransportError) as info:
        client.send(_identity(tls_emulator))
    text = str(info.value)
    assert f"via proxy http://127.0.0.1:{connect_proxy.port}" in text
    assert "407" in text
    assert PASSWORD not in text
    assert PASSWORD not in repr(info.value)
    assert connect_proxy.connects == []


def test_http_proxy_error_is_not_retried_forever(connect_proxy: ConnectProxy) -> None:
    # A plain-http endpoint through an http proxy is forwarded (not tunnelled): this proxy
    # refuses anything but CONNECT, and the error names it.
    client = _client(http_proxy=connect_proxy.url())
    call = Call(endpoint=Endpoint("http", "127.0.0.1", 9), action="GetCallerIdentity", version="2015-04-01")
    with pytest.raises(AlibabaCloudError) as info:
        client.send(call)
    assert PASSWORD not in str(info.value)


def test_route_clients_are_shared(tls_emulator: Emulator, ca_file: str) -> None:
    a, b = _client(ca_bundle=ca_file), _client(ca_bundle=ca_file)
    a.send(_identity(tls_emulator))
    b.send(_identity(tls_emulator))
    assert len(loop_clients._route_sync_clients) == 1


@pytest.mark.parametrize("retries", [True, False])
def test_call_api_goes_through_the_connections_proxy(
    tls_emulator: Emulator,
    ca_file: str,
    connect_proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    retries: bool,
) -> None:
    """A start without a client token (``retries=False``) takes the connection's route too."""
    from airflow_aliyun_tasks import hooks

    monkeypatch.setattr(hooks, "_clients", {})
    extra = {
        "region_id": "cn-hangzhou",
        "trust_env": False,
        "https_proxy": connect_proxy.url(),
        "ca_bundle": ca_file,
        **dict.fromkeys(ENDPOINT_EXTRAS, tls_emulator.url),
    }
    conn = {"conn_type": "aliyun", "login": DEFAULT_ACCESS_KEY_ID, "password": DEFAULT_ACCESS_KEY_SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_ALIYUN_ROUTED", json.dumps({**conn, "extra": extra}))
    hook = hooks.AlibabaCloudTasksHook("aliyun_routed")
    body = hook.call_api("GetCallerIdentity", "2015-04-01", service="sts", retries=retries)
    assert body["AccountId"]
    assert connect_proxy.connects == [f"127.0.0.1:{tls_emulator.port}"]


def test_httpx_proxy_error_type_is_mapped() -> None:
    # The text of httpx's ProxyError never holds the proxy URL.
    exc = httpx.ProxyError("407 Proxy Authentication Required")
    route = Route(parse_proxy("https_proxy", f"http://u:{PASSWORD}@p:1"))
    err = AlibabaCloudClient._transport_error(_identity_call(), exc, route)
    assert "via proxy http://p:1" in str(err)
    assert PASSWORD not in str(err)


def _identity_call() -> Call:
    return Call(endpoint=HTTPS_EP, action="GetCallerIdentity", version="2015-04-01")


async def test_a_routes_async_client_is_kept_while_its_loop_runs(aclose_pool: None) -> None:
    """One keep-alive pool per route and loop: the route's client outlives a request."""
    route = Route(cafile=None)
    first = client_module.route_async_client(route)
    await asyncio.sleep(0.05)  # a few turns of the loop
    assert not first.is_closed
    assert client_module.route_async_client(route) is first
