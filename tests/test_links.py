"""Console links: the URLs, the parameters the sensors store, provider registration, and the link
read back through a real ``airflow api-server`` after ``dag.test()`` runs each sensor against the
emulator.

How Airflow 3 shows a link: when a task run ends (a deferral included) the worker calls the
link's ``get_link`` and stores the URL in XCom under the link's ``xcom_key``; the API server
serializes the DAG's links as ``{name: xcom_key}`` and answers
``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links`` from that XCom.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow.sdk import BaseOperatorLink

import airflow_aliyun_tasks.links as links_module
from airflow_aliyun_tasks.get_provider_info import get_provider_info
from airflow_aliyun_tasks.links import (
    CONSOLE_LINK_XCOM_KEY,
    CONSOLE_LINKS,
    AdbSparkConsoleLink,
    AlibabaCloudConsoleLink,
    DataWorksConsoleLink,
    DlfConsoleLink,
    EmrServerlessSparkConsoleLink,
    FcAsyncTaskConsoleLink,
    FlinkJobConsoleLink,
    MmaConsoleLink,
    PaiDlcConsoleLink,
    PdsConsoleLink,
    link_params,
)
from airflow_aliyun_tasks.sensors import (
    AdbSparkAppSensor,
    AlibabaCloudTaskSensor,
    DataWorksJobSensor,
    DlfAsyncTaskSensor,
    EmrServerlessSparkJobRunSensor,
    FcAsyncTaskSensor,
    FlinkJobSensor,
    MmaAsyncTaskSensor,
    PaiDlcJobSensor,
    PdsAsyncTaskSensor,
)
from airflow_aliyun_tasks.services import SERVICES
from airflow_aliyun_tasks.testing import Emulator

DAGS = Path(__file__).parent / "dags"

EXPECTED = {
    "dlf": ("DLF console", "https://dlf.console.aliyun.com/{region}/metadata/catalog"),
    "dataworks": ("DataWorks console", "https://dataworks.console.aliyun.com/overview?regionId={region}"),
    "mma": ("MaxCompute console", "https://maxcompute.console.aliyun.com/{region}/overview"),
    "pds": ("PDS console", "https://pds.console.aliyun.com/"),
    "emr_serverless_spark": (
        "EMR Serverless Spark console",
        "https://emr-next.console.aliyun.com/#/region/{region}/resource/all/serverless/spark",
    ),
    "pai_dlc": ("PAI DLC console", "https://pai.console.aliyun.com/?regionId={region}#/dlc/jobs"),
    "adb_spark": ("AnalyticDB console", "https://ads.console.aliyun.com/adb/{region}/instances"),
    "flink_job": (
        "Realtime Compute for Apache Flink console",
        "https://realtime-compute.console.aliyun.com/regions/{region}",
    ),
    "fc_async_task": ("Function Compute console", "https://fcnext.console.aliyun.com/{region}/functions/etl"),
}
SENSOR_LINKS = {
    DlfAsyncTaskSensor: DlfConsoleLink,
    DataWorksJobSensor: DataWorksConsoleLink,
    MmaAsyncTaskSensor: MmaConsoleLink,
    PdsAsyncTaskSensor: PdsConsoleLink,
    EmrServerlessSparkJobRunSensor: EmrServerlessSparkConsoleLink,
    PaiDlcJobSensor: PaiDlcConsoleLink,
    AdbSparkAppSensor: AdbSparkConsoleLink,
    FlinkJobSensor: FlinkJobConsoleLink,
    FcAsyncTaskSensor: FcAsyncTaskConsoleLink,
}
IDS = {
    "dlf": {"async_task_id": "t-1", "catalog_id": "1234567890"},
    "dataworks": {"job_id": "job-9"},
    "mma": {"source_id": "2000017", "async_task_id": "2523"},
    "pds": {"async_task_id": "at-1", "domain_id": "bj1"},
    "emr_serverless_spark": {"workspace_id": "w-1", "job_run_id": "jr-1"},
    "pai_dlc": {"job_id": "dlc1a2b3c4d5e6f"},
    "adb_spark": {"app_id": "s202204191546hzpread6a896000abcd"},
    "flink_job": {"workspace_id": "a14bd5d90a", "namespace": "default-namespace", "job_id": "5af678c0"},
    "fc_async_task": {"function_name": "etl", "async_task_id": "airflow-1"},
}


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize("service", list(EXPECTED))
@pytest.mark.parametrize("region", ["cn-hangzhou", "ap-southeast-1", "eu-central-1"])
def test_url_per_service_and_region(service: str, region: str) -> None:
    link = CONSOLE_LINKS[service]()
    name, template = EXPECTED[service]
    assert link.name == name
    assert link.url_for(link_params(service, region, IDS[service])) == template.format(region=region)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(None, id="none"),
        pytest.param("https://evil.example/", id="a-string"),
        pytest.param({"service": "dlf", "region_id": "cn-hangzhou", "ids": {}}, id="other-service"),
        pytest.param({"service": "dataworks", "ids": {}}, id="no-region"),
        pytest.param({"service": "dataworks", "region_id": "cn-hangzhou/../x", "ids": {}}, id="path-region"),
        pytest.param({"service": "dataworks", "region_id": "evil.example", "ids": {}}, id="host-region"),
        pytest.param({"service": "dataworks", "region_id": 7, "ids": {}}, id="number-region"),
        pytest.param({"service": "dataworks", "region_id": "cn-hangzhou", "ids": ["x"]}, id="ids-list"),
    ],
)
def test_unusable_params_give_no_link(params: Any) -> None:
    assert DataWorksConsoleLink().url_for(params) == ""


def test_link_params_are_plain_json_without_empty_ids() -> None:
    params = link_params("mma", "cn-shanghai", {"source_id": 2000017, "async_task_id": 3, "x": None, "y": ""})
    assert params == {
        "service": "mma",
        "region_id": "cn-shanghai",
        "ids": {"source_id": "2000017", "async_task_id": "3"},
    }
    assert json.loads(json.dumps(params)) == params


def test_get_link_reads_the_stored_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import xcom

    calls: list[tuple[str, Any]] = []
    stored = link_params("dataworks", "cn-beijing", {"job_id": "j-1"})

    def get_value(*, ti_key: Any, key: str) -> Any:
        calls.append((key, ti_key))
        return stored

    monkeypatch.setattr(xcom.XCom, "get_value", staticmethod(get_value))
    ti_key = object()
    url = DataWorksConsoleLink().get_link(DataWorksJobSensor(task_id="w", job_id="j-1"), ti_key=ti_key)  # type: ignore[arg-type]
    assert url == "https://dataworks.console.aliyun.com/overview?regionId=cn-beijing"
    assert calls == [(CONSOLE_LINK_XCOM_KEY, ti_key)]

    monkeypatch.setattr(xcom.XCom, "get_value", staticmethod(lambda *, ti_key, key: None))
    assert DataWorksConsoleLink().get_link(DataWorksJobSensor(task_id="w", job_id="j"), ti_key=ti_key) == ""  # type: ignore[arg-type]


# --------------------------------------------------------------------------- registration


@pytest.mark.parametrize(("sensor_cls", "link_cls"), list(SENSOR_LINKS.items()))
def test_each_sensor_has_its_console_link(sensor_cls: type, link_cls: type) -> None:
    links = sensor_cls.operator_extra_links
    assert [type(link) for link in links] == [link_cls]
    assert links[0].xcom_key == f"_link_{link_cls.__name__}"
    assert CONSOLE_LINKS[sensor_cls.service] is link_cls


def test_links_are_operator_links_with_distinct_names() -> None:
    names = set()
    for cls in CONSOLE_LINKS.values():
        link = cls()
        assert isinstance(link, BaseOperatorLink)
        assert isinstance(link, AlibabaCloudConsoleLink)
        names.add(link.name)
    assert len(names) == len(CONSOLE_LINKS)


def test_every_service_has_its_link_class_named_as_its_spec_says() -> None:
    """The classes are written out in links.py; serialized DAGs store their import paths."""
    assert sorted(CONSOLE_LINKS) == sorted(SERVICES)
    for name, spec in SERVICES.items():
        cls = CONSOLE_LINKS[name]
        assert cls.__name__ == cls.__qualname__ == spec.console.class_name
        assert cls.__module__ == "airflow_aliyun_tasks.links"
        assert getattr(links_module, spec.console.class_name) is cls
        assert spec.console.class_name in links_module.__all__
        assert cls.service == name
        assert cls.name == spec.console.title
        ids = {id_name: "x-1" for id_name in spec.id_names}
        assert cls().format_link("cn-hangzhou", ids) == spec.console_url("cn-hangzhou", ids)


def test_provider_info_registers_every_link() -> None:
    registered = get_provider_info()["extra-links"]
    assert sorted(registered) == sorted(
        [
            *(f"airflow_aliyun_tasks.links.{c.__name__}" for c in CONSOLE_LINKS.values()),
            "airflow_aliyun_tasks.links.AlibabaCloudTaskConsoleLink",  # the operator's
        ]
    )
    for path in registered:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), BaseOperatorLink)


def test_providers_manager_lists_the_links() -> None:
    from airflow.providers_manager import ProvidersManager

    names = set(ProvidersManager().extra_links_class_names)
    assert {f"airflow_aliyun_tasks.links.{c.__name__}" for c in CONSOLE_LINKS.values()} <= names


def test_serialized_dag_carries_name_and_xcom_key() -> None:
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_versions import dag_serialization

    DagSerialization = dag_serialization()
    with DAG("links_serialization", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        PdsAsyncTaskSensor(task_id="w", async_task_id="a")
    encoded = DagSerialization.serialize_dag(dag)
    task = encoded["tasks"][0]["__var"]
    assert task["_operator_extra_links"] == {"PDS console": "_link_PdsConsoleLink"}
    restored = DagSerialization.deserialize_dag(encoded).get_task("w")
    assert [(link.name, link.xcom_key) for link in restored.operator_extra_links] == [
        ("PDS console", "_link_PdsConsoleLink")
    ]


# --------------------------------------------------------------------------- what the sensors store


class FakeTI:
    def __init__(self) -> None:
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))


SENSORS = {
    "dlf": lambda: DlfAsyncTaskSensor(task_id="w", async_task_id="t-1", catalog_id="1234567890"),
    "dataworks": lambda: DataWorksJobSensor(task_id="w", job_id="job-9"),
    "mma": lambda: MmaAsyncTaskSensor(task_id="w", source_id=2000017, async_task_id=2523),
    "pds": lambda: PdsAsyncTaskSensor(task_id="w", async_task_id="at-1", domain_id="bj1"),
    "emr_serverless_spark": lambda: EmrServerlessSparkJobRunSensor(
        task_id="w", workspace_id="w-1", job_run_id="jr-1"
    ),
    "pai_dlc": lambda: PaiDlcJobSensor(task_id="w", job_id="dlc1a2b3c4d5e6f"),
    "adb_spark": lambda: AdbSparkAppSensor(task_id="w", app_id="s202204191546hzpread6a896000abcd"),
    "flink_job": lambda: FlinkJobSensor(task_id="w", **IDS["flink_job"]),
    "fc_async_task": lambda: FcAsyncTaskSensor(task_id="w", function_name="etl", async_task_id="airflow-1"),
}


@pytest.mark.parametrize("service", list(SENSORS))
def test_sensor_stores_region_and_ids(service: str, make_conn: Callable[..., str]) -> None:
    make_conn(region_id="ap-southeast-1")
    ti = FakeTI()
    SENSORS[service]()._store_console_link({"ti": ti})  # type: ignore[arg-type]
    assert ti.pushed == [(CONSOLE_LINK_XCOM_KEY, link_params(service, "ap-southeast-1", IDS[service]))]
    text = json.dumps(ti.pushed)
    for secret in (
        os.environ["AIRFLOW_CONN_ALIYUN_DEFAULT"],
        json.loads(os.environ["AIRFLOW_CONN_ALIYUN_DEFAULT"])["password"],
    ):
        assert secret not in text


def test_pds_link_takes_the_connection_domain(make_conn: Callable[..., str]) -> None:
    make_conn(pds_domain_id="sh9")
    ti = FakeTI()
    PdsAsyncTaskSensor(task_id="w", async_task_id="at-1")._store_console_link({"ti": ti})  # type: ignore[arg-type]
    assert ti.pushed[0][1]["ids"] == {"async_task_id": "at-1", "domain_id": "sh9"}


def test_a_broken_connection_costs_the_link_not_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALIYUN_BROKEN", json.dumps({"conn_type": "aliyun", "extra": {}}))
    ti = FakeTI()
    sensor = DataWorksJobSensor(task_id="w", job_id="j", aliyun_conn_id="aliyun_broken")
    sensor._store_console_link({"ti": ti})  # type: ignore[arg-type]  # no exception
    assert ti.pushed == []


def test_nothing_is_stored_without_a_task_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_hook(self: Any) -> Any:
        raise AssertionError("no connection lookup without a task instance")

    monkeypatch.setattr(AlibabaCloudTaskSensor, "hook", property(no_hook))
    DataWorksJobSensor(task_id="w", job_id="j")._store_console_link({})  # type: ignore[arg-type]


_PROBE = """
import json, sys, time
import airflow.sdk
from airflow.sdk import BaseOperatorLink  # what every link needs (Airflow 3.1 loads more with it)
before = set(sys.modules)
t = time.perf_counter()
import airflow_aliyun_tasks.links
elapsed = time.perf_counter() - t
heavy = ["alibabacloud_credentials", "aiohttp", "airflow_aliyun_tasks.hooks",
         "airflow_aliyun_tasks.client", "airflow_aliyun_tasks.triggers", "airflow.triggers.base"]
