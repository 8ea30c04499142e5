"""Real proxies on the loopback interface, in front of the emulator serving HTTPS with a
certificate of a test CA:

- Squid (Debian's package, installed by scripts/ensure_proxies.sh) as a forward proxy with basic
  auth that allows CONNECT to the emulator's port only: a sensor DAG (``airflow dags test``) and
  the Test button (``hook.test_connection()``) go through it, with ``https_proxy`` in the
  connection and with ``HTTPS_PROXY`` in the environment; Squid logs the CONNECTs; with
  ``NO_PROXY`` covering the emulator Squid sees nothing; a wrong password fails naming the proxy.
- mitmproxy (``mitmdump``) as a TLS-inspecting proxy: without ``ca_bundle`` the call fails with
  a certificate error that says to set it; with ``ca_bundle`` pointing at mitmproxy's CA it
  succeeds, and the flows mitmproxy logs show the signed requests, which the emulator verified.

Every code path that sends a request (one table, :data:`PATHS`: status sync and async, a
deferred sensor, a start with and without a client token, cancel on kill, the Test button, STS
AssumeRole) runs through Squid with ``https_proxy`` in the connection, again with ``HTTPS_PROXY``
in the environment, and through mitmproxy in upstream mode in front of Squid with ``ca_bundle``
set to mitmproxy's CA. There the endpoints are host names (``<service>.aliyun-emulator.test``)
that resolve only at Squid (its ``hosts_file``): a request that skips the proxy cannot even
resolve its host, which the same calls made without a proxy show.

No secret (AccessKey secret, proxy password) shows in any output, log, XCom or trigger row.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS
from airflow_aliyun_tasks.errors import TransportError
from airflow_aliyun_tasks.testing import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, Emulator

trustme = pytest.importorskip("trustme")

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("fresh_clients")]

ROOT = Path(__file__).resolve().parent.parent
SQUID = os.environ.get("SQUID", "/usr/sbin/squid")
NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"
MITMDUMP = Path(os.environ.get("MITMPROXY_VENV", str(ROOT / ".venv-mitmproxy"))) / "bin" / "mitmdump"
PROXY_USER = "airflow"
PROXY_PASSWORD = "Sq1d-Pr0xy-Passw0rd"
SECRETS = (DEFAULT_ACCESS_KEY_SECRET, PROXY_PASSWORD)
#: The emulator's host names: they resolve at Squid only (its hosts_file), never on this machine.
DOMAIN = "aliyun-emulator.test"
NAMES = {extra: extra.removesuffix("_endpoint").replace("_", "-") + "." + DOMAIN for extra in ENDPOINT_EXTRAS}
#: How the resolver says a name does not resolve (glibc, musl, macOS).
UNRESOLVED = re.compile(
    r"Name or service not known|name resolution|nodename nor servname|No address associated"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {output[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _close_route_clients() -> None:
    from airflow_aliyun_tasks._loop_clients import close_sync_clients

    close_sync_clients()


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret shows in {where}"


# --------------------------------------------------------------------------- the HTTPS emulator


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    ca = trustme.CA()
    directory = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost", *NAMES.values())
    paths = {"ca": directory / "ca.pem", "chain": directory / "chain.pem", "key": directory / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths["chain"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def https_emulator(tls: dict[str, str]) -> Iterator[Emulator]:
    emu = Emulator()
    emu.start(ssl_certfile=tls["chain"], ssl_keyfile=tls["key"])
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emu(https_emulator: Emulator) -> Emulator:
    https_emulator.reset()
    return https_emulator


@pytest.fixture
def https_conn(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """An ``aliyun`` connection whose every endpoint is the HTTPS emulator."""
    from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS

    def make(conn_id: str = "aliyun_default", **extra: Any) -> str:
        extras: dict[str, Any] = {"region_id": "cn-hangzhou", "pds_domain_id": "bj1"}
        extras.update(dict.fromkeys(ENDPOINT_EXTRAS, emu.url))
        extras.update(extra)
        conn = {
            "conn_type": "aliyun",
            "login": DEFAULT_ACCESS_KEY_ID,
            "password": DEFAULT_ACCESS_KEY_SECRET,
            "extra": {k: v for k, v in extras.items() if v is not None},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return make


def _test_button(conn_id: str = "aliyun_default") -> tuple[bool, str]:
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    return AlibabaCloudTasksHook(aliyun_conn_id=conn_id).test_connection()


# --------------------------------------------------------------------------- Squid


class Squid:
    def __init__(self, directory: Path, allowed_port: int) -> None:
        self.directory = directory
        self.port = _free_port()
        self.access_log = directory / "access.log"
        self.cache_log = directory / "cache.log"
        directory.chmod(0o777)  # Squid drops privileges to its own user
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", PROXY_PASSWORD], check=True, capture_output=True, text=True
        ).stdout.strip()
        passwd = directory / "passwd"
        passwd.write_text(f"{PROXY_USER}:{hashed}\n")
        passwd.chmod(0o644)
        hosts = directory / "hosts"  # the emulator's names resolve here, and only here
        hosts.write_text("".join(f"127.0.0.1 {name}\n" for name in NAMES.values()))
        hosts.chmod(0o644)
        conf = directory / "squid.conf"
        conf.write_text(
            f"""
