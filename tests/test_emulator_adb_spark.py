"""AnalyticDB for MySQL Spark applications in the emulator and through the hook, over real HTTP:
the official SDK client (GetSparkAppState, SubmitSparkApp, KillSparkApp) against the emulator, the
states the wait ends on, the status and kill requests' bytes next to the SDK's (a form body),
faults and the control API."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from alibabacloud_adb20211201 import models
from alibabacloud_adb20211201.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions

from airflow_aliyun_tasks.client import aclose_shared_client
from airflow_aliyun_tasks.errors import ApiError, NotFoundError
from airflow_aliyun_tasks.hooks import AlibabaCloudTasksHook
from airflow_aliyun_tasks.status import CANCELLED, FAILED, RUNNING, SUCCEEDED, UNKNOWN
from airflow_aliyun_tasks.testing import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_START_LIFECYCLES,
    Emulator,
)

ADB = "adb_spark"
REGION = "cn-hangzhou"
NO_RETRY = RuntimeOptions(autoretry=False, max_attempts=1)
CONFIG = '{"name":"SparkPi","file":"local:///tmp/spark-examples.jar","className":"org.apache.spark.examples.SparkPi"}'

pytestmark = pytest.mark.usefixtures("fresh_clients", "close_shared_sync_client")


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(server: Emulator) -> Iterator[Emulator]:
    server.reset()
    yield server
    server.reset()


def client(endpoint: str, **config: Any) -> Client:
    config.setdefault("access_key_id", DEFAULT_ACCESS_KEY_ID)
    config.setdefault("access_key_secret", DEFAULT_ACCESS_KEY_SECRET)
    return Client(Config(endpoint=endpoint, protocol="http", region_id=REGION, **config))


def get_state(sdk: Client, app_id: str, **request: Any) -> models.GetSparkAppStateResponseBodyData:
    body = sdk.get_spark_app_state(models.GetSparkAppStateRequest(app_id=app_id, **request)).body
    assert body.request_id
    data: models.GetSparkAppStateResponseBodyData = body.data
    return data


def submit(sdk: Client, **overrides: Any) -> models.SubmitSparkAppResponseBodyData:
    request: dict[str, Any] = {
        "dbcluster_id": "amv-bp1h405854m0000",
        "resource_group_name": "spark_rg",
        "app_type": "BATCH",
        "app_name": "spark-pi",
        "data": CONFIG,
    }
    request.update(overrides)
    body = sdk.submit_spark_app(models.SubmitSparkAppRequest(**request)).body
    assert body.request_id
    data: models.SubmitSparkAppResponseBodyData = body.data
    return data


def kill(sdk: Client, app_id: str, **request: Any) -> models.KillSparkAppResponseBodyData:
    body = sdk.kill_spark_app(models.KillSparkAppRequest(app_id=app_id, **request)).body
    assert body.request_id
    data: models.KillSparkAppResponseBodyData = body.data
    return data


def failure(call: Callable[[], Any]) -> tuple[str, int, dict[str, Any]]:
    """Run an official-SDK call that must fail; return (code, http status, error data)."""
    try:
        call()
    except Exception as exc:  # the SDK raises ClientException / ServerException
        return str(getattr(exc, "code", "")), int(getattr(exc, "status_code", 0) or 0), dict(exc.data or {})  # type: ignore[attr-defined]
    raise AssertionError("the SDK call succeeded")


# ------------------------------------------------------------------------------ GetSparkAppState


def test_official_sdk_walks_a_scripted_app(emu: Emulator) -> None:
    emu.add_adb_spark_app(
        "s202612010000hzemu0001",
        ["SUBMITTED", "STARTING", "RUNNING", "FAILING", "FAILED"],
        message="Driver exited with code 1",
        db_cluster_id="amv-bp1h405854m0000",
        app_name="spark-pi",
    )
    sdk = client(emu.endpoint)
    states = [get_state(sdk, "s202612010000hzemu0001") for _ in range(6)]
    assert [s.state for s in states] == ["SUBMITTED", "STARTING", "RUNNING", "FAILING", "FAILED", "FAILED"]
    first, last = states[0], states[-1]
    assert (first.app_id, first.app_name, first.dbcluster_id) == (
        "s202612010000hzemu0001",
        "spark-pi",
        "amv-bp1h405854m0000",
    )
    assert first.message is None  # null while there is no alert
    assert last.message == "Driver exited with code 1"
    assert emu.poll_count(ADB, app_id="s202612010000hzemu0001") == 6
    assert emu.request_count(ADB) == emu.request_count() == 6

    # The optional DBClusterId (query): the application's cluster finds it, another does not.
    assert get_state(sdk, "s202612010000hzemu0001", dbcluster_id="amv-bp1h405854m0000").state == "FAILED"
    code, status, data = failure(lambda: get_state(sdk, "s202612010000hzemu0001", dbcluster_id="amv-other"))
    assert (code, status) == ("InvalidAppId.NotFound", 404)
    assert set(data) >= {"RequestId", "HostId", "Code", "Message", "Recommend"}


def test_every_documented_state_through_the_hook(emu: Emulator, make_conn: Callable[..., str]) -> None:
    """Each value of the SDK model's ``State`` docstring, read by the hook from the emulator."""
    expected = {
        "SUBMITTED": RUNNING,
        "STARTING": RUNNING,
        "RUNNING": RUNNING,
        "FAILING": RUNNING,
        "SUCCEEDING": RUNNING,
        "KILLING": RUNNING,
        "COMPLETED": SUCCEEDED,
        "FAILED": FAILED,
        "FATAL": FAILED,
        "KILLED": CANCELLED,
        "UNKNOWN": UNKNOWN,
    }
    for raw in expected:
        emu.add_adb_spark_app(f"s-{raw.lower()}", [raw], message="Insufficient resources.")
    hook = AlibabaCloudTasksHook(make_conn(adb_spark_endpoint=emu.url))
    got = {raw: hook.get_task_status(ADB, app_id=f"s-{raw.lower()}") for raw in expected}
    assert {raw: s.state for raw, s in got.items()} == expected
    assert got["FATAL"].message == got["FAILED"].message == "Insufficient resources."
    assert got["COMPLETED"].message is None
    assert {s.raw_status for s in got.values()} == set(expected)


