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

No secret (AccessKey secret, proxy password) shows in any output, log, XCom or trigger row.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

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
    cert = ca.issue_cert("127.0.0.1", "localhost")
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
    def __init__(self, directory: Path, upstream_ca: str) -> None:
        self.port = _free_port()
        self.confdir = directory / "conf"
        self.flow_log = directory / "flows.jsonl"
        addon = directory / "flow_logger.py"
        addon.write_text(FLOW_LOGGER)
        self.proc = subprocess.Popen(
            [
                str(MITMDUMP),
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