print(json.dumps({"loaded": [m for m in heavy if m in sys.modules and m not in before], "ms": elapsed * 1000}))
"""


@pytest.mark.airflow  # a fresh interpreter imports Airflow
def test_links_module_import_is_cheap(tmp_path: Path) -> None:
    env = {**os.environ, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "AIRFLOW_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    print(f"links module import: {result['ms']:.1f} ms over airflow.sdk")


def test_module_docstrings_say_where_links_point() -> None:
    assert "no secret" in (links_module.__doc__ or "").lower()
    for cls in CONSOLE_LINKS.values():
        assert "https://" in (cls.__doc__ or "")


# --------------------------------------------------------------------------- dag.test() + real api-server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    """``airflow api-server`` on 127.0.0.1 over the test session's SQLite database (simple auth
    manager, everyone an admin), in its own process group, killed at the end."""

    def __init__(self, home: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(home) / f"api-server-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "PYTEST_"))}
        env.update(
            {
                "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.http = httpx.Client(timeout=30.0, trust_env=False)
        self._token: str | None = None

    def wait_healthy(self, limit: float = 180.0) -> None:
        deadline = time.monotonic() + limit
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api-server exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get(f"{self.url}/api/v2/monitor/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"api-server not healthy:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.5)

    def get(self, path: str) -> Any:
        if self._token is None:
            self._token = self.http.get(f"{self.url}/auth/token").json()["access_token"]
        resp = self.http.get(f"{self.url}/api/v2/{path}", headers={"Authorization": f"Bearer {self._token}"})
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group


@pytest.fixture(scope="module")
def api_server(airflow_db: str) -> Iterator[ApiServer]:
    server = ApiServer(airflow_db)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@functools.cache
def _dagbag() -> Any:
    from airflow_versions import dagbag

    bag = dagbag(str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return bag


E2E_IDS = {
    "dlf": {"async_task_id": "link-dlf-1"},
    "dataworks": {"job_id": "link-dw-1"},
    "mma": {"source_id": 2000031, "async_task_id": 1031},
    "pds": {"async_task_id": "link-pds-1"},
    "pai_dlc": {"job_id": "link-dlc-1"},
    "adb_spark": {"app_id": "link-adb-1"},
    "flink_job": {"workspace_id": "ws-link", "namespace": "default-namespace", "job_id": "link-flink-1"},
    "fc_async_task": {"function_name": "etl", "async_task_id": "link-fc-1"},
}


def _add_task(emulator: Emulator, service: str, ids: dict[str, Any], statuses: list[str]) -> None:
    if service == "dlf":
        emulator.add_dlf_task(ids["async_task_id"], statuses)
    elif service == "dataworks":
        emulator.add_dataworks_job(ids["job_id"], statuses)
    elif service == "mma":
        emulator.add_mma_task(ids["source_id"], ids["async_task_id"], statuses)
    elif service == "pai_dlc":
        emulator.add_pai_dlc_job(ids["job_id"], statuses)
    elif service == "adb_spark":
        emulator.add_adb_spark_app(ids["app_id"], statuses)
    elif service == "flink_job":
        emulator.add_flink_job(ids["workspace_id"], ids["namespace"], ids["job_id"], statuses)
    elif service == "fc_async_task":
        emulator.add_fc_async_task(ids["function_name"], ids["async_task_id"], statuses)
    else:
        emulator.add_pds_task(ids["async_task_id"], statuses, domain_id="bj1")


TERMINAL = {
    "dlf": "Success",
    "dataworks": "Success",
    "mma": "DONE",
    "pds": "Succeed",
    "pai_dlc": "Succeeded",
    "adb_spark": "COMPLETED",
    "flink_job": "FINISHED",
    "fc_async_task": "Succeeded",
}


@pytest.mark.airflow
@pytest.mark.parametrize("service", list(E2E_IDS))
def test_link_through_the_rest_api_after_dag_test(
    service: str, airflow_db: str, emulator: Emulator, make_conn: Callable[..., str], api_server: ApiServer
) -> None:
    make_conn(region_id="cn-shanghai")
    ids = E2E_IDS[service]
    running = {"mma": "DOING", "adb_spark": "RUNNING"}.get(service, "Running")
    _add_task(emulator, service, ids, [running, running, TERMINAL[service]])
    dag_id = f"e2e_{service}_deferrable"
    dr = _dagbag().get_dag(dag_id).test(run_conf=ids)
    assert dr.state == "success"

    links = api_server.get(f"dags/{dag_id}/dagRuns/{dr.run_id}/taskInstances/wait/links")
    name, template = EXPECTED[service]
    assert links == {"extra_links": {name: template.format(region="cn-shanghai")}, "total_entries": 1}
    stored = api_server.get(
        f"dags/{dag_id}/dagRuns/{dr.run_id}/taskInstances/wait/xcomEntries/{CONSOLE_LINK_XCOM_KEY}"
    )
    assert stored["value"] == link_params(
        service,
        "cn-shanghai",
        {**{k: str(v) for k, v in ids.items()}, **({"domain_id": "bj1"} if service == "pds" else {})},
    )
    print(f"{service}: GET .../taskInstances/wait/links -> {json.dumps(links)}")


@pytest.mark.airflow
def test_link_is_there_when_the_remote_task_failed(
    airflow_db: str, emulator: Emulator, make_conn: Callable[..., str], api_server: ApiServer
) -> None:
    """The link matters most when the task failed: the user goes to the console to see why."""
    make_conn(region_id="cn-beijing")
    emulator.add_dataworks_job("link-dw-fail", ["Running", "Fail"], error="spec is invalid")
    dr = _dagbag().get_dag("e2e_dataworks_deferrable").test(run_conf={"job_id": "link-dw-fail"})
    assert dr.state == "failed"
    links = api_server.get(f"dags/e2e_dataworks_deferrable/dagRuns/{dr.run_id}/taskInstances/wait/links")
    assert links["extra_links"] == {
        "DataWorks console": "https://dataworks.console.aliyun.com/overview?regionId=cn-beijing"
    }


def test_the_operators_link_follows_the_stored_service() -> None:
    from airflow_aliyun_tasks.links import AlibabaCloudTaskConsoleLink, link_params

    link = AlibabaCloudTaskConsoleLink()
    for name, cls in CONSOLE_LINKS.items():
        params = link_params(name, "cn-hangzhou", {})
        assert link.url_for(params) == cls().url_for(params)
        assert link.url_for(params).startswith("https://")
    assert link.url_for({"service": "nope", "region_id": "cn-hangzhou", "ids": {}}) == ""
    assert link.url_for(None) == ""
