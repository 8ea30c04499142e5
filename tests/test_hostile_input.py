"""Hostile input, end to end: malformed connections and ids, and hostile responses.

Requests side: every malformed connection field and every hostile id is a
``ConfigurationError`` naming the field, raised before anything is sent: the emulator (every
endpoint of the connection, STS included, points at it) counts no request, whether the call
comes from the hook (sync or async), a sensor (poke, or the first poke of a deferrable sensor)
or the trigger (whose single event is an ``error`` naming the field). The parse-level cases are
in ``test_config.py`` and the hook's id checks in ``test_hook.py``; this module proves the
"nothing sent" property on every path.

Response side: a tiny local server answers every call with a hostile response (huge, endless or
compressed-bomb bodies, HTML, binary, JSON of the wrong shape, broken HTTP): the hook, sync and
async, raises only the package's own errors (``AlibabaCloudError`` subclasses).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks import sensors as sensors_module
from airflow_aliyun_tasks.client import MAX_BODY_BYTES, aclose_shared_client
from airflow_aliyun_tasks.errors import (
    AlibabaCloudError,
    BadResponseError,
    ConfigurationError,
    NotFoundError,
    ServiceError,
    TransportError,
)
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.sensors import AlibabaCloudTaskSensor
from airflow_aliyun_tasks.services import SERVICES
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator
from airflow_aliyun_tasks.triggers import AlibabaCloudTaskTrigger

pytestmark = pytest.mark.usefixtures("fresh_clients")

AK, SK = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS as ENDPOINTS  # noqa: E402

ROLE_ARN = "acs:ram::1234567890123456:role/airflow"
OIDC_ARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa"
SERVICE_IDS: dict[str, dict[str, Any]] = {
    "dlf": {"async_task_id": "t-1"},
    "dataworks": {"job_id": "j-1"},
    "mma": {"source_id": 1, "async_task_id": 2},
    "pds": {"async_task_id": "p-1"},
}
#: Every service's sensor, from the sensors module (a new service's is in it by construction).
SENSORS: dict[str, type[AlibabaCloudTaskSensor]] = {
    cls.__dict__["service"]: cls
    for cls in vars(sensors_module).values()
    if isinstance(cls, type) and issubclass(cls, AlibabaCloudTaskSensor) and "service" in cls.__dict__
}
PATHS = ("hook_sync", "hook_async", "sensor_poke", "sensor_deferrable", "trigger")


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "oidc-token"
    path.write_text("header.payload.signature", encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- the paths


def run_path(path: str, conn_id: str, service: str, ids: dict[str, Any]) -> BaseException | dict[str, Any]:
    """Call one status read of ``service`` on ``path``; return what it raised (or the event)."""
    if path == "trigger":
        trig = AlibabaCloudTaskTrigger(
            service=service, ids=ids, aliyun_conn_id=conn_id, poll_interval=0.1, end_time=time.time() + 30
        )

        async def events() -> list[dict[str, Any]]:
            return [e.payload async for e in trig.run()]

        got = asyncio.run(events())
        assert len(got) == 1, got
        return got[0]
    try:
        if path == "hook_sync":
            AlibabaCloudTasksHook(conn_id).get_task_status(service, **ids)
        elif path == "hook_async":

            async def call() -> None:
                try:
                    await AlibabaCloudTasksHook(conn_id).aget_task_status(service, **ids)
                finally:
                    await aclose_shared_client()

            asyncio.run(call())
        else:
            sensor = SENSORS[service](
                task_id="hostile",
                aliyun_conn_id=conn_id,
                deferrable=path == "sensor_deferrable",
                poke_interval=1,
                timeout=30,
                **ids,
            )
            if path == "sensor_poke":
                sensor.poke({})  # type: ignore[arg-type]
            else:
                sensor.execute({})  # type: ignore[arg-type]
    except Exception as exc:
        return exc
    raise AssertionError(f"{path}: no error")


def assert_refused(outcome: BaseException | dict[str, Any], field: str) -> None:
    if isinstance(outcome, dict):  # the trigger's event
        assert outcome["status"] == "error", outcome
        assert f": {field}: " in outcome["message"], outcome["message"]
        return
    assert isinstance(outcome, ConfigurationError), repr(outcome)
    assert outcome.field == field, str(outcome)
    assert str(outcome).startswith(f"{field}: ")


def assert_nothing_sent(emu: Emulator) -> None:
    assert emu.request_count() == 0, emu.stats()["requests"]
    assert emu.request_count("sts") == 0, emu.stats()["requests"]


# --------------------------------------------------------------------------- malformed connections

# (case, login, password, extra, field). Every case keeps all five endpoints on the emulator,
# unless the case is about an endpoint: a request that got through would be counted.
BAD_CONNECTIONS: list[tuple[str, str | None, str | None, dict[str, Any], str]] = [
    ("region-missing", AK, SK, {"region_id": None}, "region_id"),
    ("region-underscore", AK, SK, {"region_id": "cn_hangzhou"}, "region_id"),
    ("region-path", AK, SK, {"region_id": "cn-hangzhou/../x"}, "region_id"),
    ("region-unicode", AK, SK, {"region_id": "cn-hangzh\u043eu"}, "region_id"),
    ("region-host-injection", AK, SK, {"region_id": "cn-hangzhou.evil.example"}, "region_id"),
    ("auth-type-unknown", AK, SK, {"auth_type": "magic"}, "auth_type"),
    ("extra-typo", AK, SK, {"regoin_id": "cn-hangzhou"}, "regoin_id"),
    ("access-key-no-login", None, SK, {}, "login"),
    ("access-key-no-password", AK, None, {}, "password"),
    ("access-key-login-newline", "LTAI5t\r\nX-Evil: 1", SK, {}, "login"),
    ("sts-no-token", AK, SK, {"auth_type": "sts"}, "security_token"),
    ("role-no-arn", AK, SK, {"auth_type": "ram_role_arn"}, "role_arn"),
    ("role-no-login", None, SK, {"auth_type": "ram_role_arn", "role_arn": ROLE_ARN}, "login"),
    ("role-bad-arn", AK, SK, {"auth_type": "ram_role_arn", "role_arn": "arn:aws:iam::1:role/x"}, "role_arn"),
    (
        "role-bad-session-name",
        AK,
        SK,
        {"auth_type": "ram_role_arn", "role_arn": ROLE_ARN, "role_session_name": "a b"},
        "role_session_name",
    ),
    (
        "role-session-too-short",
        AK,
        SK,
        {"auth_type": "ram_role_arn", "role_arn": ROLE_ARN, "role_session_expiration": 60},
        "role_session_expiration",
    ),
    (
        "role-sts-plain-http",
        AK,
        SK,
        {
            "auth_type": "ram_role_arn",
            "role_arn": ROLE_ARN,
            "sts_endpoint": "http://sts.cn-hangzhou.aliyuncs.com",
        },
        "sts_endpoint",
    ),
    (
        "oidc-no-provider",
        None,
        None,
        {"auth_type": "oidc_role_arn", "role_arn": ROLE_ARN, "oidc_token_file_path": "TOKEN"},
        "oidc_provider_arn",
    ),
    (
        "oidc-no-token-file",
        None,
        None,
        {"auth_type": "oidc_role_arn", "role_arn": ROLE_ARN, "oidc_provider_arn": OIDC_ARN},
        "oidc_token_file_path",
    ),
    (
        "oidc-no-role",
        None,
        None,
        {"auth_type": "oidc_role_arn", "oidc_provider_arn": OIDC_ARN, "oidc_token_file_path": "TOKEN"},
        "role_arn",
    ),
    (
        "oidc-bad-provider",
        None,
        None,
        {
            "auth_type": "oidc_role_arn",
            "role_arn": ROLE_ARN,
            "oidc_provider_arn": ROLE_ARN,
            "oidc_token_file_path": "TOKEN",
        },
        "oidc_provider_arn",
    ),
    ("uri-missing", None, None, {"auth_type": "credentials_uri"}, "credentials_uri"),
    (
        "uri-file",
        None,
        None,
        {"auth_type": "credentials_uri", "credentials_uri": "file:///etc/passwd"},
        "credentials_uri",
    ),
    (
        "uri-ftp",
        None,
        None,
        {"auth_type": "credentials_uri", "credentials_uri": "ftp://127.0.0.1/c"},
        "credentials_uri",
    ),
    (
        "uri-plain-http-remote",
        None,
        None,
        {"auth_type": "credentials_uri", "credentials_uri": "http://192.0.2.10/latest/meta-data/"},
        "credentials_uri",
    ),
    (
        "uri-userinfo",
        None,
        None,
        {"auth_type": "credentials_uri", "credentials_uri": "https://user:pw@creds.example/c"},
        "credentials_uri",
    ),
    (
        "uri-not-a-url",
        None,
        None,
        {"auth_type": "credentials_uri", "credentials_uri": "creds"},
        "credentials_uri",
    ),
    ("bearer-missing", None, None, {"auth_type": "bearer"}, "bearer_token"),
    ("endpoint-colons", AK, SK, {"dlf_endpoint": "::::"}, "dlf_endpoint"),
    ("endpoint-ftp", AK, SK, {"dataworks_endpoint": "ftp://127.0.0.1"}, "dataworks_endpoint"),
    (
        "endpoint-plain-http-remote",
        AK,
        SK,
        {"mma_endpoint": "http://maxcompute.cn-hangzhou.aliyuncs.com"},
        "mma_endpoint",
    ),
    (
        "endpoint-path",
        AK,
        SK,
        {"pds_endpoint": "https://bj1.api.aliyunpds.com/v2/async_task"},
        "pds_endpoint",
    ),
    ("endpoint-query", AK, SK, {"dlf_endpoint": "https://dlf.cn-hangzhou.aliyuncs.com/?x=1"}, "dlf_endpoint"),
    ("endpoint-port", AK, SK, {"dlf_endpoint": "http://127.0.0.1:99999"}, "dlf_endpoint"),
    (
        "endpoint-userinfo",
        AK,
        SK,
        {"dataworks_endpoint": "https://a:b@dataworks.aliyuncs.com"},
        "dataworks_endpoint",
    ),
    ("endpoint-crlf", AK, SK, {"mma_endpoint": "maxcompute.aliyuncs.com\r\nX-Evil: 1"}, "mma_endpoint"),
    ("endpoint-space", AK, SK, {"pds_endpoint": "bj1 .api.aliyunpds.com"}, "pds_endpoint"),
    ("endpoint-unicode", AK, SK, {"sts_endpoint": "sts.\u0430liyuncs.com"}, "sts_endpoint"),
    ("endpoint-not-a-string", AK, SK, {"dlf_endpoint": ["127.0.0.1"]}, "dlf_endpoint"),
    ("timeout-text", AK, SK, {"timeout": "soon"}, "timeout"),
    ("timeout-negative", AK, SK, {"timeout": -1}, "timeout"),
    ("timeout-nan", AK, SK, {"timeout": "nan"}, "timeout"),
    ("retries-too-many", AK, SK, {"max_retries": 1000}, "max_retries"),
    ("retries-fraction", AK, SK, {"max_retries": 1.5}, "max_retries"),
    ("vpc-garbage", AK, SK, {"use_vpc_endpoints": "maybe"}, "use_vpc_endpoints"),
    ("skew-garbage", AK, SK, {"correct_clock_skew": "sometimes"}, "correct_clock_skew"),
    ("pds-domain-host", AK, SK, {"pds_domain_id": "bj1.evil.example"}, "pds_domain_id"),
    ("pds-domain-slash", AK, SK, {"pds_domain_id": "bj1/x"}, "pds_domain_id"),
]


def connection(
    monkeypatch: pytest.MonkeyPatch,
    emu: Emulator,
    conn_id: str,
    login: str | None,
    password: str | None,
    extra: dict[str, Any],
    token_file: str,
) -> str:
    merged: dict[str, Any] = {"region_id": "cn-hangzhou", "pds_domain_id": "bj1"}
    merged.update(dict.fromkeys(ENDPOINTS, emu.url))
    merged.update({k: (token_file if v == "TOKEN" else v) for k, v in extra.items()})
    conn = {
        "conn_type": "aliyun",
        "login": login,
        "password": password,
        "extra": {k: v for k, v in merged.items() if v is not None},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("case", "login", "password", "extra", "field"), BAD_CONNECTIONS, ids=[c[0] for c in BAD_CONNECTIONS]
)
def test_malformed_connection_is_refused_before_any_request(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    token_file: str,
    case: str,
    login: str | None,
    password: str | None,
    extra: dict[str, Any],
    field: str,
    path: str,
) -> None:
    service = ("dlf", "dataworks", "mma", "pds")[sum(map(ord, case)) % 4]
    conn_id = connection(monkeypatch, emulator, "aliyun_hostile", login, password, extra, token_file)
    outcome = run_path(path, conn_id, service, dict(SERVICE_IDS[service]))
    assert_refused(outcome, field)
    assert_nothing_sent(emulator)


def test_extra_that_is_not_an_object_is_refused(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALIYUN_LIST_EXTRA",
        json.dumps({"conn_type": "aliyun", "login": AK, "password": SK, "extra": json.dumps([emulator.url])}),
    )
    for path in ("hook_sync", "hook_async", "trigger"):
        outcome = run_path(path, "aliyun_list_extra", "dataworks", {"job_id": "j"})
        if isinstance(outcome, dict):
            assert outcome["status"] == "error"
        else:
            assert isinstance(outcome, AlibabaCloudError | ValueError), repr(outcome)
    assert_nothing_sent(emulator)


# --------------------------------------------------------------------------- hostile ids

_LONG = "a" * 129
HOSTILE_TEXT_IDS = [
    "",
    " ",
    _LONG,
    "a/b",
    "/",
    "..",
    "a..b",
    "%2F",
    "a%2Fb",
    "a\nb",
    "a\r\nX-Evil: 1",
    "a\x00b",
]
HOSTILE_TEXT_IDS += ["a\tb", "a\x7fb", "j\u00f6b", "\u30b8\u30e7\u30d6", "\u0430bc", "a?b=1", "a#b", "a b"]
HOSTILE_INT_IDS = [
    "",
    "x",
    "1.5",
    "-1",
    "+1",
    "0x10",
    "1e3",
    "\uff11\uff12",
    "\u0661",
    "12\n",
    " 1",
    "1" * 20,
    "1/2",
    "%31",
]

BAD_IDS: list[tuple[str, dict[str, Any], str]] = []
for _name, _spec in SERVICES.items():  # every id of every service of the registry
    _valid = {p.name: 1 if p.integer else "x-1" for p in _spec.ids if p.required}
    for _param in _spec.ids:
        _values = HOSTILE_INT_IDS if _param.integer else HOSTILE_TEXT_IDS
        if not _param.required:
            _values = _values[1:]  # an empty optional id is simply left out
        for _value in _values:
            BAD_IDS.append((_name, {**_valid, _param.name: _value}, _param.name))


@pytest.mark.parametrize("path", ["sensor_poke", "sensor_deferrable", "trigger"])
@pytest.mark.parametrize(
    ("service", "ids", "field"), BAD_IDS, ids=[f"{s}-{f}-{ids[f]!r}" for s, ids, f in BAD_IDS]
)
def test_hostile_ids_are_refused_before_any_request(
    emulator: Emulator,
    make_conn: Callable[..., str],
    service: str,
    ids: dict[str, Any],
    field: str,
    path: str,
) -> None:
    conn = make_conn("aliyun_hostile_ids")
    outcome = run_path(path, conn, service, dict(ids))
    assert_refused(outcome, field)
    assert_nothing_sent(emulator)


# --------------------------------------------------------------------------- hostile responses


Responder = Callable[[bytes], Iterable[bytes]]


def _response(
    status: str, body: bytes, headers: Iterable[tuple[str, str]] = (), *, content_type: str | None = None
) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    if content_type:
        head.append(f"Content-Type: {content_type}")
    head += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _chunked(status: str, chunks: Iterable[bytes], content_type: str = "application/json") -> Iterator[bytes]:
    yield (
        f"HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\nContent-Type: {content_type}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


HTML_PAGE = b"<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Oops</h1></body></html>"
_BOMB = gzip.compress(b" " * (64 * MAX_BODY_BYTES), compresslevel=9)  # 64 MiB of JSON whitespace


def _endless(_: bytes) -> Iterator[bytes]:
    chunk = b"[" + b"0," * 32_000 + b"0]"
    return _chunked("200 OK", (chunk for _ in range(10_000)))  # ends far past any cap


# name -> (responder, what the hook must raise)
RESPONSES: dict[str, tuple[Responder, type[AlibabaCloudError]]] = {
    "huge-declared-body": (
        lambda _: [_response("200 OK", b" " * (MAX_BODY_BYTES + 1) + b"{}", content_type="application/json")],
        BadResponseError,
    ),
    "huge-chunked-body": (
        lambda _: _chunked("200 OK", [b" " * 65536] * (2 * MAX_BODY_BYTES // 65536) + [b"{}"]),
        BadResponseError,
    ),
    "endless-body": (_endless, BadResponseError),
    "gzip-bomb": (
        lambda _: [
            _response("200 OK", _BOMB, [("Content-Encoding", "gzip")], content_type="application/json")
        ],
        BadResponseError,
    ),
    "html-200": (lambda _: [_response("200 OK", HTML_PAGE, content_type="text/html")], BadResponseError),
    "html-404": (lambda _: [_response("404 Not Found", HTML_PAGE, content_type="text/html")], NotFoundError),
    "html-502": (lambda _: [_response("502 Bad Gateway", HTML_PAGE, content_type="text/html")], ServiceError),
    "binary-png": (
        lambda _: [
            _response("200 OK", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, content_type="image/png")
        ],
        BadResponseError,
    ),
    "invalid-utf8": (
        lambda _: [_response("200 OK", b'{"Bad": "\xff\xfe\xfd"}', content_type="application/json")],
        BadResponseError,
    ),
    "empty-200": (lambda _: [_response("200 OK", b"", content_type="application/json")], BadResponseError),
    "no-content-204": (lambda _: [b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"], BadResponseError),
    "json-list": (
        lambda _: [_response("200 OK", b"[1, 2, 3]", content_type="application/json")],
        BadResponseError,
    ),
    "json-string": (
        lambda _: [_response("200 OK", b'"Success"', content_type="application/json")],
        BadResponseError,
    ),
    "json-null": (
        lambda _: [_response("200 OK", b"null", content_type="application/json")],
        BadResponseError,
    ),
    "json-wrong-shape": (
        lambda _: [
            _response(
                "200 OK",
                json.dumps(
                    {
                        "TaskStatus": [],
                        "JobStatus": "Success",
                        "data": None,
                        "state": 5,
                        "status": ["Succeed"],
                    }
                ).encode(),
                content_type="application/json",
            )
        ],
        BadResponseError,
    ),
    "json-huge-integer": (
        lambda _: [
            _response("200 OK", b'{"RequestId": ' + b"9" * 5000 + b"}", content_type="application/json")
        ],
        BadResponseError,
    ),
    "error-json-wrong-types": (
        lambda _: [
            _response(
                "400 Bad Request",
                json.dumps({"Code": ["x"], "Message": {"a": 1}, "RequestId": 7}).encode(),
                content_type="application/json",
            )
        ],
        AlibabaCloudError,
    ),
    "redirect-elsewhere": (
        lambda _: [_response("302 Found", b"", [("Location", "http://127.0.0.1:9/stolen")])],
        BadResponseError,
    ),
    "garbage-status-line": (lambda _: [b"SSH-2.0-OpenSSH_9.6\r\n\r\n"], TransportError),
    "closed-without-answer": (lambda _: [], TransportError),
    "huge-header-line": (
        lambda _: [b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"],
        AlibabaCloudError,
    ),
    "thousands-of-headers": (
        lambda _: [
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
            + b"Content-Length: 2\r\n\r\n{}"
        ],
        AlibabaCloudError,
    ),
    "truncated-chunked": (
        lambda _: [b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"Req'],
        TransportError,
    ),
}


class HostileServer:
    """A loopback TCP server that answers every request with the current scenario's bytes."""

    def __init__(self) -> None:
        self.responder: Responder = lambda _: []
        self.paths: list[str] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(10)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        more = sock.recv(65536)
                        if not more:
                            return
                        data += more
                    head, body = data.split(b"\r\n\r\n", 1)
                    # Read the request body too (the sync client sends it in a second segment):
                    # closing with unread bytes would reset the connection, and the client could
                    # see the reset before the scenario's bytes.
                    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    while match and len(body) < int(match.group(1)):
                        more = sock.recv(65536)
                        if not more:
                            return
                        body += more
                    outer.paths.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                    for piece in outer.responder(head + b"\r\n\r\n" + body):  # the whole request
                        sock.sendall(piece)
                    sock.shutdown(socket.SHUT_WR)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[HostileServer]:
    server = HostileServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def hostile_conn(hostile_server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> str:
    hostile_server.paths.clear()
    extra = {"region_id": "cn-hangzhou", "pds_domain_id": "bj1", "timeout": 5, "max_retries": 0}
    extra.update(dict.fromkeys(ENDPOINTS, hostile_server.url))
    conn = {"conn_type": "aliyun", "login": AK, "password": SK, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_ALIYUN_HOSTILE_SERVER", json.dumps(conn))
    return "aliyun_hostile_server"


def _read(mode: str, conn_id: str, service: str) -> BaseException | None:
    path = "hook_sync" if mode == "sync" else "hook_async"
    try:
        outcome = run_path(path, conn_id, service, dict(SERVICE_IDS[service]))
    except AssertionError:  # "no error": the hostile response was accepted
        return None
    assert isinstance(outcome, BaseException)
    return outcome


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("service", list(SERVICE_IDS))
@pytest.mark.parametrize("case", list(RESPONSES))
def test_hostile_response_raises_only_the_packages_errors(
    hostile_server: HostileServer, hostile_conn: str, case: str, service: str, mode: str
) -> None:
    responder, expected = RESPONSES[case]
    hostile_server.responder = responder
    outcome = _read(mode, hostile_conn, service)
    assert outcome is not None, f"{case}: accepted"
    assert isinstance(outcome, AlibabaCloudError), f"{case}: {type(outcome).__name__}: {outcome}"
    assert isinstance(outcome, expected), f"{case}: {type(outcome).__name__}: {outcome}"
    if expected is BadResponseError and "body" in case:
        assert "larger than" in str(outcome)
    # Never followed elsewhere, never retried (max_retries 0): one request.
    assert len(hostile_server.paths) == 1, hostile_server.paths


def test_a_json_body_with_a_wrong_content_type_is_still_read(
    hostile_server: HostileServer, hostile_conn: str
) -> None:
    body = json.dumps({"RequestId": "r-1", "JobStatus": {"Status": "Success", "Completed": "True"}}).encode()
    hostile_server.responder = lambda _: [_response("200 OK", body, content_type="text/plain")]
    status = AlibabaCloudTasksHook(hostile_conn).get_task_status("dataworks", job_id="j-1")
    assert status.state == "succeeded"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("status", ["200 OK", "500 Internal Server Error"])
def test_deeply_nested_json_body(
    hostile_server: HostileServer, hostile_conn: str, status: str, mode: str
) -> None:
    hostile_server.responder = lambda _: [_response(status, b"[" * 200_000, content_type="application/json")]
    outcome = _read(mode, hostile_conn, "dataworks")
    assert isinstance(outcome, AlibabaCloudError), f"{type(outcome).__name__}: {outcome}"


@pytest.mark.parametrize(
    ("mode", "value"),
    [
        *((mode, value) for mode in ("sync", "async") for value in ("-inf", "-5", "soon", "")),
        ("sync", "nan"),
        ("async", "nan"),
    ],
)
def test_hostile_retry_after_header(
    hostile_server: HostileServer, monkeypatch: pytest.MonkeyPatch, mode: str, value: str
) -> None:
    """A throttled answer whose ``x-acs-retry-after`` is not a sane number: retried, then the
    package's own error, and never a sleep for NaN or infinity."""
    extra = {"region_id": "cn-hangzhou", "timeout": 5, "max_retries": 1}
    extra.update(dict.fromkeys(ENDPOINTS, hostile_server.url))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALIYUN_RETRY_AFTER",
        json.dumps({"conn_type": "aliyun", "login": AK, "password": SK, "extra": extra}),
    )
    body = json.dumps({"Code": "Throttling.User", "Message": "slow down", "RequestId": "r"}).encode()
    hostile_server.paths.clear()
    hostile_server.responder = lambda _: [
        _response("400 Bad Request", body, [("x-acs-retry-after", value)], content_type="application/json")
    ]
    outcome = _read(mode, "aliyun_retry_after", "dataworks")
    assert isinstance(outcome, AlibabaCloudError), f"{type(outcome).__name__}: {outcome}"
    assert len(hostile_server.paths) == 2  # retried once


_VALID_JOB = json.dumps({"RequestId": "r-1", "JobStatus": {"Status": "Success"}}).encode()
_HEADER_FLOODS = {
    "1000-small-headers": [b"".join(b"X-H%d: v\r\n" % i for i in range(1000))],
    "one-2MiB-header-line": [b"X-Big: " + b"a" * (2 * MAX_BODY_BYTES) + b"\r\n"],
    "8MiB-of-header-lines": [(b"X-A: " + b"v" * 1000 + b"\r\n") * 1000 for _ in range(8)],
}


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("flood", list(_HEADER_FLOODS))
def test_response_headers_are_capped(
    hostile_server: HostileServer, hostile_conn: str, flood: str, mode: str
) -> None:
    """Megabytes of response headers before a valid body: refused, as a huge body is."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    tail = b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_VALID_JOB) + _VALID_JOB
    hostile_server.responder = lambda _: [head, *_HEADER_FLOODS[flood], tail]
    outcome = _read(mode, hostile_conn, "dataworks")
    assert outcome is not None, "megabytes of headers were read and accepted"
    assert isinstance(outcome, AlibabaCloudError), f"{type(outcome).__name__}: {outcome}"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_trickling_response_is_bounded_by_the_timeout(
    hostile_server: HostileServer, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    extra = {"region_id": "cn-hangzhou", "timeout": 0.5, "max_retries": 0}
    extra.update(dict.fromkeys(ENDPOINTS, hostile_server.url))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALIYUN_TRICKLE",
        json.dumps({"conn_type": "aliyun", "login": AK, "password": SK, "extra": extra}),
    )

    def trickle(_: bytes) -> Iterator[bytes]:
        yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
        for _ in range(40):  # one byte every 0.2 s for 8 s, then the connection closes
            time.sleep(0.2)
            yield b" "

    hostile_server.responder = trickle

    async def call() -> BaseException | None:
        try:
            # 12x the timeout: an attempt bounded as documented ends long before.
            await asyncio.wait_for(
                AlibabaCloudTasksHook("aliyun_trickle").aget_task_status("dataworks", job_id="j"), 6
            )
        except Exception as exc:
            return exc
        finally:
            await aclose_shared_client()
        return None

    def sync_call() -> BaseException | None:
        started = time.monotonic()
        try:
            AlibabaCloudTasksHook("aliyun_trickle").get_task_status("dataworks", job_id="j")
        except Exception as exc:
            # The trickle lasts 8 s; an attempt bounded as documented ends long before.
            assert time.monotonic() - started < 6, "the attempt outlived its timeout"
            return exc
        return None

    outcome = asyncio.run(call()) if mode == "async" else sync_call()
    assert isinstance(outcome, TransportError), f"{type(outcome).__name__}: {outcome}"