http_port 127.0.0.1:{self.port}
pid_filename {directory}/squid.pid
access_log stdio:{self.access_log} squid
cache_log {self.cache_log}
cache_store_log none
cache deny all
coredump_dir {directory}
visible_hostname test-proxy
hosts_file {hosts}
shutdown_lifetime 0 seconds
auth_param basic program {NCSA_AUTH} {passwd}
auth_param basic realm test
acl authed proxy_auth REQUIRED
acl emulator_port port {allowed_port}
acl CONNECT method CONNECT
http_access deny CONNECT !emulator_port
http_access allow authed
http_access deny all
"""
        )
        conf.chmod(0o644)
        # As root, Squid switches to its cache_effective_user (Debian's: proxy) itself.
        args = [SQUID, "-N", "-f", str(conf)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, "squid")

    def url(self, password: str = PROXY_PASSWORD) -> str:
        return f"http://{PROXY_USER}:{password}@127.0.0.1:{self.port}"

    def connects(self) -> list[str]:
        # Squid writes a line when a tunnel closes: close the pooled (kept-alive) ones first.
        _close_route_clients()
        time.sleep(0.3)
        if not self.access_log.exists():
            return []
        return [line for line in self.access_log.read_text().splitlines() if " CONNECT " in line]

    def wait_for_connects(self, before: int, targets: set[str], timeout: float = 15) -> list[str]:
        """The CONNECT lines after the first ``before``, once one names each of ``targets``
        (``host:port``; a tunnel another proxy holds open is logged when that one closes it)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.connects()[before:]
            if all(any(f"CONNECT {t} {PROXY_USER}" in line for line in lines) for t in targets):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError(f"Squid logged no CONNECT to each of {sorted(targets)}: {lines}")

    def logs(self) -> str:
        return "".join(p.read_text() for p in (self.access_log, self.cache_log) if p.exists())

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="module")
def squid(https_emulator: Emulator) -> Iterator[Squid]:
    if not (os.access(SQUID, os.X_OK) and os.access(NCSA_AUTH, os.X_OK) and shutil.which("openssl")):
        pytest.skip(f"{SQUID} is not installed (scripts/ensure_proxies.sh installs it)")
    # Not under pytest's tmp_path: Squid runs as its own user, which must reach the directory.
    directory = Path(tempfile.mkdtemp(prefix="aliyun-tasks-squid-"))
    try:
        proxy = Squid(directory, https_emulator.port)
        try:
            yield proxy
        finally:
            proxy.stop()
            assert_no_secret(proxy.logs(), "Squid's logs")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _airflow_dags_test(emu: Emulator, job_id: str) -> subprocess.CompletedProcess[str]:
    emu.add_dataworks_job(job_id, ["Running", "Success"])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "dags",
            "test",
            "e2e_dataworks_deferrable",
            "-c",
            json.dumps({"job_id": job_id}),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert emu.poll_count("dataworks", job_id=job_id) == 2
    assert_no_secret(result.stdout + result.stderr, "the output of airflow dags test")
    return result


def _db_rows() -> str:
    """Every XCom value and trigger row of the session's metadata database, as text."""
    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        rows = [*conn.execute("SELECT * FROM xcom"), *conn.execute("SELECT * FROM trigger")]
    return "\n".join(map(str, rows))


