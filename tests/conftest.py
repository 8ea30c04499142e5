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