def test_unknown_app(emu: Emulator) -> None:
    code, status, _ = failure(lambda: get_state(client(emu.endpoint), "s-nope"))
    assert (code, status) == ("InvalidAppId.NotFound", 404)
    assert emu.request_count(ADB, app_id="s-nope") == 1


def test_ids_that_need_encoding_and_the_legacy_rpc_signature(emu: Emulator) -> None:
    """The emulator's own canonicalization agrees with the official signers (V3 and RPC v2), a
    form body included."""
    emu.add_adb_spark_app("s 1*~/é", ["RUNNING", "COMPLETED"])
    assert get_state(client(emu.endpoint), "s 1*~/é").state == "RUNNING"
    assert get_state(client(emu.endpoint, signature_algorithm="v2"), "s 1*~/é").state == "COMPLETED"
    wrong = client(emu.endpoint, access_key_secret="not-the-secret")
    code, status, _ = failure(lambda: get_state(wrong, "s 1*~/é"))
    assert (code, status) == ("SignatureDoesNotMatch", 400)


# -------------------------------------------------------------------- SubmitSparkApp, KillSparkApp


def test_submit_spark_app(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    data = submit(sdk)
    assert re.fullmatch(r"s[0-9]{12}emu[0-9a-f]{10}", data.app_id)
    assert (data.app_name, data.state) == ("spark-pi", DEFAULT_START_LIFECYCLES[ADB][0])
    assert DEFAULT_START_LIFECYCLES[ADB] == ("SUBMITTED", "STARTING", "RUNNING", "COMPLETED")
    # no client token: the same request again is a second application
    assert submit(sdk).app_id != data.app_id
    assert len(emu.tasks(ADB)) == 2
    states = [get_state(sdk, data.app_id) for _ in range(4)]
    assert [s.state for s in states] == ["SUBMITTED", "STARTING", "RUNNING", "COMPLETED"]
    assert states[0].dbcluster_id == "amv-bp1h405854m0000"

    # the fields the SDK's model calls required, and what the emulator checks of the others
    for missing in ("dbcluster_id", "resource_group_name", "data"):
        code, status, _ = failure(lambda m=missing: submit(sdk, **{m: None}))
        assert (code, status) == ("MissingParameter", 400), missing
    assert failure(lambda: submit(sdk, data="not json"))[:2] == ("InvalidParameter", 400)
    assert failure(lambda: submit(sdk, app_type="PYTHON"))[:2] == ("InvalidParameter", 400)
    assert emu.start_count(ADB, "SubmitSparkApp") == 7
    assert emu.start_count(ADB, accepted=True) == 2
    with pytest.raises(ValueError, match="no start operation"):
        emu.start_count(ADB, "GetSparkAppState")


def test_kill_spark_app(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_adb_spark_app("s-long", ["STARTING", "RUNNING"], db_cluster_id="amv-1")
    assert get_state(sdk, "s-long").state == "STARTING"
    killed = kill(sdk, "s-long", dbcluster_id="amv-1")
    assert (killed.app_id, killed.state, killed.dbcluster_id) == ("s-long", "KILLING", "amv-1")
    assert kill(sdk, "s-long").state == "KILLING"  # again while killing: accepted
    assert [get_state(sdk, "s-long").state for _ in range(3)] == ["KILLING", "KILLED", "KILLED"]

    # an ended application cannot be killed; an unknown one is not found
    assert failure(lambda: kill(sdk, "s-long"))[:2] == ("InvalidAppState", 400)
    emu.add_adb_spark_app("s-done", ["COMPLETED"])
    assert failure(lambda: kill(sdk, "s-done"))[:2] == ("InvalidAppState", 400)
    assert failure(lambda: kill(sdk, "s-nope"))[:2] == ("InvalidAppId.NotFound", 404)
    assert failure(lambda: kill(sdk, "s-long", dbcluster_id="amv-2"))[:2] == ("InvalidAppId.NotFound", 404)

    assert emu.cancel_count(ADB, app_id="s-long") == 4
    assert emu.cancel_count(ADB, app_id="s-long", accepted=True) == 2
    assert emu.cancel_count(ADB, accepted=True) == 2
    assert emu.request_count(ADB, app_id="s-long") == 4  # kills are not status polls


# ------------------------------------------------------------------- the package against the SDK


def _shape(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return lines[0], headers, body


def _capture(
    make_conn: Callable[..., str],
    answer: bytes,
    sdk_call: Callable[[Client], Any],
    ours: Callable[[AlibabaCloudTasksHook], Any],
) -> list[tuple[str, dict[str, str], bytes]]:
    from test_hostile_input import HostileServer

    received: list[bytes] = []

    def respond(data: bytes) -> list[bytes]:
        received.append(data)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(
            answer
        )
        return [head + answer]

    capture = HostileServer()
    capture.responder = respond
    try:
        sdk_call(client(capture.url.removeprefix("http://")))
        conn = make_conn("aliyun_capture", adb_spark_endpoint=capture.url, max_retries=0)
        ours(AlibabaCloudTasksHook(conn))
    finally:
        capture.stop()
    return [_shape(data) for data in received]


@pytest.mark.parametrize(
    ("action", "sdk_call", "ours"),
    [
        (
            "GetSparkAppState",
            lambda sdk: sdk.get_spark_app_state(models.GetSparkAppStateRequest(app_id="s-9")),
            lambda hook: hook.get_task_status(ADB, app_id="s-9"),
        ),
        (
            "KillSparkApp",
            lambda sdk: sdk.kill_spark_app(models.KillSparkAppRequest(app_id="s-9")),
            lambda hook: hook.cancel_task(ADB, app_id="s-9"),
        ),
    ],
    ids=["status", "kill"],
)
def test_status_and_kill_requests_are_the_sdks_form(
    make_conn: Callable[..., str], action: str, sdk_call: Callable[[Client], Any], ours: Callable[..., Any]
) -> None:
    """What the official SDK and the hook send for GetSparkAppState and KillSparkApp, side by side
    on a loopback server: POST /, no query, ``AppId`` in a form body, the same signed hash."""
    answer = json.dumps({"RequestId": "R-1", "Data": {"AppId": "s-9", "State": "KILLING"}}).encode()
    (theirs_line, theirs, theirs_body), (ours_line, ours_h, ours_body) = _capture(
        make_conn, answer, sdk_call, ours
    )
    assert theirs_line == ours_line == "POST / HTTP/1.1"
    assert theirs_body == ours_body == b"AppId=s-9"
    assert theirs["content-type"].startswith("application/x-www-form-urlencoded")
    assert ours_h["content-type"].startswith("application/x-www-form-urlencoded")
    assert ours_h["content-length"] == theirs["content-length"] == "9"
    for name in ("x-acs-action", "x-acs-version", "x-acs-content-sha256"):
        assert theirs[name] == ours_h[name], name
    assert theirs["x-acs-action"] == action


def test_submit_form_is_the_sdks(make_conn: Callable[..., str]) -> None:
    """An object in ``Data`` goes as compact JSON text in the form, as the SDK sends the string."""
    config = json.loads(CONFIG)
    fields = {"DBClusterId": "amv-1", "ResourceGroupName": "rg", "AppType": "BATCH", "Data": config}
    answer = b'{"RequestId":"R-2","Data":{"AppId":"s-10","State":"SUBMITTED"}}'
    (_, theirs, theirs_body), (_, ours, ours_body) = _capture(
        make_conn,
        answer,
        lambda sdk: sdk.submit_spark_app(
            models.SubmitSparkAppRequest(
                dbcluster_id="amv-1",
                resource_group_name="rg",
                app_type="BATCH",
                data=json.dumps(config, separators=(",", ":")),
            )
        ),
        lambda hook: hook.call_api("SubmitSparkApp", "2021-12-01", service=ADB, body=fields, retries=False),
    )
    assert dict(parse_qsl(ours_body.decode())) == dict(parse_qsl(theirs_body.decode()))
    assert json.loads(dict(parse_qsl(ours_body.decode()))["Data"]) == config
    assert theirs["x-acs-action"] == ours["x-acs-action"] == "SubmitSparkApp"


def test_hook_reads_apps_sync_and_async(emulator: Emulator, make_conn: Callable[..., str]) -> None:
    conn = make_conn()
    emulator.add_adb_spark_app("s-ok", ["RUNNING", "SUCCEEDING", "COMPLETED"])
    emulator.add_adb_spark_app("s-bad", ["FATAL"], message="Driver OOM")
    emulator.add_adb_spark_app("s-killed", ["KILLED"])
    hook = AlibabaCloudTasksHook(conn)
    first = hook.get_task_status(ADB, app_id="s-ok")
    assert (first.service, first.state, first.raw_status, first.ids) == (
        ADB,
        RUNNING,
        "RUNNING",
        {"app_id": "s-ok"},
    )

    async def poll() -> Any:
        try:
            hook = AlibabaCloudTasksHook(conn)
            return [await hook.aget_task_status(ADB, app_id="s-ok") for _ in range(2)]
        finally:
            await aclose_shared_client()

    second, third = asyncio.run(poll())
    assert (second.state, second.raw_status) == (RUNNING, "SUCCEEDING")
    assert (third.state, third.raw_status, third.message) == (SUCCEEDED, "COMPLETED", None)
    assert third.raw["Data"]["AppId"] == "s-ok"
    assert third.request_id
    failed = hook.get_task_status(ADB, app_id="s-bad")
    assert (failed.state, failed.message) == (FAILED, "Driver OOM")
    assert hook.get_task_status(ADB, app_id="s-killed").state == CANCELLED
    with pytest.raises(NotFoundError):
        hook.get_task_status(ADB, app_id="s-missing")


def test_hook_cancel_of_an_ended_app_is_the_services_error(
    emulator: Emulator, make_conn: Callable[..., str]
) -> None:
    emulator.add_adb_spark_app("s-ended", ["COMPLETED"])
    hook = AlibabaCloudTasksHook(make_conn())
    with pytest.raises(ApiError, match="InvalidAppState"):
        hook.cancel_task(ADB, app_id="s-ended")
    emulator.add_adb_spark_app("s-running", ["RUNNING"])
    assert hook.cancel_task(ADB, app_id="s-running")["Data"]["State"] == "KILLING"
    assert emulator.cancel_count(ADB, app_id="s-running", accepted=True) == 1


# -------------------------------------------------------------------------------------- faults


def test_faults_aimed_at_an_app(emu: Emulator) -> None:
    sdk = client(emu.endpoint)
    emu.add_adb_spark_app("s-a", ["RUNNING", "COMPLETED"])
    emu.add_adb_spark_app("s-b", ["RUNNING", "COMPLETED"])
    emu.inject_fault("503", service=ADB, task="s-b")
    assert get_state(sdk, "s-a").state == "RUNNING"
    code, status, data = failure(
        lambda: sdk.get_spark_app_state_with_options(models.GetSparkAppStateRequest(app_id="s-b"), NO_RETRY)
    )
    assert (code, status) == ("ServiceUnavailable", 503)
    assert data["Recommend"].endswith(data["RequestId"])
    assert get_state(sdk, "s-b").state == "RUNNING"  # the fault hid the poll: no step
    assert emu.fault_counts == {"503": 1}
    assert emu.poll_count(ADB, app_id="s-b") == 1


def test_a_lost_submit_answer_and_a_blind_retry_make_two_apps(emu: Emulator) -> None:
    """Why the operator sends SubmitSparkApp once: without a client token, a retry after a lost
    answer submits a second application."""
    sdk = client(emu.endpoint)
    emu.inject_fault("drop_after_accept", service=ADB)
    request = models.SubmitSparkAppRequest(dbcluster_id="amv-1", resource_group_name="rg", data=CONFIG)
    with pytest.raises(UnretryableException):
        sdk.submit_spark_app_with_options(request, NO_RETRY)
    assert len(emu.tasks(ADB)) == 1
    sdk.submit_spark_app_with_options(request, NO_RETRY)
    assert len(emu.tasks(ADB)) == 2
    assert (emu.start_count(ADB), emu.start_count(ADB, accepted=True)) == (2, 2)


# ---------------------------------------------------------------------------------- control API


def test_control_api_scripts_apps_and_reports_the_counters(emu: Emulator) -> None:
    base = emu.url + "/_emulator"
    created = httpx.post(
        f"{base}/tasks",
        json={
            "service": ADB,
            "app_id": "s-c",
            "statuses": ["RUNNING", "COMPLETED"],
            "db_cluster_id": "amv-c",
        },
    )
    assert created.status_code == 201
    assert created.json()["tasks"] == [{"service": ADB, "ids": {"app_id": "s-c"}}]
    lifecycle = httpx.post(
        f"{base}/start_lifecycle", json={"service": ADB, "statuses": ["STARTING", "FATAL"]}
    )
    assert lifecycle.status_code == 200

    sdk = client(emu.endpoint)
    app = submit(sdk).app_id
    assert [get_state(sdk, app).state for _ in range(2)] == ["STARTING", "FATAL"]
    assert get_state(sdk, "s-c").dbcluster_id == "amv-c"
    kill(sdk, "s-c")

    stats = httpx.get(f"{base}/stats").json()
    assert stats["requests"][ADB] == 5
    assert {"service": ADB, "action": "SubmitSparkApp", "requests": 1, "accepted": 1} in stats["starts"]
    assert stats["cancels"] == [{"service": ADB, "ids": {"app_id": "s-c"}, "requests": 1, "accepted": 1}]
    assert httpx.post(f"{base}/reset").status_code == 200
    assert emu.start_lifecycles[ADB] == DEFAULT_START_LIFECYCLES[ADB]