def test_squid_with_the_connections_proxy(
    airflow_db: str, emu: Emulator, squid: Squid, https_conn: Callable[..., str], tls: dict[str, str]
) -> None:
    https_conn(https_proxy=squid.url(), ca_bundle=tls["ca"])
    before = len(squid.connects())
    ok, message = _test_button()
    assert ok, message
    after_button = len(squid.connects())
    assert after_button > before
    _airflow_dags_test(emu, "job-squid-extra")
    assert len(squid.connects()) > after_button  # the DAG's polls went through Squid too
    lines = squid.connects()[before:]
    assert all(f"CONNECT 127.0.0.1:{emu.port} {PROXY_USER}" in line for line in lines), lines
    assert_no_secret(_db_rows(), "XCom and trigger rows")


def test_squid_with_https_proxy_in_the_environment(
    airflow_db: str,
    emu: Emulator,
    squid: Squid,
    https_conn: Callable[..., str],
    tls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    https_conn(ca_bundle=tls["ca"])
    monkeypatch.setenv("HTTPS_PROXY", squid.url())
    before = len(squid.connects())
    ok, message = _test_button()
    assert ok, message
    after_button = len(squid.connects())
    assert after_button > before
    _airflow_dags_test(emu, "job-squid-env")
    assert len(squid.connects()) > after_button
    assert_no_secret(_db_rows(), "XCom and trigger rows")


def test_no_proxy_covering_the_emulator_bypasses_squid(
    emu: Emulator,
    squid: Squid,
    https_conn: Callable[..., str],
    tls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    https_conn(ca_bundle=tls["ca"])
    monkeypatch.setenv("HTTPS_PROXY", squid.url())
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    before = len(squid.connects())
    ok, message = _test_button()
    assert ok, message
    assert len(squid.connects()) == before


def test_wrong_proxy_password_is_a_clear_error(
    emu: Emulator, squid: Squid, https_conn: Callable[..., str], tls: dict[str, str]
) -> None:
    wrong = "Wr0ng-" + PROXY_PASSWORD
    https_conn(https_proxy=squid.url(wrong), ca_bundle=tls["ca"])
    ok, message = _test_button()
    assert not ok
    assert f"via proxy http://127.0.0.1:{squid.port}" in message
    assert "407" in message
    assert wrong not in message
    assert_no_secret(message, "the error")
    assert emu.request_count("sts") == 0


# --------------------------------------------------------------------------- mitmproxy

FLOW_LOGGER = """
import json, os

def response(flow):
    with open(os.environ["FLOW_LOG"], "a") as fh:
        fh.write(json.dumps({
            "method": flow.request.method,
            "host": flow.request.host,
            "port": flow.request.port,
            "path": flow.request.path,
            "headers": dict(flow.request.headers),
            "status": flow.response.status_code,
        }) + "\\n")
"""


class Mitmproxy:
    """``mitmdump`` re-signing TLS with its own CA; with ``upstream`` (Squid), in upstream mode:
    every tunnel goes on through that proxy, which alone resolves the emulator's names."""

    def __init__(self, directory: Path, upstream_ca: str, upstream: Squid | None = None) -> None:
        self.port = _free_port()
        self.confdir = directory / "conf"
        self.flow_log = directory / "flows.jsonl"
        addon = directory / "flow_logger.py"
        addon.write_text(FLOW_LOGGER)
        mode = []
        if upstream is not None:
            mode = [
                "--mode",
                f"upstream:http://127.0.0.1:{upstream.port}",
                "--set",
                f"upstream_auth={PROXY_USER}:{PROXY_PASSWORD}",
            ]
        self.proc = subprocess.Popen(
            [
                str(MITMDUMP),
                *mode,
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                str(self.port),
                "--set",
                f"confdir={self.confdir}",
                "--set",
                f"ssl_verify_upstream_trusted_ca={upstream_ca}",
                "--quiet",
                "-s",
                str(addon),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "FLOW_LOG": str(self.flow_log)},
        )
        _wait_port(self.port, self.proc, "mitmdump")
        self.ca = str(self.confdir / "mitmproxy-ca-cert.pem")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def flows(self) -> list[dict[str, Any]]:
        time.sleep(0.2)
        if not self.flow_log.exists():
            return []
        return [json.loads(line) for line in self.flow_log.read_text().splitlines()]

    def stop(self) -> None:
        _stop(self.proc)


@pytest.fixture(scope="module")
def mitmproxy(tls: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mitmproxy]:
    if not MITMDUMP.exists():
        pytest.skip(f"{MITMDUMP} is not installed (scripts/ensure_proxies.sh installs it)")
    proxy = Mitmproxy(tmp_path_factory.mktemp("mitmproxy"), tls["ca"])
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def upstream_mitmproxy(
    tls: dict[str, str], squid: Squid, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mitmproxy]:
    if not MITMDUMP.exists():
        pytest.skip(f"{MITMDUMP} is not installed (scripts/ensure_proxies.sh installs it)")
    proxy = Mitmproxy(tmp_path_factory.mktemp("mitmproxy-upstream"), tls["ca"], upstream=squid)
    try:
        yield proxy
    finally:
        proxy.stop()


def test_tls_inspecting_proxy_without_ca_bundle_says_to_set_it(
    emu: Emulator, mitmproxy: Mitmproxy, https_conn: Callable[..., str]
) -> None:
    https_conn(https_proxy=mitmproxy.url)
    ok, message = _test_button()
    assert not ok
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert "ca_bundle" in message
    assert f"via proxy {mitmproxy.url}" in message
    assert emu.request_count("sts") == 0


def test_tls_inspecting_proxy_with_its_ca_passes_signed_requests_unchanged(
    emu: Emulator, mitmproxy: Mitmproxy, https_conn: Callable[..., str]
) -> None:
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    https_conn(https_proxy=mitmproxy.url, ca_bundle=mitmproxy.ca)
    before = len(mitmproxy.flows())
    ok, message = _test_button()
    assert ok, message  # the emulator verified the ACS3 signature the proxy passed on
    emu.add_dataworks_job("job-mitm", ["Success"])
    assert AlibabaCloudTasksHook().get_dataworks_job_status("job-mitm").state == "succeeded"
    flows = mitmproxy.flows()[before:]
    assert [f["headers"]["x-acs-action"] for f in flows] == ["GetCallerIdentity", "GetJobStatus"]
    for flow in flows:
        assert flow["status"] == 200
        assert (flow["host"], flow["port"]) == ("127.0.0.1", emu.port)
        assert flow["headers"]["authorization"].startswith(
            "ACS3-HMAC-SHA256 Credential=" + DEFAULT_ACCESS_KEY_ID
        )
        assert flow["headers"]["user-agent"].startswith("airflow-aliyun-tasks/")
        assert_no_secret(json.dumps(flow), "mitmproxy's flow log")


# --------------------------------------------------------------------------- every path, by name

WORKSPACE = "w-proxy"


class _TI:
    """The task instance the operator reads (ids for its client token, XCom)."""

    dag_id, task_id, run_id, map_index, try_number = "proxied", "start", "manual__1", -1, 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _operator(conn_id: str, service: str, action: str, **kwargs: Any) -> Any:
    from airflow_aliyun_tasks.operators import AlibabaCloudAsyncTaskOperator

    return AlibabaCloudAsyncTaskOperator(
        task_id="start",
        aliyun_conn_id=conn_id,
        service=service,
        action=action,
        deferrable=False,
        wait_for_completion=False,
        **kwargs,
    )


def _start_job_run(conn_id: str) -> Any:
    return _operator(
        conn_id,
        "emr_serverless_spark",
        "StartJobRun",
        path=f"/api/v1/workspaces/{WORKSPACE}/jobRuns",
        body={"name": "etl", "codeType": "JAR", "resourceQueueId": "root_queue"},
    )


def status_sync(emu: Emulator, conn_id: str) -> None:
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    emu.add_dataworks_job("job-sync", ["Success"])
    assert AlibabaCloudTasksHook(conn_id).get_task_status("dataworks", job_id="job-sync").state == "succeeded"


def status_async(emu: Emulator, conn_id: str) -> None:
    from airflow_aliyun_tasks.client import aclose_shared_client
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    emu.add_dataworks_job("job-async", ["Success"])

    async def poll() -> str:
        try:
            return (
                await AlibabaCloudTasksHook(conn_id).aget_task_status("dataworks", job_id="job-async")
            ).state
        finally:
            await aclose_shared_client()

    assert asyncio.run(poll()) == "succeeded"


def deferred(emu: Emulator, conn_id: str) -> None:
    assert conn_id == "aliyun_default"  # the DAG's sensor uses the default connection
    _airflow_dags_test(emu, "job-deferred")
    assert_no_secret(_db_rows(), "XCom and trigger rows")


def start_with_client_token(emu: Emulator, conn_id: str) -> None:
    started = _start_job_run(conn_id).execute({"ti": _TI()})
    assert started["ids"]["workspace_id"] == WORKSPACE
    assert emu.start_count("emr_serverless_spark", "StartJobRun", accepted=True) == 1


def start_without_client_token(emu: Emulator, conn_id: str) -> None:
    op = _operator(conn_id, "dataworks", "ImportWorkflowDefinition", query={"ProjectId": "1", "Spec": "{}"})
    started = op.execute({"ti": _TI()})
    assert started["ids"]["job_id"]
    assert emu.start_count("dataworks", "ImportWorkflowDefinition", accepted=True) == 1


def cancel_on_kill(emu: Emulator, conn_id: str) -> None:
    emu.set_start_lifecycle("emr_serverless_spark", ["Running"])
    op = _start_job_run(conn_id)
    started = op.execute({"ti": _TI()})
    op.on_kill()  # the worker kills the task: CancelJobRun
    assert emu.cancel_count("emr_serverless_spark", accepted=True, **started["ids"]) == 1


def cancel_call(emu: Emulator, conn_id: str) -> str:
    """What :func:`cancel_on_kill` sends on kill, direct (``on_kill`` logs a failure, never raises)."""
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    hook = AlibabaCloudTasksHook(conn_id)
    with pytest.raises(TransportError) as info:
        hook.cancel_task("emr_serverless_spark", workspace_id=WORKSPACE, job_run_id="jr-1")
    return str(info.value)


def press_test_button(emu: Emulator, conn_id: str) -> None:
    ok, message = _test_button(conn_id)
    assert ok, message
    assert message.startswith("Authenticated as acs:ram::")


def pressed_test_button_failure(emu: Emulator, conn_id: str) -> str:
    """The Test button's answer, direct (it reports a failure, never raises)."""
    ok, message = _test_button(conn_id)
    assert not ok
    assert "TransportError" in message or "ConnectError" in message, message
    return message


def assume_role(emu: Emulator, conn_id: str) -> None:
    """A ``ram_role_arn`` connection's status call: AssumeRole, then the call signed with its keys."""
    from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook

    emu.add_dataworks_job("job-role", ["Success"])
    role_conn = conn_id + "_role"
    assert (
        AlibabaCloudTasksHook(role_conn).get_task_status("dataworks", job_id="job-role").state == "succeeded"
    )
    assert emu.request_count("sts") == 1


@dataclass(frozen=True)
class SendingPath:
    """A code path that sends requests: what runs it, the endpoints its requests go to (each a
    CONNECT in Squid's log) and their API names (in mitmproxy's flows)."""

    name: str
    run: Callable[[Emulator, str], None]
    endpoints: tuple[str, ...]
    actions: tuple[str, ...]
    #: The same requests without a proxy, returning the error they fail with: by default,
    #: ``run`` must raise a TransportError.
    direct: Callable[[Emulator, str], str] | None = None
    #: False when the direct run is not checked.
    checked_direct: bool = True

    def run_direct(self, emu: Emulator, conn_id: str) -> str:
        if self.direct is not None:
            return self.direct(emu, conn_id)
        with pytest.raises(TransportError) as info:
            self.run(emu, conn_id)
        return str(info.value)


#: Every code path of the package that sends a request.
PATHS = (
    SendingPath("status-sync", status_sync, ("dataworks_endpoint",), ("GetJobStatus",)),
    SendingPath("status-async", status_async, ("dataworks_endpoint",), ("GetJobStatus",)),
    # The deferred sensor polls with the trigger, in the triggerer of `airflow dags test`: the
    # same hook call as status-async, whose direct failure is checked there (here the wait would
    # only fail after the trigger's bounded run of failures).
    SendingPath("deferred", deferred, ("dataworks_endpoint",), ("GetJobStatus",), checked_direct=False),
    SendingPath(
        "start-with-client-token",
        start_with_client_token,
        ("emr_serverless_spark_endpoint",),
        ("StartJobRun",),
    ),
    SendingPath(
        "start-without-client-token",
        start_without_client_token,
        ("dataworks_endpoint",),
        ("ImportWorkflowDefinition",),
    ),
    SendingPath(
        "cancel-on-kill",
        cancel_on_kill,
        ("emr_serverless_spark_endpoint",),
        ("StartJobRun", "CancelJobRun"),
        direct=cancel_call,
    ),
    SendingPath(
        "test-button",
        press_test_button,
        ("sts_endpoint",),
        ("GetCallerIdentity",),
        direct=pressed_test_button_failure,
    ),
    SendingPath(
        "sts-assume-role", assume_role, ("sts_endpoint", "dataworks_endpoint"), ("AssumeRole", "GetJobStatus")
    ),
)
#: How the requests reach the proxy: the connection's https_proxy, the environment's HTTPS_PROXY,
#: or mitmproxy (upstream mode, in front of Squid) with its CA as the connection's ca_bundle.
ROUTES = ("connection", "environment", "mitmproxy")


@pytest.fixture
def named_conn(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``aliyun_default`` (access keys) and ``aliyun_default_role`` (``ram_role_arn``), every
    endpoint the emulator under its names."""

    def make(**extra: Any) -> str:
        base: dict[str, Any] = {"region_id": "cn-hangzhou", "pds_domain_id": "bj1"}
        base.update({key: f"https://{NAMES[key]}:{emu.port}" for key in ENDPOINT_EXTRAS})
        base.update(extra)
        keys = {"conn_type": "aliyun", "login": DEFAULT_ACCESS_KEY_ID, "password": DEFAULT_ACCESS_KEY_SECRET}
        role = {"auth_type": "ram_role_arn", "role_arn": "acs:ram::1234567890123456:role/airflow"}
        for conn_id, more in (("aliyun_default", {}), ("aliyun_default_role", role)):
            conn = {**keys, "extra": {**base, **more}}
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return "aliyun_default"

    return make


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
@pytest.mark.parametrize("route", ROUTES)
def test_every_path_goes_through_the_proxy(
    request: pytest.FixtureRequest,
    airflow_db: str,
    emu: Emulator,
    squid: Squid,
    named_conn: Callable[..., str],
    tls: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    route: str,
    path: SendingPath,
) -> None:
    _close_route_clients()  # no tunnel of an earlier test is reused
    mitm: Mitmproxy | None = None
    if route == "connection":
        conn_id = named_conn(https_proxy=squid.url(), ca_bundle=tls["ca"])
    elif route == "environment":
        conn_id = named_conn(ca_bundle=tls["ca"])
        monkeypatch.setenv("HTTPS_PROXY", squid.url())
    else:
        mitm = request.getfixturevalue("upstream_mitmproxy")
        conn_id = named_conn(https_proxy=mitm.url, ca_bundle=mitm.ca)
    before = len(squid.connects())
    flows_before = len(mitm.flows()) if mitm is not None else 0
    path.run(emu, conn_id)
    targets = {f"{NAMES[endpoint]}:{emu.port}" for endpoint in path.endpoints}
    squid.wait_for_connects(before, targets)
    if mitm is not None:
        flows = mitm.flows()[flows_before:]
        assert {f["headers"].get("x-acs-action") for f in flows} >= set(path.actions), flows
        for flow in flows:
            assert flow["host"] in NAMES.values()
            assert_no_secret(json.dumps(flow), "mitmproxy's flow log")
    output = capsys.readouterr()
    assert_no_secret(output.out + output.err + caplog.text, "the test's output and logs")


@pytest.mark.parametrize("path", [p for p in PATHS if p.checked_direct], ids=lambda p: p.name)
def test_a_direct_connection_cannot_resolve_the_names(
    emu: Emulator, squid: Squid, named_conn: Callable[..., str], tls: dict[str, str], path: SendingPath
) -> None:
    """The same requests without a proxy fail: their host names resolve at Squid only."""
    _close_route_clients()
    conn_id = named_conn(ca_bundle=tls["ca"], max_retries=0)
    before = len(squid.connects())
    error = path.run_direct(emu, conn_id)
    assert UNRESOLVED.search(error), error
    assert any(f"{NAMES[endpoint]}:{emu.port}" in error for endpoint in path.endpoints), error
    assert len(squid.connects()) == before
    assert emu.request_count() + emu.request_count("sts") == 0
    assert_no_secret(error, "the error")
