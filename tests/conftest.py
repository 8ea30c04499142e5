"""Test-wide set-up.

``ALIBABA_CLOUD_ECS_METADATA_DISABLED`` must be set before anything imports
``alibabacloud_credentials``: its default chain otherwise probes the cloud metadata address.
Airflow gets a throwaway ``AIRFLOW_HOME`` (SQLite) before anything imports it. Nothing in the
tests leaves 127.0.0.1: every connection points all endpoints, STS included, at the emulator.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
for _var in (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_CREDENTIALS_URI",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
):
    os.environ.pop(_var, None)
# Connections trust the environment's proxy and CA variables by default: the tests set them
# themselves where they mean to.
for _var in ("https_proxy", "http_proxy", "all_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
    os.environ.pop(_var, None)
    os.environ.pop(_var.upper(), None)
os.environ.setdefault("ALIBABA_CLOUD_CREDENTIALS_FILE", os.devnull)
os.environ.setdefault("ALIBABA_CLOUD_CONFIG_FILE", os.devnull)

TESTS_DIR = Path(__file__).parent
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="aliyun-tasks-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(TESTS_DIR / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)

import pytest  # noqa: E402

from airflow_aliyun_tasks.config import ENDPOINT_EXTRAS  # noqa: E402
from airflow_aliyun_tasks.testing import (  # noqa: E402
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    Emulator,
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


# --------------------------------------------------------------------------- markers
# Every test gets its markers here (registered in pyproject.toml), so that test files need none
# but where a module mixes kinds (an explicit ``@pytest.mark.airflow``):
# - the heavy suites, by module: ``browser``, ``deployment``, ``proxies`` (each also ``airflow``:
#   they run real Airflow components) and ``soak`` (long runs in real time);
# - ``airflow``: a test that runs real Airflow: modules and tests marked so, and tests that use a
#   fixture in AIRFLOW_FIXTURES;
# - every other test is ``emulator`` when it sends real HTTP on the loopback interface (it uses a
#   fixture in HTTP_FIXTURES, or its module is in HTTP_MODULES), else ``unit``. A ``unit`` test
#   that connects a socket fails (see ``_unit_tests_stay_off_the_network``).
# ``make test-fast`` runs ``-m "unit or emulator"``.

SUITES: dict[str, tuple[str, ...]] = {
    "test_browser": ("browser", "airflow"),
    "test_deployment": ("deployment", "airflow"),
    "test_proxies": ("proxies", "airflow"),
    "test_soak": ("soak",),
    "test_credentials_over_time": ("soak",),
}
HEAVY_MARKERS = ("airflow", "browser", "deployment", "proxies", "soak")
#: Fixtures that run real Airflow (its database, a harness run that parses DAGs).
AIRFLOW_FIXTURES = frozenset({"airflow_db", "tiny_run"})
#: Fixtures that serve HTTP on the loopback interface.
HTTP_FIXTURES = frozenset({"emulator", "emulator_session", "make_conn"})
#: Modules whose tests talk HTTP to servers on the loopback interface that they start themselves.
HTTP_MODULES = frozenset(
    {
        "test_client",
        "test_clock_skew",
        "test_credentials",
        "test_emulator",
        "test_emulator_emr",
        "test_emulator_dataworks_workflow",
        "test_emulator_fc_async_task",
        "test_emulator_pai_dlc",
        "test_emulator_adb_spark",
        "test_emulator_flink_job",
        "test_hook",
        "test_hostile_input",
        "test_network",
        "test_operators",
        "test_secret_hygiene",
        "test_transport",
        "test_vocabulary",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.stem
        for name in SUITES.get(module, ()):
            item.add_marker(name)
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & AIRFLOW_FIXTURES:
            item.add_marker("airflow")
        if any(item.get_closest_marker(name) for name in HEAVY_MARKERS):
            continue
        item.add_marker("emulator" if module in HTTP_MODULES or fixtures & HTTP_FIXTURES else "unit")


@pytest.fixture(autouse=True)
def _unit_tests_stay_off_the_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``unit`` test may not connect a socket: one that talks to a server is ``emulator``."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(sock: socket.socket, address: Any) -> Any:
        raise AssertionError(
            f"a unit test connected a socket (to {address!r}): give it an HTTP fixture, or list its "
            "module in tests/conftest.py HTTP_MODULES (marker: emulator)"
        )

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    emu = Emulator()
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator(emulator_session: Emulator) -> Emulator:
    """The session's emulator, with tasks, faults, counters and clock reset for each test."""
    emulator_session.reset()
    return emulator_session


def conn_extra(emulator: Emulator, **extra: Any) -> dict[str, Any]:
    """Extras of a connection whose every endpoint is the emulator."""
    base: dict[str, Any] = {"region_id": "cn-hangzhou", "pds_domain_id": "bj1"}
    base.update({key: emulator.url for key in ENDPOINT_EXTRAS})
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
def make_conn(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an ``aliyun`` connection as ``AIRFLOW_CONN_<ID>`` (JSON form), pointing at the emulator."""

    def make(
        conn_id: str = "aliyun_default",
        *,
        login: str | None = DEFAULT_ACCESS_KEY_ID,
        password: str | None = DEFAULT_ACCESS_KEY_SECRET,
        **extra: Any,
    ) -> str:
        conn = {
            "conn_type": "aliyun",
            "login": login,
            "password": password,
            "extra": conn_extra(emulator, **extra),
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return make


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """A migrated SQLite metadata database in the session's AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return _AIRFLOW_HOME


# --------------------------------------------------------------------------- the package's shared state
# Not autouse: a test file that needs one names it (``pytestmark = pytest.mark.usefixtures(...)``
# or an argument).


@pytest.fixture
async def aclose_pool() -> AsyncIterator[None]:
    """Close the test loop's shared httpx.AsyncClient at the end of an async test."""
    from airflow_aliyun_tasks.client import aclose_shared_client

    yield
    await aclose_shared_client()


@pytest.fixture
def close_shared_sync_client() -> Iterator[None]:
    """Close the process's shared sync clients after the test: no test inherits their pools."""
    from airflow_aliyun_tasks._loop_clients import close_sync_clients

    yield
    close_sync_clients()


@pytest.fixture
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty per-process client cache (``hooks._clients``).

    A client holds its credential source (and the temporary STS credentials it cached, which the
    session emulator forgets at every reset) and a corrected clock: neither may outlive a test.
    """
    from airflow_aliyun_tasks import hooks

    monkeypatch.setattr(hooks, "_clients", {})
